import DBOS
import DBOSSpec
import DBOSTestSupport
import Foundation
import Testing

/// Every reference spec in `Specs/` that needs no outside setup runs to its expected output.
@Suite struct ReferenceSpecTests {
    /// Runs reference spec `name` with the other reference specs registered as its directory.
    func runReference(
        _ name: String, input: JSONValue = .null, handlers: HandlerRegistry = HandlerRegistry()
    ) async throws -> (output: JSONValue, environment: SpecTestRuntime, workflowID: String) {
        let specs = try SpecFiles.referenceSpecs()
        let spec = try #require(specs[name])
        let environment = try await SpecTestRuntime.make(
            specs: [spec], directorySpecs: specs.values.filter { $0.name != name }, handlers: handlers)
        let id = "\(name)-\(UUID().uuidString.prefix(6))"
        do {
            let output = try await environment.run(spec, input: input, id: id)
            return (output, environment, id)
        } catch {
            await environment.close()
            throw error
        }
    }

    @Test func helloPrintsItsGreetingInCapitals() async throws {
        let (output, environment, _) = try await runReference("hello")
        await environment.close()
        #expect(output == "HELLO WORLD")
    }

    @Test func runOutputsGiveTextJSONAndLines() async throws {
        let (output, environment, _) = try await runReference("run-outputs")
        await environment.close()
        #expect(output == "got plain text, 3 values, first file a.txt")
    }

    @Test func conditionsSkipTheSlowPathAndStillRunItsDependents() async throws {
        let (output, environment, id) = try await runReference("conditions")
        let kinds = environment.events.kinds(of: id)
        await environment.close()
        #expect(output == "skipped fast")
        #expect(kinds.contains(.stepSkipped(stepID: "slow-path")))
    }

    @Test func expressionsEvaluateOperatorsFunctionsAndInterpolation() async throws {
        let (output, environment, _) = try await runReference("expressions")
        await environment.close()
        #expect(output == ["names": ["ada", "grace"], "big": true, "text": "limit is 3"])
    }

    @Test func needsRunsTheDiamondAndJoinsItsBranches() async throws {
        let (output, environment, _) = try await runReference("needs")
        await environment.close()
        #expect(output == "bc")
    }

    @Test func errorsAreRecordedAndTheRunGoesOn() async throws {
        let (output, environment, id) = try await runReference("errors")
        let steps = try await environment.runtime.listSteps(workflowID: id)
        await environment.close()
        #expect(output == "error")
        let slow = try #require(steps.first { $0.name == "slow" })
        #expect(slow.error?.message.contains("timed out") == true)
    }

    @Test func handlerSpecCallsTheRegisteredHandlerWithResolvedInput() async throws {
        let handlers = HandlerRegistry()
        handlers.register("charge_card") { (input: JSONValue, context: HandlerContext) -> JSONValue in
            ["charged": input["cents"] ?? .null, "note": input["note"] ?? .null, "key": .string(context.idempotencyKey)]
        }
        let (output, environment, id) = try await runReference("handler", input: ["order_id": "A1"], handlers: handlers)
        await environment.close()
        #expect(output["charged"]?.doubleValue == 1000)
        #expect(output["note"] == "order A1")
        #expect(output["key"] == .string("\(id)/0"))
    }

    @Test func childRunsAnotherSpecOnAQueueAndOneWithoutWaiting() async throws {
        let (output, environment, id) = try await runReference("child")
        await environment.close()
        #expect(output == ["result": "HELLO WORLD", "started": .string("\(id)-1")])
    }

    @Test func mapOverAChildSpecGivesResultsInItemOrder() async throws {
        let (output, environment, _) = try await runReference("map-workflow")
        await environment.close()
        #expect(output == ["HELLO WORLD", "HELLO WORLD"])
    }

    @Test func mapOverInlineStepsGivesEachItemsLastOutput() async throws {
        let (output, environment, _) = try await runReference("map")
        await environment.close()
        #expect(output == #"["item 2","item 4","item 6"]"#)
    }

    @Test func parallelBranchesGiveTheirOutputsInBranchOrder() async throws {
        let (output, environment, _) = try await runReference("parallel")
        await environment.close()
        #expect(output == "left+right!")
    }

    @Test func scheduledSpecRunsWithItsTickInput() async throws {
        let (output, environment, _) = try await runReference(
            "scheduled", input: ["scheduled_time": "2026-01-05T08:15:00Z"])
        await environment.close()
        #expect(output == "tick at 2026-01-05T08:15:00Z")
    }

