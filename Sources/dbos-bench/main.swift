// The benchmark scenarios of BENCHMARKS.md, one JSON line each:
//
//   swift run -c release dbos-bench seq10|start1|start1-seq|queue1|queue1-atonce|enqueue-only|sleepers|spec10 [--db URL] [-n N]
//       [--step-checkpoints with-next-operation|before-returning] [--checkpoint-delay-ms N]
//
// start1 starts its 1000 runs at once, from a task group; start1-seq starts them one after the other,
// as the peer's par.py does. queue1 enqueues one after the other (its enqueue-to-start wait means
// something only then); queue1-atonce enqueues all at once. enqueue-only measures what one start
// costs when nothing runs meanwhile (enqueues from a client to a queue nobody serves).
//
// spec10 is the seq10 workflow written as a YAML spec (10 `handler:` steps calling a no-op handler) run by
// the interpreter; it also measures seq10 in the same process and reports the ratio of the p50s.
//
// Without --db each scenario uses a fresh SQLite file in a temporary directory. --step-checkpoints picks
// DBOSConfiguration.stepCheckpointWrites (default with-next-operation, the engine's default), for A/B runs;
// --checkpoint-delay-ms N is with-next-operation waiting at most N ms (the default 2), which also bounds
// how long an outcome nobody awaits may wait to share a commit.
import DBOS
import DBOSSpec
import Foundation
import Synchronization

struct Options {
    var scenario = ""
    var databaseURL: String?
    var count: Int?
    var stepCheckpointWrites = DBOSConfiguration().stepCheckpointWrites
    /// What was wrong with the arguments, if anything.
    var problem: String?
}

func parseOptions() -> Options {
    var options = Options()
    var arguments = Array(CommandLine.arguments.dropFirst())
    while !arguments.isEmpty {
        let argument = arguments.removeFirst()
        switch argument {
        case "--db":
            options.databaseURL = arguments.isEmpty ? nil : arguments.removeFirst()
            if options.databaseURL == nil { options.problem = "--db needs a URL" }
        case "-n":
            options.count = arguments.isEmpty ? nil : Int(arguments.removeFirst())
            if (options.count ?? 0) <= 0 { options.problem = "-n needs a positive count" }
        case "--step-checkpoints":
            switch arguments.isEmpty ? "" : arguments.removeFirst() {
            case "with-next-operation": break
            case "before-returning": options.stepCheckpointWrites = .beforeReturning
            default: options.problem = "--step-checkpoints needs with-next-operation or before-returning"
            }
        case "--checkpoint-delay-ms":
            guard let milliseconds = arguments.isEmpty ? nil : Int(arguments.removeFirst()), milliseconds > 0 else {
                options.problem = "--checkpoint-delay-ms needs a positive number of milliseconds"
                break
            }
            options.stepCheckpointWrites = .beforeNextOperation(within: .milliseconds(milliseconds))
        default:
            if !options.scenario.isEmpty { options.problem = "one scenario at a time (got \(options.scenario) and \(argument))" }
            options.scenario = argument
        }
    }
    return options
}

/// Prints one JSON object per line, keys in a stable order.
func report(_ fields: KeyValuePairs<String, JSONValue>) {
    let body = fields.map { "\(JSONValue.string($0.key).jsonText):\($0.value.jsonText)" }.joined(separator: ",")
    print("{\(body)}")
}

func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
}

func rounded(_ value: Double, _ digits: Double = 100) -> JSONValue { .double((value * digits).rounded() / digits) }

/// Peak resident set size of this process, from /proc (VmHWM), in MiB.
func peakResidentMiB() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
        let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "")
    else { return 0 }
    return kilobytes / 1024
}

let options = parseOptions()
let usage = "usage: dbos-bench seq10|start1|start1-seq|queue1|queue1-atonce|enqueue-only|sleepers|spec10 [--db URL] [-n N] "
    + "[--step-checkpoints with-next-operation|before-returning] [--checkpoint-delay-ms N]\n"
if let problem = options.problem {
    FileHandle.standardError.write(Data("dbos-bench: \(problem)\n\(usage)".utf8))
    exit(2)
}
let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("dbos-bench-\(UUID().uuidString.prefix(8))").path
let url = options.databaseURL ?? "sqlite:\(scratch)/system.sqlite"
let backend = url.hasPrefix("sqlite") ? "sqlite" : "postgres"
defer { try? FileManager.default.removeItem(atPath: scratch) }

var configuration = DBOSConfiguration(
    appName: "dbos-bench", systemDatabaseURL: url, executorID: "bench-\(UUID().uuidString.prefix(8))",
    applicationVersion: "bench", recoversPendingWorkflows: false)
