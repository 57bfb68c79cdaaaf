import DBOS
import DBOSSpec
import DBOSTestSupport
import Foundation
import Synchronization
import Testing

/// Records when handler calls start and end, and how many run at once.
final class OverlapRecorder: Sendable {
    private let state = Mutex<(running: Int, maximum: Int, spans: [String: (start: ContinuousClock.Instant, end: ContinuousClock.Instant?)])>(
        (0, 0, [:]))

    /// Marks `name` as running for `duration`.
    func work(_ name: String, for duration: Duration) async throws {
        state.withLock { state in
            state.running += 1
            state.maximum = max(state.maximum, state.running)
            state.spans[name] = (ContinuousClock.now, nil)
        }
        try await Task.sleep(for: duration)
        state.withLock { state in
            state.running -= 1
            state.spans[name]?.end = ContinuousClock.now
        }
    }

    /// The most calls seen running at once.
    var maximum: Int { state.withLock { $0.maximum } }

    /// Whether the calls `a` and `b` ran at the same time.
    func overlapped(_ a: String, _ b: String) -> Bool {
        state.withLock { state in
            guard let first = state.spans[a], let second = state.spans[b], let firstEnd = first.end,
                let secondEnd = second.end
            else { return false }
            return first.start < secondEnd && second.start < firstEnd
        }
    }
}

