// A worker process the crash tests start and SIGKILL. It runs workflows that log each step
// body's execution to a file, so the tests can count what ran again after recovery.
//
//   dbos-test-worker start DB_URL WORK_DIR WORKFLOW WORKFLOW_ID   start one run and wait for it
//   dbos-test-worker enqueue DB_URL WORK_DIR ID...                enqueue `queued-steps` runs on queue `own`, which
//                                                                 this process serves, and wait for them
//   dbos-test-worker recover DB_URL WORK_DIR                      recover this executor's runs and wait for them
//   dbos-test-worker serve DB_URL WORK_DIR EXECUTOR_ID            serve queue `shared` and the `every-second`
//                                                                 schedule until WORK_DIR/stop exists
//
// DB_URL is a system database URL of either backend (`sqlite:PATH` or `postgresql://...`).
import DBOS
import DBOSTestSupport
import Foundation

/// Appends one line to WORK_DIR/executions.log with O_APPEND, so lines from killed processes survive.
func logExecution(_ line: String, in directory: String) {
    appendLine(line, toFile: "\(directory)/executions.log")
}

/// While WORK_DIR/block exists, the step that checks it waits: the test kills the process then.
func waitWhileBlocked(in directory: String) async throws {
    while FileManager.default.fileExists(atPath: "\(directory)/block") {
        try await Task.sleep(for: .milliseconds(50))
    }
}

let arguments = CommandLine.arguments
guard arguments.count >= 4 else {
    FileHandle.standardError.write(Data("usage: dbos-test-worker start|enqueue|recover|serve DB_URL WORK_DIR [WORKFLOW ID | ID... | EXECUTOR_ID]\n".utf8))
    exit(2)
}
let mode = arguments[1]
let databaseURL = arguments[2]
let workDirectory = arguments[3]

let executorID = mode == "serve" && arguments.count >= 5 ? arguments[4] : "crash-worker"
let runtime = try await DBOSRuntime(configuration: DBOSConfiguration(
    appName: "crash-test", systemDatabaseURL: databaseURL, executorID: executorID,
    applicationVersion: "crash-test-v1", pollingInterval: .milliseconds(50)))

/// Four steps returning 0, 10, 20 and 30, each logging `label(index)`; step 2 waits while blocked.
@Sendable func fourLoggedSteps(_ context: WorkflowContext, in directory: String, label: @escaping @Sendable (Int) -> String) async throws -> Int {
    var total = 0
    for index in 0..<4 {
        total += try await context.runStep("step-\(index)") {
            logExecution(label(index), in: directory)
            if index == 2 { try await waitWhileBlocked(in: directory) }
            return index * 10
        }
    }
    return total
}

let fourSteps = try runtime.register("four-steps") { (context: WorkflowContext, directory: String) -> Int in
    try await fourLoggedSteps(context, in: directory) { "step-\($0)" }
}

/// `four-steps` logging its run's ID with each step, for several runs at once.
let queuedSteps = try runtime.register("queued-steps") { (context: WorkflowContext, directory: String) -> Int in
    let id = context.workflowID
    return try await fourLoggedSteps(context, in: directory) { "\(id) step-\($0)" }
}

/// A step, then a wait that is not a durable operation (while blocked), then another step: the first
/// step's checkpoint is left to the deferred-checkpoint watch meanwhile.
let stepThenWait = try runtime.register("step-then-wait") { (context: WorkflowContext, directory: String) -> String in
    try await context.runStep("before") { logExecution("before", in: directory) }
    try await waitWhileBlocked(in: directory)
    try await context.runStep("after") { logExecution("after", in: directory) }
    return "waited"
}

let sleeper = try runtime.register("sleeper") { (context: WorkflowContext, directory: String) -> String in
    try await context.runStep("before") { logExecution("before", in: directory) }
    try await context.sleep(for: .seconds(4))
    try await context.runStep("after") { logExecution("after", in: directory) }
    return "rested"
}

/// Logs its start and end with the executor and epoch milliseconds, holding a queue slot meanwhile.
let tracked = try runtime.register("tracked") { (context: WorkflowContext, _: Int) -> Int in
    try await context.runStep("hold") {
        let started = Date().epochMillisecondsForLog
        try await Task.sleep(for: .milliseconds(120))
        logExecution("\(context.workflowID) \(executorID) \(started) \(Date().epochMillisecondsForLog)", in: workDirectory)
    }
    return 1
}
let ticked = try runtime.register("ticked") { (context: WorkflowContext, input: ScheduledWorkflowInput) -> String in
    try await context.runStep("tick") {
        logExecution("tick \(context.workflowID) \(executorID)", in: workDirectory)
    }
    return context.workflowID
}
if mode == "serve" {
    try runtime.register(queue: WorkflowQueue(name: "shared", workerConcurrency: 2, globalConcurrency: 3))
    try runtime.register(schedule: WorkflowSchedule(
        name: "every-second", expression: try ScheduleExpression(parsing: "* * * * * *"), workflowName: ticked.name))
}
if mode == "enqueue" || mode == "recover" {
    try runtime.register(queue: WorkflowQueue(name: "own", workerConcurrency: 2))
}
_ = tracked

try await runtime.launch()
switch mode {
case "serve":
    while !FileManager.default.fileExists(atPath: "\(workDirectory)/stop") {
        try await Task.sleep(for: .milliseconds(50))
    }
    print("stopping")
case "start":
    guard arguments.count == 6 else { exit(2) }
    let options = WorkflowOptions(workflowID: arguments[5])
    let output: String
    switch arguments[4] {
    case fourSteps.name: output = String(try await runtime.startWorkflow(fourSteps, input: workDirectory, options: options).result())
    case sleeper.name: output = try await runtime.startWorkflow(sleeper, input: workDirectory, options: options).result()
    case stepThenWait.name: output = try await runtime.startWorkflow(stepThenWait, input: workDirectory, options: options).result()
    default: exit(2)
    }
    print("result: \(output)")
case "enqueue":
    var handles: [WorkflowHandle<Int>] = []
    for id in arguments.dropFirst(4) {
        handles.append(try await runtime.startWorkflow(
            queuedSteps, input: workDirectory, options: WorkflowOptions(workflowID: id, queueName: "own")))
    }
    for handle in handles { print("result: \(try await handle.result())") }
case "recover":
    // launch() has already resumed this executor's runs (queued ones through their queue): wait
    // until none is left unfinished.
    while try await !runtime.listWorkflows(WorkflowFilter(states: [.pending, .enqueued])).isEmpty {
        try await Task.sleep(for: .milliseconds(50))
    }
    print("recovered")
default:
    exit(2)
}
await runtime.shutdown(gracePeriod: .seconds(5))

extension Date {
    var epochMillisecondsForLog: Int64 { Int64(timeIntervalSince1970 * 1000) }
}