configuration.stepCheckpointWrites = options.stepCheckpointWrites
let runtime = try await DBOSRuntime(configuration: configuration)
let tenSteps = try runtime.register("ten-steps") { (context: WorkflowContext, value: Int) -> Int in
    var total = 0
    for index in 0..<10 { total += try await context.runStep("noop") { index } }
    return total + value
}
/// When each run's code began, by workflow ID: the end of its enqueue-to-start wait.
let startTimes = Mutex<[String: ContinuousClock.Instant]>([:])
let oneStep = try runtime.register("one-step") { (context: WorkflowContext, value: Int) -> Int in
    let now = ContinuousClock.now
    startTimes.withLock { $0[context.workflowID] = $0[context.workflowID] ?? now }
    return try await context.runStep("noop") { value }
}
let sleeper = try runtime.register("sleeper") { (context: WorkflowContext, seconds: Int) -> Int in
    try await context.sleep(for: .seconds(seconds))
    return seconds
}
try runtime.register(queue: WorkflowQueue(name: "bench", workerConcurrency: 50))

/// The seq10 workflow as a spec: ten `handler:` steps calling a registered no-op handler.
let specHandlers = HandlerRegistry()
specHandlers.register("noop") { (input: JSONValue, _: HandlerContext) async throws -> JSONValue in input }
let tenStepsSpecText = "name: ten-steps-spec\nsteps:\n" + (0..<10).map { index in
    "  - id: s\(index)\n    handler: noop\n    with: {i: \(index)}\n"
}.joined()
let tenStepsSpec = try SpecInterpreter.loader(handlers: specHandlers).load(text: tenStepsSpecText, file: "ten-steps-spec.yaml")
let interpreter = try SpecInterpreter(
    runtime: runtime, handlers: specHandlers, specs: [tenStepsSpec], registersSchedules: false)
try await runtime.launch()
let clock = ContinuousClock()