@Suite struct InterpreterTests {
    @Test func independentStepsRunConcurrently() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-interp")
        let recorder = OverlapRecorder()
        let handlers = HandlerRegistry()
        handlers.register("work") { (input: JSONValue, _: HandlerContext) -> JSONValue in
            try await recorder.work(input["name"]?.stringValue ?? "", for: .milliseconds(400))
            return input["name"] ?? .null
        }
        let spec = try SpecFiles.write("""
            name: concurrent
            steps:
              - id: a
                handler: work
                with: {name: a}
              - id: b
                needs: []
                handler: work
                with: {name: b}
              - id: joined
                needs: [a, b]
                env: {A: "${{ steps.a.output }}", B: "${{ steps.b.output }}"}
                run: echo "$A$B"
            """, as: "concurrent.yaml", in: directory, handlers: handlers.names)
        let environment = try await SpecTestRuntime.make(specs: [spec], handlers: handlers, directory: directory)
        let output = try await environment.run(spec)
        await environment.close()
        #expect(output == "ab")
        #expect(recorder.overlapped("a", "b"))
    }

    @Test func skippedStepIsCheckpointedAtItsSlot() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-interp")
        let spec = try SpecFiles.write("""
            name: skipping
            input:
              type: object
              properties:
                go: {type: boolean, default: false}
            steps:
              - id: maybe
                if: ${{ input.go }}
                run: echo ran
              - id: after
                env: {STATUS: "${{ steps.maybe.status }}"}
                run: echo "maybe was $STATUS"
            """, as: "skipping.yaml", in: directory)
        let environment = try await SpecTestRuntime.make(specs: [spec], directory: directory)
        let output = try await environment.run(spec, id: "skip-1")
        let steps = try await environment.runtime.listSteps(workflowID: "skip-1")
        await environment.close()
        #expect(output == "maybe was skipped")
        #expect(steps.map(\.functionID) == [0, 1])
        #expect(steps.first?.name == "maybe")
    }

    @Test func continueOnErrorRecordsTheExitCodeAndStderrTail() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-interp")
        let spec = try SpecFiles.write("""
            name: tolerant
            steps:
              - id: fail
                run: |
                  echo "first line" >&2
                  echo "card declined" >&2
                  exit 3
                continue_on_error: true
              - id: after
                env: {S: "${{ steps.fail.status }}", E: "${{ steps.fail.error }}"}
                run: echo "$S|$E"
            """, as: "tolerant.yaml", in: directory)
        let environment = try await SpecTestRuntime.make(specs: [spec], directory: directory)
        let output = try await environment.run(spec)
        await environment.close()
        #expect(output == "error|exit code 3: first line\ncard declined")
    }

    @Test func failedStepNamesItselfAndItsLocation() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-interp")
        let spec = try SpecFiles.write("""
            name: failing
            steps:
              - id: charge
                run: echo "no funds" >&2; exit 3
            """, as: "failing.yaml", in: directory)
        let environment = try await SpecTestRuntime.make(specs: [spec], directory: directory)
        let handle = try await environment.interpreter.start(spec: spec, workflowID: "failing-1")
        var message = ""
        do {
            _ = try await handle.result()
        } catch {
            message = String(describing: error)
        }
        let status = try await environment.runtime.workflowStatus(id: "failing-1")
        await environment.close()
        #expect(message.contains("step 'charge' (\(directory.file("failing.yaml")):3:5) failed: exit code 3: no funds"))
        #expect(status?.state == .error)
        #expect(status?.error?.message.contains("exit code 3: no funds") == true)
    }

    @Test func shellStepFailingTwiceSucceedsOnItsThirdAttempt() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-interp")
        let spec = try SpecFiles.write("""
            name: flaky
            input:
              type: object
              required: [counter]
              properties:
                counter: {type: string}
            steps:
              - id: attempt
                env: {COUNTER: "${{ input.counter }}"}
                run: |
                  echo x >> "$COUNTER"
                  n=$(wc -l < "$COUNTER" | tr -d ' ')
                  if [ "$n" -lt 3 ]; then echo "attempt $n failed" >&2; exit 1; fi
                  echo "ok after $n"
                retry: {max_attempts: 5, interval: 10ms}
            """, as: "flaky.yaml", in: directory)
        let environment = try await SpecTestRuntime.make(specs: [spec], directory: directory)
        let output = try await environment.run(spec, input: ["counter": .string(directory.file("count"))], id: "flaky-1")
        let kinds = environment.events.kinds(of: "flaky-1")
        let attempts = SideEffectLog(path: directory.file("count")).lines.count
        await environment.close()
        #expect(output == "ok after 3")
        #expect(attempts == 3)
        #expect(kinds.contains(.stepRetrying(stepID: "attempt", attempt: 2, error: "exit code 1: attempt 1 failed")))
        #expect(kinds.contains(.stepRetrying(stepID: "attempt", attempt: 3, error: "exit code 1: attempt 2 failed")))
    }

    @Test func runStepTimeoutKillsItsWholeProcessGroup() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-interp")
        let spec = try SpecFiles.write("""
            name: stuck
            input:
              type: object
              properties:
                pids: {type: string}
            steps:
              - id: hang
                env: {PIDS: "${{ input.pids }}"}
                run: |
                  sleep 30 &
                  echo $! >> "$PIDS"
                  sleep 30 &
                  echo $! >> "$PIDS"
                  echo $$ >> "$PIDS"
                  wait
                timeout: 1s
            """, as: "stuck.yaml", in: directory)
        let environment = try await SpecTestRuntime.make(specs: [spec], directory: directory)
        let pidFile = directory.file("pids")
        let message = await environment.failureMessage(of: spec, input: ["pids": .string(pidFile)])
        let pids = SideEffectLog(path: pidFile).lines.compactMap { Int32($0) }
        await environment.close()
        #expect(message.contains("timed out after 1s"))
        #expect(pids.count == 3)
        for pid in pids { #expect(!processIsAlive(pid), "process \(pid) survived the timeout") }
    }

    @Test func mapOnAQueueRunsAtMostWorkerConcurrencyItemsAtOnce() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-interp")
        let recorder = OverlapRecorder()
        let handlers = HandlerRegistry()
        handlers.register("work") { (input: JSONValue, _: HandlerContext) -> JSONValue in
            try await recorder.work(input.interpolatedText, for: .milliseconds(200))
            return input
        }
        let spec = try SpecFiles.write("""
            name: fanout
            queues:
              - name: narrow
                worker_concurrency: 2
            steps:
              - id: each
                map: [10, 11, 12, 13, 14, 15]
                queue: narrow
                steps:
                  - id: square
                    handler: work
                    with: ${{ item * item + index }}
            """, as: "fanout.yaml", in: directory, handlers: handlers.names)
        let environment = try await SpecTestRuntime.make(specs: [spec], handlers: handlers, directory: directory)
        let output = try await environment.run(spec, id: "fanout-1")
        let children = try await environment.runtime.listSteps(workflowID: "fanout-1-0")
        await environment.close()
        #expect(output == [100, 122, 146, 172, 200, 230])
        #expect(recorder.maximum <= 2)
        #expect(recorder.maximum >= 1)
        #expect(children.map(\.functionID) == Array(0..<6))
        #expect(children.allSatisfy { $0.name == SpecInterpreter.stepsWorkflowName })
    }

    @Test func mapItemFailureFailsTheStep() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-interp")
        let spec = try SpecFiles.write("""
            name: partial
            steps:
              - id: each
                map: [1, 2, 3]
                steps:
                  - id: check
                    env: {N: "${{ item }}"}
                    run: if [ "$N" = 2 ]; then echo "bad item" >&2; exit 4; fi; echo "$N"
            """, as: "partial.yaml", in: directory)
        let environment = try await SpecTestRuntime.make(specs: [spec], directory: directory)
        let message = await environment.failureMessage(of: spec)
        await environment.close()
        #expect(message.contains("step 'each'"))
        #expect(message.contains("1 of 3 items failed"))
        #expect(message.contains("exit code 4: bad item"))
    }

    @Test func parallelFailsWhenAnyBranchFails() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-interp")
        let spec = try SpecFiles.write("""
            name: split
            steps:
              - id: both
                parallel:
                  - steps:
                      - id: good
                        run: echo fine
                  - steps:
                      - id: bad
                        run: echo "broken branch" >&2; exit 6
            """, as: "split.yaml", in: directory)
        let environment = try await SpecTestRuntime.make(specs: [spec], directory: directory)
        let message = await environment.failureMessage(of: spec)
        await environment.close()
        #expect(message.contains("step 'both'"))
        #expect(message.contains("1 of 2 branches failed"))
        #expect(message.contains("exit code 6: broken branch"))
    }

    @Test func compensationsAreCheckpointedAndNotRepeatedOnResume() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-interp")
        let log = SideEffectLog(path: directory.file("log"))
        let spec = try SpecFiles.write("""
            name: undo
            input:
              type: object
              properties:
                log: {type: string}
            steps:
              - id: reserve
                env: {LOG: "${{ input.log }}"}
                run: echo reserve >> "$LOG"; echo reserved
                compensate:
                  env: {LOG: "${{ input.log }}", WHAT: "${{ steps.reserve.output }}"}
                  run: echo "undo $WHAT" >> "$LOG"; echo released
              - id: ship
                run: exit 1
            """, as: "undo.yaml", in: directory)
        let environment = try await SpecTestRuntime.make(specs: [spec], directory: directory)
        await #expect(throws: (any Error).self) {
            try await environment.run(spec, input: ["log": .string(log.path)], id: "undo-1")
        }
        await #expect(throws: (any Error).self) {
            try await environment.interpreter.resume(workflowID: "undo-1").result()
        }
        let steps = try await environment.runtime.listSteps(workflowID: "undo-1")
        let lines = log.lines
        await environment.close()
        #expect(lines == ["reserve", "undo reserved"])
        #expect(steps.map(\.functionID) == [0, 1, 2])
        #expect(steps.last?.name == "reserve.compensate")
    }

    @Test func invalidInputIsRejectedBeforeAnythingRuns() async throws {
        let specs = try SpecFiles.referenceSpecs()
        let spec = try #require(specs["handler"])
        let handlers = HandlerRegistry()
        handlers.register("charge_card") { (input: JSONValue, _: HandlerContext) in input }
        let environment = try await SpecTestRuntime.make(specs: [spec], handlers: handlers)
        var caught: (any Error)?
        do {
            _ = try await environment.interpreter.start(spec: spec, input: ["amount": -5], workflowID: "bad-input")
        } catch {
            caught = error
        }
        let status = try await environment.runtime.workflowStatus(id: "bad-input")
        await environment.close()
        let error = try #require(caught as? SpecRunError)
        #expect(error.description.contains("input.order_id is required"))
        #expect(error.description.contains("input.amount must be at least 0"))
        #expect(status == nil)
    }

    @Test func aLiteralKeyOrTopicThatHappensToContainASecretsTextIsNotMasked() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-interp")
        defer { directory.remove() }
        let spec = try SpecFiles.write("""
            name: plain-names
            steps:
              - id: uses-secret
                env: {TOKEN: "${{ secrets.STAGE }}"}
                run: echo "$TOKEN"
              - id: publish
                set_event: {key: production, value: shipped}
              - id: tell
                send: {to: "${{ workflow.id }}", topic: production, message: hi}
              - id: hear
                recv: {topic: production, timeout: 10s}
            """, as: "plain.yaml", in: directory)
        let environment = try await SpecTestRuntime.make(
            specs: [spec], directory: directory, secrets: { $0 == "STAGE" ? "prod" : nil })
        let output = try await environment.run(spec, id: "plain-1")
        let event = try await environment.runtime.getEvent(workflowID: "plain-1", key: "production", timeout: .seconds(1))
        await environment.close()
        #expect(output == "hi")
        #expect(event == "shipped", "a key that reads no secret is stored as written")
    }

    @Test func secretsAreMaskedInOutputsAndErrorsAndNeverStored() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-interp")
        let secret = "s3cr3t-\(UUID().uuidString.prefix(8))"
        let handlers = HandlerRegistry()
        handlers.register("echo") { (input: JSONValue, _: HandlerContext) in input }
        let spec = try SpecFiles.write("""
            name: secretive
            steps:
              - id: show
                env: {TOKEN: "${{ secrets.TEST_TOKEN }}"}
                run: echo "token is $TOKEN"
              - id: fail
                env: {TOKEN: "${{ secrets.TEST_TOKEN }}"}
                run: echo "rejected $TOKEN" >&2; exit 2
                continue_on_error: true
              - id: handled
                handler: echo
                with: {value: "${{ secrets.TEST_TOKEN }}"}
              - id: publish
                set_event: {key: leaked, value: "${{ secrets.TEST_TOKEN }}"}
              - id: listen
                recv: {topic: "inbox-${{ secrets.TEST_TOKEN }}", timeout: 100ms, default: nothing}
              - id: keyed
                set_event: {key: "k-${{ secrets.TEST_TOKEN }}", value: under-a-secret-key}
              - id: tell
                send: {to: "${{ workflow.id }}", topic: "t-${{ secrets.TEST_TOKEN }}", message: hi}
              - id: hear
                recv: {topic: "t-${{ secrets.TEST_TOKEN }}", timeout: 10s}
              - id: broken
                env: {TOKEN: "${{ secrets.TEST_TOKEN }}"}
                run: echo "fatal $TOKEN" >&2; exit 5
            """, as: "secretive.yaml", in: directory, handlers: handlers.names)
        let environment = try await SpecTestRuntime.make(
            specs: [spec], handlers: handlers, directory: directory, secrets: { $0 == "TEST_TOKEN" ? secret : nil })
        let message = await environment.failureMessage(of: spec, id: "secret-1")
        let steps = try await environment.runtime.listSteps(workflowID: "secret-1")
        let event = try await environment.runtime.getEvent(workflowID: "secret-1", key: "leaked", timeout: .seconds(1))
        // Keys and topics are stored too: a secret in one is masked, alike on both sides.
        let keyed = try await environment.runtime.getEvent(workflowID: "secret-1", key: "k-***", timeout: .seconds(1))
        let events = environment.events.all.map { "\($0.kind)" }.joined(separator: "\n")
        await environment.runtime.shutdown(gracePeriod: .seconds(1))
        #expect(steps.first { $0.name == "show" }?.output == "token is ***")
        #expect(steps.first { $0.name == "fail" }?.error?.message == "exit code 2: rejected ***")
        #expect(steps.first { $0.name == "handled" }?.output == ["value": "***"])
        #expect(event == "***")
        #expect(keyed == "under-a-secret-key")
        #expect(steps.first { $0.functionID == 7 }?.output == "hi", "a message sent and received on a secret topic")
        #expect(message.contains("fatal ***"))
        #expect(!message.contains(secret))
        #expect(!events.contains(secret))
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix("system.sqlite") }
        #expect(!files.isEmpty)
        for file in files {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: directory.file(file)))
            #expect(bytes.range(of: Data(secret.utf8)) == nil, "\(file) holds the secret")
        }
        directory.remove()
    }
}

/// Whether a process exists and is not a zombie (a killed child whose parent is gone may linger as one when
/// PID 1 does not reap).
func processIsAlive(_ pid: Int32) -> Bool {
    guard kill(pid, 0) == 0 else { return false }
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return true }
    let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).prefix(1)
    return state != "Z" && state != "X"
}
