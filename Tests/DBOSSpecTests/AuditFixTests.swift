import DBOS
import DBOSSpec
import DBOSTestSupport
import Foundation
import Testing

/// Every problem of spec `text` checked alone (decoding and validation), as printed, in position order.
func problems(_ text: String, file: String) -> [String] {
    let (spec, errors) = SpecLoader().decode(text: text, file: file)
    let all = errors + (spec.map { SpecValidator().validate($0) } ?? [])
    return all.sorted { $0.location < $1.location }.map(\.description)
}

/// The problems an audit of `dbos-run` against SPEC-FORMAT found, each pinned by a test.
@Suite struct DefaultWorkflowNameTests {
    func defaultName(of file: String) -> String? {
        SpecLoader().decode(text: "steps: [{id: s, run: echo}]\n", file: file).spec?.name
    }

    @Test func onlyYAMLExtensionsAreStrippedFromTheFileName() {
        #expect(defaultName(of: "specs/order.yaml") == "order")
        #expect(defaultName(of: "specs/order.yml") == "order")
        #expect(defaultName(of: "specs/x.json") == "x.json")
        #expect(defaultName(of: "specs/x.spec.yaml") == "x.spec")
        #expect(defaultName(of: "specs/notes") == "notes")
    }
}

/// Every rule the engine checks when it registers a queue is a validation error, and a broken spec next to
/// the one being run stops the run only when the run needs it.
@Suite struct QueueRegistrationRuleTests {
    @Test func workerConcurrencyAboveGlobalConcurrencyIsAValidationError() {
        #expect(problems("""
            queues:
              - {name: gq, worker_concurrency: 5, concurrency: 1}
            steps: [{id: s, run: echo}]
            """, file: "q.yaml") == [
            "q.yaml:2:36: error: 'worker_concurrency' (5) cannot exceed 'concurrency' (1): one process cannot run more of the queue's runs than all processes together",
        ])
        #expect(problems("queues: [{name: gq, worker_concurrency: 2, concurrency: 2}]\nsteps: [{id: s, run: echo}]\n", file: "q.yaml").isEmpty)
    }

    @Test func anEmptyOrReservedQueueNameIsAValidationError() {
        #expect(problems("""
            queues:
              - name: ''
              - name: _dbos_internal_queue
            steps: [{id: s, run: echo}]
            """, file: "q.yaml") == [
            "q.yaml:2:11: error: a queue's 'name' must not be empty",
            "q.yaml:3:11: error: queue name '_dbos_internal_queue' is reserved for the engine; choose another name",
        ])
    }

    @Test(arguments: [
        "{name: a, worker_concurrency: 5, concurrency: 1}", "{name: ''}",
        "{name: b, worker_concurrency: 1, concurrency: 1}", "{name: c, rate_limit: {limit: 1, period: 1ms}}",
    ])
    func aQueueValidatesExactlyWhenTheEngineRegistersIt(_ declaration: String) async throws {
        let (decoded, errors) = SpecLoader().decode(text: "queues: [\(declaration)]\nsteps: [{id: s, run: echo}]\n", file: "q.yaml")
        let spec = try #require(decoded)
        let validates = (errors + SpecValidator().validate(spec)).isEmpty
        let directory = try TemporaryDirectory(prefix: "dbos-audit")
        defer { directory.remove() }
        let runtime = try await DBOSRuntime(configuration: DBOSConfiguration(
            systemDatabaseURL: "sqlite:\(directory.file("system.sqlite"))", applicationVersion: "audit-tests"))
        let registers = (try? SpecInterpreter(runtime: runtime, specs: [spec])) != nil
        await runtime.shutdown(gracePeriod: .zero)
        #expect(validates == registers, "\(declaration): validates \(validates), registers \(registers)")
    }

    @Test func aBrokenSpecNextToTheRunIsIgnoredUnlessTheRunNeedsIt() throws {
        let directory = try TemporaryDirectory(prefix: "dbos-audit")
        defer { directory.remove() }
        try "name: gc\nqueues: [{name: gq, worker_concurrency: 5, concurrency: 1}]\nsteps: [{id: s, run: echo}]\n"
            .write(toFile: directory.file("gc.yaml"), atomically: true, encoding: .utf8)
        // Unrelated: loads.
        let hello = try SpecFiles.write("name: hello\nsteps: [{id: s, run: echo hi}]\n", as: "hello.yaml", in: directory)
        #expect(hello.name == "hello")
        // Names the broken spec as a child, or uses the queue only it declares: its problems are reported.
        for (name, step) in [("child", "{id: c, workflow: gc}"), ("queued", "{id: c, workflow: queued, queue: gq, wait: false}")] {
            #expect {
                _ = try SpecFiles.write("name: \(name)\nsteps: [\(step)]\n", as: "\(name).yaml", in: directory)
            } throws: { error in
                let lines = (error as? SpecValidationError)?.errors.map(\.description) ?? []
                return lines.contains { $0.hasPrefix(directory.file("gc.yaml") + ":2:41: error: 'worker_concurrency' (5) cannot exceed") }
                    && lines.contains { $0.hasPrefix(directory.file("\(name).yaml") + ":2:") && $0.contains(directory.file("gc.yaml") + ", which has errors") }
            }
            try FileManager.default.removeItem(atPath: directory.file("\(name).yaml"))
        }
        // `validate` of the unrelated spec passes; of one that needs the broken spec, it reports it.
        #expect(SpecLoader().validateFiles([directory.file("hello.yaml")]).isEmpty)
    }
}

/// `0s` is a duration where zero means something (no wait, an immediate retry, a wait that does not wait) and a
/// clear error where it does not (a time limit, a rate period).
@Suite struct ZeroDurationTests {
    @Test func zeroIsValidForSleepsWaitsAndRetryIntervals() {
        #expect(problems("""
            steps:
              - {id: a, sleep: 0s}
              - {id: b, run: 'false', retry: {max_attempts: 2, interval: 0s, max_interval: 0ms}, continue_on_error: true}
              - {id: c, recv: {topic: t, timeout: 0s, default: 1}}
              - {id: d, recv: {topic: t}, timeout: 0ms, default: 1}
              - {id: e, get_event: {from: x, key: k, timeout: 0s}, continue_on_error: true}
            """, file: "z.yaml") == [])
    }

    @Test func zeroIsAnErrorForTimeLimitsAndRatePeriods() {
        #expect(problems("""
            timeout: 0s
            queues: [{name: q, rate_limit: {limit: 1, period: 0s}}]
            steps:
              - {id: a, run: echo, timeout: 0ms}
              - {id: b, run: echo, compensate: {run: echo, timeout: 0s}}
            """, file: "z.yaml") == [
            "z.yaml:1:10: error: 'timeout' must be greater than zero, not '0s'",
            "z.yaml:2:51: error: 'period' must be greater than zero, not '0s'",
            "z.yaml:4:33: error: 'timeout' must be greater than zero, not '0ms'",
            "z.yaml:5:57: error: 'timeout' must be greater than zero, not '0s'",
        ])
    }

    @Test func zeroDurationsRunWithoutWaiting() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-audit")
        let log = directory.file("attempts.log")
        let spec = try SpecFiles.write("""
            steps:
              - {id: nap, sleep: 0s}
              - id: flaky
                run: 'echo x >> "$LOG"; test $(wc -l < "$LOG") -ge 3'
                env: {LOG: \(log)}
                retry: {max_attempts: 3, interval: 0s}
              - {id: poll, recv: {topic: none, timeout: 0s, default: nothing}}
            """, as: "z.yaml", in: directory)
        let environment = try await SpecTestRuntime.make(specs: [spec], directory: directory)
        let start = ContinuousClock.now
        let output = try await environment.run(spec)
        let elapsed = ContinuousClock.now - start
        let attempts = SideEffectLog(path: log).lines.count
        await environment.close()
        #expect(output == "nothing")
        #expect(attempts == 3)
        #expect(elapsed < .seconds(5))
    }
}

/// `${{ expression }}` wherever a step takes a duration (and in `retry:`), evaluated when the step runs.
@Suite struct TemplatedDurationTests {
    @Test func templatesWithKnownNamesAreValidWhereverAStepTakesADuration() {
        #expect(problems("""
            input: {properties: {d: {type: string}, n: {type: integer}}}
            steps:
              - {id: a, sleep: '${{ input.d }}'}
              - {id: b, run: echo, timeout: "${{ '1s' }}", retry: {max_attempts: '${{ input.n }}', interval: '${{ input.d }}', backoff: '${{ 1.5 }}', max_interval: '${{ input.n }}s'}}
              - {id: c, recv: {topic: t, timeout: '${{ input.d }}'}, continue_on_error: true}
              - {id: d, get_event: {from: x, key: k, timeout: '${{ steps.a.status }}'}, continue_on_error: true}
              - {id: e, workflow: t, timeout: '${{ input.d }}', with: {}}
              - {id: f, run: echo, compensate: {run: echo, timeout: '${{ input.d }}', retry: {interval: '${{ input.d }}'}}}
            """, file: "t.yaml") == [])
    }

    @Test func templateSyntaxUnknownNamesAndConstantNonDurationsAreValidationErrors() {
        #expect(problems("""
            input: {properties: {d: {type: string}}}
            timeout: '${{ input.d }}'
            steps:
              - {id: a, sleep: '${{ inptu.d }}'}
              - {id: b, sleep: '${{ input. }}'}
              - {id: c, sleep: "${{ 'soon' }}"}
              - {id: e, run: echo, timeout: '${{ 0 }}'}
              - {id: f, run: echo, retry: {max_attempts: '${{ 0 }}'}}
            """, file: "t.yaml") == [
            "t.yaml:2:10: error: 'timeout' must be a literal duration such as 30s, not a template: the workflow's deadline is set when the run is created, before any template is evaluated",
            "t.yaml:4:25: error: unknown name 'inptu' in expression (did you mean 'input'?)",
            "t.yaml:5:32: error: invalid expression: expected a field name after '.' but found the end of the expression",
            "t.yaml:6:20: error: 'sleep' must be a duration such as 30s or a number of seconds, not \"soon\"",
            "t.yaml:7:33: error: 'timeout' must be greater than zero, not 0",
            "t.yaml:8:46: error: 'retry.max_attempts' must be a whole number of at least 1, not 0",
        ])
    }

    static let napSpec = """
        input: {properties: {d: {}, attempts: {type: integer, default: 1}, log: {type: string, default: /dev/null}}}
        steps:
          - {id: nap, sleep: '${{ input.d }}'}
          - id: flaky
            run: 'echo x >> "$LOG"; test $(wc -l < "$LOG") -ge 2'
            env: {LOG: '${{ input.log }}'}
            retry: {max_attempts: '${{ input.attempts }}', interval: '${{ input.d }}'}
          - {id: limited, run: sleep 5, timeout: '${{ input.d }}', continue_on_error: true}
        output: ${{ steps.limited.error }}
        """

    @Test func aTemplatedDurationIsEvaluatedWhenTheStepRuns() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-audit")
        let spec = try SpecFiles.write(Self.napSpec, as: "nap.yaml", in: directory)
        let environment = try await SpecTestRuntime.make(specs: [spec], directory: directory)
        // A duration string, then a number of seconds; two attempts of `flaky` with the templated interval.
        let text = try await environment.run(spec, input: ["d": "300ms", "attempts": 2, "log": .string(directory.file("a.log"))])
        let number = try await environment.run(spec, input: ["d": 0.3, "attempts": 2, "log": .string(directory.file("b.log"))])
        let tooFewAttempts = await environment.failureMessage(of: spec, input: ["d": "10ms", "log": .string(directory.file("c.log"))])
        let notADuration = await environment.failureMessage(of: spec, input: ["d": "soon"])
        await environment.close()
        #expect(text == "timed out after 300ms; its process group was killed")
        #expect(number == "timed out after 300ms; its process group was killed")
        #expect(tooFewAttempts.contains("step 'flaky'"))
        #expect(notADuration == #"step 'nap' (\#(directory.file("nap.yaml")):3:5) failed: 'sleep' must be a duration such as 30s or a number of seconds, not "soon""#)
    }

    @Test func aRecoveredSleepKeepsItsCheckpointedWakeUpInsteadOfEvaluatingAgain() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-audit")
        let spec = try SpecFiles.write("""
            steps:
              - {id: nap, sleep: '${{ secrets.NAP }}'}
              - {id: done, run: echo done}
            """, as: "nap.yaml", in: directory)
        let first = try await SpecTestRuntime.make(specs: [spec], directory: directory, secrets: { $0 == "NAP" ? "2s" : nil })
        let start = ContinuousClock.now
        _ = try await first.interpreter.start(spec: spec, workflowID: "nap-1")
        let deadline = ContinuousClock.now + .seconds(20)
        while try await first.runtime.listSteps(workflowID: "nap-1").isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        await first.runtime.shutdown(gracePeriod: .zero)
        // The secret is gone: evaluating the template again would fail the step.
        let second = try await SpecTestRuntime.make(specs: [spec], directory: directory, secrets: { _ in nil })
        let output = try await second.runtime.retrieveWorkflow(id: "nap-1").result()
        let elapsed = ContinuousClock.now - start
        await second.close()
        #expect(output == "done")
        #expect(elapsed >= .seconds(2) && elapsed < .seconds(30))
    }

    @Test func aTemplatedLimitThatCannotBeUsedFailsTheStepAtItsSlotDurably() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-audit")
        let spec = try SpecFiles.write("""
            input: {properties: {t: {}}}
            steps:
              - {id: bounded, run: echo hi, timeout: '${{ input.t }}', continue_on_error: true}
              - {id: after, run: echo after}
            """, as: "limit.yaml", in: directory)
        let environment = try await SpecTestRuntime.make(specs: [spec], directory: directory)
        _ = try await environment.run(spec, input: ["t": "soon"], id: "limit-1")
        let steps = try await environment.runtime.listSteps(workflowID: "limit-1")
        await environment.close()
        // Checkpointed like the action's own failure, so a replay makes the same decision.
        #expect(steps.first { $0.functionID == 0 }?.error?.message
            == #"'timeout' must be a duration such as 30s or a number of seconds, not "soon""#)
    }

    @Test func aCompensationsUnusableTemplatedLimitIsCheckpointedAsItsFailure() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-audit")
        let spec = try SpecFiles.write("""
            input: {properties: {t: {}}}
            steps:
              - {id: charge, run: echo charged, compensate: {run: echo refunded, timeout: '${{ input.t }}'}}
              - {id: ship, run: exit 3}
            """, as: "saga.yaml", in: directory)
        let environment = try await SpecTestRuntime.make(specs: [spec], directory: directory)
        _ = await environment.failureMessage(of: spec, input: ["t": "soon"], id: "saga-1")
        let steps = try await environment.runtime.listSteps(workflowID: "saga-1")
        await environment.close()
        #expect(steps.first { $0.name == "charge.compensate" }?.error?.message
            == #"'timeout' must be a duration such as 30s or a number of seconds, not "soon""#)
    }

    @Test func aCheckpointedStepsTemplatedLimitsAreNotEvaluatedAgainOnRecovery() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-audit")
        let spec = try SpecFiles.write("""
            steps:
              - {id: first, run: echo first, timeout: '${{ secrets.LIMIT }}', retry: {interval: '${{ secrets.LIMIT }}'}}
              - {id: hold, recv: {topic: go}}
            """, as: "limits.yaml", in: directory)
        let first = try await SpecTestRuntime.make(specs: [spec], directory: directory, secrets: { $0 == "LIMIT" ? "5s" : nil })
        _ = try await first.interpreter.start(spec: spec, workflowID: "limits-1")
        let deadline = ContinuousClock.now + .seconds(20)
        while try await first.runtime.listSteps(workflowID: "limits-1").isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        await first.runtime.shutdown(gracePeriod: .zero)
        // The secret is gone: evaluating the templates again would fail the replayed step.
        let second = try await SpecTestRuntime.make(specs: [spec], directory: directory, secrets: { _ in nil })
        try await second.runtime.send(to: "limits-1", topic: "go", message: "go")
        let output = try await second.runtime.retrieveWorkflow(id: "limits-1").result()
        await second.close()
        #expect(output == "go")
    }
}

/// An input that fails the `input:` schema is reported at the part of the schema it violates.
@Suite struct InputSchemaLocationTests {
    static let schemaText = """
        input:
          type: object
          required: [order_id]
          properties:
            order_id: {type: string}
            count: {type: integer, minimum: 1, maximum: 10}
            mode: {enum: [fast, slow]}
        steps: [{id: s, run: echo}]
        """

    @Test func eachProblemPointsAtTheSchemaNodeTheInputViolates() throws {
        let spec = try #require(SpecLoader().decode(text: Self.schemaText, file: "inp.yaml").spec)
        let schema = try #require(spec.inputSchema)
        #expect(schema.validateInput(["count": 11, "mode": "medium"]).map(\.description) == [
            "inp.yaml:3:14: error: invalid input: input.order_id is required",
            "inp.yaml:6:49: error: invalid input: input.count must be at most 10, not 11",
            "inp.yaml:7:18: error: invalid input: input.mode must be one of \"fast\", \"slow\", not \"medium\"",
        ])
        #expect(schema.validateInput(["order_id": 5, "count": 0]).map(\.description) == [
            "inp.yaml:5:22: error: invalid input: input.order_id must be a string, not integer",
            "inp.yaml:6:37: error: invalid input: input.count must be at least 1, not 0",
        ])
        #expect(schema.validateInput("text").map(\.description) == ["inp.yaml:2:9: error: invalid input: input must be an object, not string"])
    }

    @Test func aRunRefusedForItsInputNamesTheFieldAndTheSchemaLine() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-audit")
        let spec = try SpecFiles.write(Self.schemaText, as: "inp.yaml", in: directory)
        let environment = try await SpecTestRuntime.make(specs: [spec], directory: directory)
        let message = await environment.failureMessage(of: spec, input: [:])
        await environment.close()
        #expect(message == "invalid input for 'inp': input.order_id is required (\(directory.file("inp.yaml")):3:14)")
    }
}
