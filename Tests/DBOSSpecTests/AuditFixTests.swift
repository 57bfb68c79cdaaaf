import DBOS
import DBOSSpec
import DBOSTestSupport
import Foundation
import Testing

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
    func problems(_ text: String, file: String = "q.yaml") -> [String] {
        let (spec, errors) = SpecLoader().decode(text: text, file: file)
        let all = errors + (spec.map { SpecValidator().validate($0) } ?? [])
        return all.sorted { $0.location < $1.location }.map(\.description)
    }

    @Test func workerConcurrencyAboveGlobalConcurrencyIsAValidationError() {
        #expect(problems("""
            queues:
              - {name: gq, worker_concurrency: 5, concurrency: 1}
            steps: [{id: s, run: echo}]
            """) == [
            "q.yaml:2:36: error: 'worker_concurrency' (5) cannot exceed 'concurrency' (1): one process cannot run more of the queue's runs than all processes together",
        ])
        #expect(problems("queues: [{name: gq, worker_concurrency: 2, concurrency: 2}]\nsteps: [{id: s, run: echo}]\n").isEmpty)
    }

    @Test func anEmptyOrReservedQueueNameIsAValidationError() {
        #expect(problems("""
            queues:
              - name: ''
              - name: _dbos_internal_queue
            steps: [{id: s, run: echo}]
            """) == [
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
    func problems(_ text: String) -> [String] {
        let (spec, errors) = SpecLoader().decode(text: text, file: "z.yaml")
        let all = errors + (spec.map { SpecValidator().validate($0) } ?? [])
        return all.sorted { $0.location < $1.location }.map(\.description)
    }

    @Test func zeroIsValidForSleepsWaitsAndRetryIntervals() {
        #expect(problems("""
            steps:
              - {id: a, sleep: 0s}
              - {id: b, run: 'false', retry: {max_attempts: 2, interval: 0s, max_interval: 0ms}, continue_on_error: true}
              - {id: c, recv: {topic: t, timeout: 0s, default: 1}}
              - {id: d, recv: {topic: t}, timeout: 0ms, default: 1}
              - {id: e, get_event: {from: x, key: k, timeout: 0s}, continue_on_error: true}
            """) == [])
    }

    @Test func zeroIsAnErrorForTimeLimitsAndRatePeriods() {
        #expect(problems("""
            timeout: 0s
            queues: [{name: q, rate_limit: {limit: 1, period: 0s}}]
            steps:
              - {id: a, run: echo, timeout: 0ms}
              - {id: b, run: echo, compensate: {run: echo, timeout: 0s}}
            """) == [
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
