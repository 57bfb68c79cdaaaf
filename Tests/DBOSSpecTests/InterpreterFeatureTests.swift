import DBOS
import DBOSSpec
import DBOSTestSupport
import Foundation
import Synchronization
import Testing

/// A charge request, as a typed handler sees `with:`.
struct Charge: Codable, Sendable {
    var order: String
    var cents: Int
}

/// A typed handler's result.
struct Receipt: Codable, Sendable {
    var order: String
    var attempt: Int
    var key: String
}

@Suite struct InterpreterFeatureTests {
    @Test func eventStreamReportsEachStepOfARun() async throws {
        let specs = try SpecFiles.referenceSpecs()
        let spec = try #require(specs["hello"])
        let environment = try await SpecTestRuntime.make(specs: [spec])
        let stream = environment.interpreter.events()
        let collector = Task {
            var kinds: [SpecRunEvent.Kind] = []
            for await event in stream where event.workflowID == "stream-1" {
                kinds.append(event.kind)
                if case .runFinished = event.kind { break }
            }
            return kinds
        }
        _ = try await environment.run(spec, id: "stream-1")
        let kinds = await collector.value
        await environment.close()
        #expect(kinds.count == 4)
        #expect(kinds.first == .runStarted(specName: "hello"))
        #expect(kinds.dropFirst().first == .stepStarted(stepID: "greet", slot: 0, action: "run"))
        guard kinds.count == 4, case .stepFinished(let id, let status, _, _) = kinds[2] else {
            Issue.record("expected stepFinished, got \(kinds)")
            return
        }
        #expect(id == "greet" && status == .success)
        #expect(kinds.last == .runFinished(status: .success, error: nil))
    }

    /// Holds a run's thread at the start of one step until released.
    final class StepStartGate: SpecRunObserver {
        let stepID: String
        private let held = Mutex(false)
        private let semaphore = DispatchSemaphore(value: 0)

        init(stepID: String) { self.stepID = stepID }

        func specRun(_ event: SpecRunEvent) {
            guard case .stepStarted(let started, _, _) = event.kind, started == stepID else { return }
            held.withLock { $0 = true }
            semaphore.wait()
        }

        var isHolding: Bool { held.withLock { $0 } }
        func release() { semaphore.signal() }
    }