    @Test func sagaCompensatesCompletedStepsInReverseOrder() async throws {
        let specs = try SpecFiles.referenceSpecs()
        let spec = try #require(specs["saga"])
        let environment = try await SpecTestRuntime.make(specs: [spec])
        let id = "saga-\(UUID().uuidString.prefix(6))"
        await #expect(throws: (any Error).self) { try await environment.run(spec, id: id) }
        let steps = try await environment.runtime.listSteps(workflowID: id)
        let status = try await environment.runtime.workflowStatus(id: id)
        let kinds = environment.events.kinds(of: id)
        await environment.close()
        #expect(status?.state == .error)
        #expect(status?.error?.message.contains("step 'ship' (") == true)
        let compensations = steps.filter { $0.name.hasSuffix(".compensate") }
        #expect(compensations.map(\.functionID) == [3, 4])
        #expect(compensations.first { $0.name == "charge.compensate" }?.output == "refund charged")
        #expect(compensations.first { $0.name == "reserve.compensate" }?.output == "released")
        let order = kinds.compactMap { kind -> String? in
            if case .compensationStarted(let id, _) = kind { return id }
            return nil
        }
        #expect(order == ["charge", "reserve"])
    }

    @Test func sleepCheckpointsItsWakeUpTimeAnHourAndAHalfAhead() async throws {
        let specs = try SpecFiles.referenceSpecs()
        let spec = try #require(specs["sleep"])
        let environment = try await SpecTestRuntime.make(specs: [spec])
        let before = Date().timeIntervalSince1970 * 1000
        _ = try await environment.interpreter.start(spec: spec, workflowID: "sleep-1")
        // The step says it waits before its sleep's checkpoint is written: wait for both.
        let deadline = ContinuousClock.now + .seconds(20)
        var steps = try await environment.runtime.listSteps(workflowID: "sleep-1")
        while !environment.events.kinds(of: "sleep-1").contains(.stepWaiting(stepID: "nap", what: "sleep 1h30m"))
            || steps.count < 2,
            ContinuousClock.now < deadline
        {
            try await Task.sleep(for: .milliseconds(20))
            steps = try await environment.runtime.listSteps(workflowID: "sleep-1")
        }
        try await environment.runtime.cancelWorkflow(id: "sleep-1")
        await environment.close()
        #expect(steps.map(\.name) == ["before", "DBOS.sleep"])
        let wakeUp = try #require(steps.last?.output?.doubleValue)
        #expect(abs(wakeUp - before - 5_400_000) < 60_000)
    }

    @Test func messagingReceivesAMessageAndRepliesToAnotherRun() async throws {
        let specs = try SpecFiles.referenceSpecs()
        let spec = try #require(specs["messaging"])
        let directory = try TemporaryDirectory(prefix: "dbos-interp")
        let listener = try SpecFiles.write("""
            name: listener
            steps:
              - id: reply
                recv: {topic: results, timeout: 60s}
            """, as: "listener.yaml", in: directory)
        let environment = try await SpecTestRuntime.make(specs: [spec, listener], directory: directory)
        let listenerHandle = try await environment.interpreter.start(spec: listener, workflowID: "listener-1")
        let handle = try await environment.interpreter.start(spec: spec, input: ["reply_to": "listener-1"], workflowID: "asker-1")
        try await environment.runtime.send(to: "asker-1", topic: "approvals", message: JSONValue.object(["approved": true]))
        let output = try await handle.result()
        let reply = try await listenerHandle.result()
        await environment.close()
        #expect(output == ["approved": true])
        #expect(reply == ["approved": true, "run": "asker-1"])
    }

    @Test func eventsArePublishedAndReadBetweenTwoRuns() async throws {
        let specs = try SpecFiles.referenceSpecs()
        let spec = try #require(specs["events"])
        let environment = try await SpecTestRuntime.make(specs: [spec])
        let first = try await environment.interpreter.start(spec: spec, input: ["other_run": "events-b"], workflowID: "events-a")
        let second = try await environment.interpreter.start(spec: spec, input: ["other_run": "events-a"], workflowID: "events-b")
        _ = try await first.result()
        _ = try await second.result()
        let steps = try await environment.runtime.listSteps(workflowID: "events-a")
        let final = try await environment.runtime.getEvent(workflowID: "events-b", key: "progress", timeout: .seconds(5))
        await environment.close()
        let peer = try #require(steps.first { $0.functionID == 1 })
        // The peer's event was read either before or after it changed; both are its values.
        #expect(peer.output == ["percent": 50] || peer.output == 100)
        #expect(final == 100)
    }
}