/// Starts `count` runs, all at once from a task group or one after the other, and returns their
/// handles in index order.
func startAll(
    _ count: Int, atOnce: Bool, _ start: @escaping @Sendable (Int) async throws -> WorkflowHandle<Int>
) async throws -> [WorkflowHandle<Int>] {
    guard atOnce else {
        var handles: [WorkflowHandle<Int>] = []
        for index in 0..<count { handles.append(try await start(index)) }
        return handles
    }
    return try await withThrowingTaskGroup(of: (Int, WorkflowHandle<Int>).self) { group in
        for index in 0..<count { group.addTask { (index, try await start(index)) } }
        var handles: [WorkflowHandle<Int>?] = Array(repeating: nil, count: count)
        for try await (index, handle) in group { handles[index] = handle }
        return handles.compactMap { $0 }
    }
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

switch options.scenario {
case "seq10":
    let count = options.count ?? 200
    _ = try await runtime.runWorkflow(tenSteps, input: 0)
    var latencies: [Double] = []
    let start = clock.now
    for index in 0..<count {
        let began = clock.now
        _ = try await runtime.runWorkflow(tenSteps, input: index)
        latencies.append(seconds(clock.now - began) * 1000)
    }
    let elapsed = seconds(clock.now - start)
    latencies.sort()
    report([
        "impl": "dbos-swift", "scenario": "seq10", "db": .string(backend), "n": .integer(Int64(count)),
        "p50_ms": rounded(percentile(latencies, 0.5), 1000), "p99_ms": rounded(percentile(latencies, 0.99), 1000),
        "steps_per_s": rounded(Double(count * 10) / elapsed, 10),
    ])
case "spec10":
    let count = options.count ?? 200
    _ = try await runtime.runWorkflow(tenSteps, input: 0)
    _ = try await interpreter.start(spec: tenStepsSpec, input: .object([:])).result()
    var codeLatencies: [Double] = []
    var specLatencies: [Double] = []
    var specElapsed = 0.0
    var lastSpecRun = ""
    // Alternate the two, so load on the machine affects both alike.
    for index in 0..<count {
        var began = clock.now
        let handle = try await interpreter.start(spec: tenStepsSpec, input: .object([:]))
        _ = try await handle.result()
        lastSpecRun = handle.workflowID
        let specLatency = seconds(clock.now - began)
        specElapsed += specLatency
        specLatencies.append(specLatency * 1000)
        began = clock.now
        _ = try await runtime.runWorkflow(tenSteps, input: index)
        codeLatencies.append(seconds(clock.now - began) * 1000)
    }
    // Check that the interpreter ran (and checkpointed) all ten steps.
    let specSteps = try await runtime.listSteps(workflowID: lastSpecRun).count
    specLatencies.sort()
    codeLatencies.sort()
    let specP50 = percentile(specLatencies, 0.5)
    let codeP50 = percentile(codeLatencies, 0.5)
    report([
        "impl": "dbos-swift", "scenario": "spec10", "db": .string(backend), "n": .integer(Int64(count)),
        "p50_ms": rounded(specP50, 1000), "p99_ms": rounded(percentile(specLatencies, 0.99), 1000),
        "steps_per_s": rounded(Double(count * 10) / specElapsed, 10),
        "seq10_p50_ms": rounded(codeP50, 1000), "seq10_p99_ms": rounded(percentile(codeLatencies, 0.99), 1000),
        "spec10_over_seq10": rounded(codeP50 > 0 ? specP50 / codeP50 : 0, 1000),
        "spec_steps_checkpointed": .integer(Int64(specSteps)),
    ])
case "start1", "start1-seq":
    // start1 starts all runs at once, from a task group (what "started at once" is in Swift);
    // start1-seq starts them one after the other, as the peer's par.py does.
    let count = options.count ?? 1000
    _ = try await runtime.runWorkflow(oneStep, input: 0)
    let start = clock.now
    let handles = try await startAll(count, atOnce: options.scenario == "start1") { index in
        try await runtime.startWorkflow(oneStep, input: index)
    }
    for handle in handles { _ = try await handle.result() }
    let elapsed = seconds(clock.now - start)
    report([
        "impl": "dbos-swift", "scenario": .string(options.scenario), "db": .string(backend), "n": .integer(Int64(count)),
        "wf_per_s": rounded(Double(count) / elapsed, 10),
    ])
case "queue1", "queue1-atonce":
    let count = options.count ?? 1000
    _ = try await runtime.runWorkflow(oneStep, input: 0)
    let enqueuedAt = Mutex<[String: ContinuousClock.Instant]>([:])
    let enqueueLatencies = Mutex<[Double]>([])
    let start = clock.now
    let handles = try await startAll(count, atOnce: options.scenario == "queue1-atonce") { index in
        let id = "queued-\(index)"
        let began = clock.now
        enqueuedAt.withLock { $0[id] = began }
        let handle = try await runtime.startWorkflow(
            oneStep, input: index, options: WorkflowOptions(workflowID: id, queueName: "bench"))
        let latency = seconds(clock.now - began) * 1000
        enqueueLatencies.withLock { $0.append(latency) }
        return handle
    }
    let enqueued = seconds(clock.now - start)
    for handle in handles { _ = try await handle.result() }
    let elapsed = seconds(clock.now - start)
    let started = startTimes.withLock { $0 }
    var waits = enqueuedAt.withLock { $0 }.compactMap { id, enqueued in started[id].map { seconds($0 - enqueued) * 1000 } }
    waits.sort()
    report([
        "impl": "dbos-swift", "scenario": .string(options.scenario), "db": .string(backend), "n": .integer(Int64(count)),
        "wf_per_s": rounded(Double(count) / elapsed, 10),
        "enqueue_to_start_p50_ms": rounded(percentile(waits, 0.5), 1000),
        "enqueue_p50_ms": rounded(percentile(enqueueLatencies.withLock { $0.sorted() }, 0.5), 1000),
        "enqueue_p99_ms": rounded(percentile(enqueueLatencies.withLock { $0.sorted() }, 0.99), 1000),
        "enqueued_after_ms": rounded(enqueued * 1000, 10),
    ])
case "enqueue-only":
    // What one start costs by itself: enqueues, one after the other, on a queue no process serves,
    // from a client (so nothing runs meanwhile). The bound of start1-seq and queue1.
    let count = options.count ?? 1000
    let client = try await DBOSClient(systemDatabaseURL: url)
    for index in 0..<20 { _ = try await client.enqueue(workflowName: "one-step", queueName: "unserved", input: index) }
    var latencies: [Double] = []
    for index in 0..<count {
        let began = clock.now
        _ = try await client.enqueue(workflowName: "one-step", queueName: "unserved", input: index)
        latencies.append(seconds(clock.now - began) * 1000)
    }
    await client.close()
    latencies.sort()
    report([
        "impl": "dbos-swift", "scenario": "enqueue-only", "db": .string(backend), "n": .integer(Int64(count)),
        "p50_ms": rounded(percentile(latencies, 0.5), 1000),
        "starts_per_s": rounded(Double(count) / (latencies.reduce(0, +) / 1000), 10),
    ])
case "sleepers":
    let count = options.count ?? 100_000
    let start = clock.now
    for index in 0..<count {
        _ = try await runtime.startWorkflow(sleeper, input: 3600, options: WorkflowOptions(workflowID: "sleeper-\(index)"))
    }
    // Every run is asleep once its sleep checkpoint exists.
    while try await runtime.listWorkflows(WorkflowFilter(states: [.pending], limit: 1)).isEmpty == false,
        try await runtime.listSteps(workflowID: "sleeper-\(count - 1)").isEmpty
    {
        try await Task.sleep(for: .milliseconds(100))
    }
    let elapsed = seconds(clock.now - start)
    report([
        "impl": "dbos-swift", "scenario": "sleepers", "db": .string(backend), "n": .integer(Int64(count)),
        "peak_rss_mib": rounded(peakResidentMiB(), 10), "seconds_to_start_all": rounded(elapsed, 10),
    ])
    for index in 0..<count { try await runtime.cancelWorkflow(id: "sleeper-\(index)") }
default:
    FileHandle.standardError.write(Data(usage.utf8))
    await runtime.shutdown(gracePeriod: .zero)
    exit(2)
}
await runtime.shutdown(gracePeriod: .seconds(1))