    /// A step shows as started only once the steps before it are checkpointed: the previous
    /// step's checkpoint, which waits for the run's next durable operation, is written first. So a
    /// process killed as soon as "second: started" shows resumes without running "first" again.
    @Test func aStepShownAsStartedHasTheStepBeforeItCheckpointed() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-interp")
        let spec = try SpecFiles.write("""
            name: ordered
            steps:
              - id: first
                run: echo one
              - id: second
                run: echo two
            """, as: "ordered.yaml", in: directory)
        let environment = try await SpecTestRuntime.make(specs: [spec], directory: directory, configure: { configuration in
            // The watch that writes a checkpoint left waiting for long stays out of the way.
            configuration.stepCheckpointWrites = .beforeNextOperation(within: .seconds(60))
        })
        let gate = StepStartGate(stepID: "second")
        environment.interpreter.addObserver(gate)
        let run = Task { try await environment.run(spec, id: "ordered-1") }
        #expect(await eventually(timeout: .seconds(20)) { gate.isHolding })
        let stored: Result<[String], any Error>
        do {
            stored = .success(try await environment.runtime.listSteps(workflowID: "ordered-1").map(\.name))
        } catch {
            stored = .failure(error)
        }
        // Released even when the read failed, so the run (and the test) can end.
        gate.release()
        _ = try await run.value
        await environment.close()
        #expect(try stored.get() == ["first"], "steps stored when 'second' showed as started: \(stored)")
    }

    @Test func typedHandlerIsRetriedWithItsAttemptNumberAndAStableIdempotencyKey() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-interp")
        let handlers = HandlerRegistry()
        handlers.register("payments.charge") { (charge: Charge, context: HandlerContext) async throws -> Receipt in
            if context.attempt < 2 { throw StepTestError.declined }
            return Receipt(order: charge.order, attempt: context.attempt, key: context.idempotencyKey)
        }
        handlers.register("slow") { (_: JSONValue, _: HandlerContext) async throws -> JSONValue in
            try await Task.sleep(for: .seconds(30))
            return .null
        }
        let spec = try SpecFiles.write("""
            name: typed
            steps:
              - id: warmup
                run: echo warm
              - id: charge
                handler: payments.charge
                with: {order: A1, cents: "${{ 12 * 100 }}"}
                retry: {max_attempts: 3, interval: 10ms}
              - id: stuck
                handler: slow
                timeout: 200ms
                continue_on_error: true
            output:
              receipt: ${{ steps.charge.output }}
              stuck: ${{ steps.stuck.error }}
            """, as: "typed.yaml", in: directory, handlers: handlers.names)
        let environment = try await SpecTestRuntime.make(specs: [spec], handlers: handlers, directory: directory)
        let output = try await environment.run(spec, id: "typed-1")
        await environment.close()
        #expect(output["receipt"] == ["order": "A1", "attempt": 2, "key": "typed-1/1"])
        #expect(output["stuck"] == "timed out after 200ms")
    }

    @Test func cancellingARunKillsItsShellStepAndCompensatesNothing() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-interp")
        let pidFile = directory.file("pids")
        let spec = try SpecFiles.write("""
            name: cancellable
            input:
              type: object
              properties:
                pids: {type: string}
            steps:
              - id: setup
                run: echo ready
                compensate:
                  run: echo undo
              - id: long
                env: {PIDS: "${{ input.pids }}"}
                run: |
                  sleep 30 &
                  echo $! >> "$PIDS"
                  wait
            """, as: "cancellable.yaml", in: directory)
        let environment = try await SpecTestRuntime.make(specs: [spec], directory: directory)
        let handle = try await environment.interpreter.start(spec: spec, input: ["pids": .string(pidFile)], workflowID: "cancel-1")
        let deadline = ContinuousClock.now + .seconds(20)
        while SideEffectLog(path: pidFile).lines.isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        try await environment.runtime.cancelWorkflow(id: "cancel-1")
        await #expect(throws: (any Error).self) { try await handle.result() }
        let pids = SideEffectLog(path: pidFile).lines.compactMap { Int32($0) }
        try await Task.sleep(for: .milliseconds(700))
        let status = try await environment.runtime.workflowStatus(id: "cancel-1")
        let steps = try await environment.runtime.listSteps(workflowID: "cancel-1")
        await environment.close()
        #expect(status?.state == .cancelled)
        #expect(!steps.contains { $0.name.hasSuffix(".compensate") })
        #expect(pids.count == 1)
        for pid in pids { #expect(!processIsAlive(pid), "process \(pid) survived the cancellation") }
    }

    @Test func sleepIsADurableOperationAtItsSlot() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-interp")
        let spec = try SpecFiles.write("""
            name: napping
            steps:
              - id: before
                run: echo start
              - id: nap
                sleep: 300ms
              - id: after
                run: echo done
            """, as: "napping.yaml", in: directory)
        let environment = try await SpecTestRuntime.make(specs: [spec], directory: directory)
        let start = ContinuousClock.now
        let output = try await environment.run(spec, id: "nap-1")
        let elapsed = ContinuousClock.now - start
        let steps = try await environment.runtime.listSteps(workflowID: "nap-1")
        await environment.close()
        #expect(output == "done")
        #expect(elapsed >= .milliseconds(250))
        #expect(steps.map(\.name) == ["before", "DBOS.sleep", "after"])
        #expect(steps.map(\.functionID) == [0, 1, 2])
    }

    @Test func recvTimeoutIsRecordedInTheReservedSlotRange() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-interp")
        let spec = try SpecFiles.write("""
            name: waiting
            steps:
              - id: first
                run: echo hi
              - id: answer
                recv: {topic: answers, timeout: 200ms, default: none}
            """, as: "waiting.yaml", in: directory)
        let environment = try await SpecTestRuntime.make(specs: [spec], directory: directory)
        let output = try await environment.run(spec, id: "recv-1")
        let steps = try await environment.runtime.listSteps(workflowID: "recv-1")
        await environment.close()
        #expect(output == "none")
        #expect(steps.map(\.functionID) == [0, 1, SpecInterpreter.timeoutSlotOffset + 1])
    }

    @Test func scheduledSpecRunsItsTicksInItsTimeZone() async throws {
        let specs = try SpecFiles.referenceSpecs()
        let spec = try #require(specs["scheduled"])
        let environment = try await SpecTestRuntime.make(specs: [spec], registersSchedules: true)
        // 08:15 in Paris on Monday 5 January 2026 is 07:15 UTC.
        let formatter = ISO8601DateFormatter()
        let ids = try await environment.runtime.backfillSchedule(
            named: "scheduled", from: try #require(formatter.date(from: "2026-01-05T07:14:00Z")),
            through: try #require(formatter.date(from: "2026-01-05T07:16:00Z")))
        let id = try #require(ids.first)
        let output = try await environment.runtime.retrieveWorkflow(id: id).result()
        let status = try await environment.runtime.workflowStatus(id: id)
        await environment.close()
        #expect(ids.count == 1)
        #expect(RunAttributes(status?.attributes)?.spec?.text == spec.sourceText)
        #expect(status?.timeout == .seconds(3600))
        #expect(output.stringValue?.hasPrefix("tick at 2026-01-05T07:15:00") == true)
    }

    @Test func runEnqueuedOnADeclaredQueueIsExecutedByItsWorker() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-interp")
        let spec = try SpecFiles.write("""
            name: queued
            queues:
              - name: work
                worker_concurrency: 1
                priority: true
            steps:
              - id: only
                run: echo queued run
            """, as: "queued.yaml", in: directory)
        let environment = try await SpecTestRuntime.make(specs: [spec], directory: directory)
        let handle = try await environment.interpreter.start(
            spec: spec, workflowID: "queued-1", queue: "work", priority: 3, deduplicationID: "only-one")
        let output = try await handle.result()
        let status = try await environment.runtime.workflowStatus(id: "queued-1")
        await environment.close()
        #expect(output == "queued run")
        #expect(status?.queueName == "work")
    }

    @Test func runStoresItsSpecTextWithItsSHA256() async throws {
        let specs = try SpecFiles.referenceSpecs()
        let spec = try #require(specs["hello"])
        let environment = try await SpecTestRuntime.make(specs: [spec])
        _ = try await environment.run(spec, id: "hash-1")
        let attributes = try await environment.runtime.workflowStatus(id: "hash-1")?.attributes
        await environment.close()
        let stored = try #require(RunAttributes(attributes)?.spec)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["sha256sum", spec.file]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let printed = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(stored.text == spec.sourceText)
        #expect(stored.file == spec.file)
        #expect(printed.hasPrefix(stored.hash + " "))
    }

    @Test func nestedListsInsideMapItemsRunWithTheirOwnGraphs() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-interp")
        _ = try SpecFiles.write("""
            name: shout
            input:
              type: object
              properties:
                word: {type: string, default: nothing}
            steps:
              - id: up
                env: {WORD: "${{ input.word }}"}
                run: echo "$WORD" | tr a-z A-Z
            """, as: "shout.yaml", in: directory)
        let spec = try SpecFiles.write("""
            name: nested
            steps:
              - id: prefix
                run: echo "#"
              - id: each
                map: [ann, bob]
                steps:
                  - id: both
                    parallel:
                      - steps:
                          - id: child
                            workflow: shout
                            with: {word: "${{ item }}"}
                      - steps:
                          - id: at
                            env: {P: "${{ steps.prefix.output }}", I: "${{ index }}"}
                            run: echo "$P$I"
                  - id: label
                    env: {PARTS: "${{ join(steps.both.output, ' ') }}"}
                    run: echo "$PARTS"
            """, as: "nested.yaml", in: directory)
        let shout = try SpecLoader().load(file: directory.file("shout.yaml"))
        let environment = try await SpecTestRuntime.make(specs: [spec], directorySpecs: [shout], directory: directory)
        let output = try await environment.run(spec, id: "nested-1")
        let attributes = try await environment.runtime.workflowStatus(id: "nested-1")?.attributes
        let itemAttributes = try await environment.runtime.workflowStatus(id: "nested-1-1-0")?.attributes
        await environment.close()
        #expect(output == ["ANN #0", "BOB #1"])
        let stored = try #require(RunAttributes(attributes))
        #expect(stored.spec?.text.contains("name: nested") == true)
        #expect(stored.childSpecs["shout"] != nil)
        let item = try #require(RunAttributes(itemAttributes))
        #expect(item.spec == nil)
        #expect(item.rootWorkflowID == "nested-1")
        #expect(item.path == ["each", 0])
    }
}

/// An error a test handler throws.
enum StepTestError: Error, CustomStringConvertible {
    case declined
    var description: String { "card declined" }
}
