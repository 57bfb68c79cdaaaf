// A worker process the crash tests start and SIGKILL. It runs workflows that log each step
// body's execution to a file, so the tests can count what ran again after recovery.
//
//   dbos-test-worker start DB_PATH WORK_DIR WORKFLOW WORKFLOW_ID   start one run and wait for it
//   dbos-test-worker recover DB_PATH WORK_DIR                      recover this executor's runs and wait for them
import DBOS
import Foundation

/// Appends one line to WORK_DIR/executions.log with O_APPEND, so lines from killed processes survive.
func logExecution(_ line: String, in directory: String) {
    let path = "\(directory)/executions.log"
    let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    guard descriptor >= 0 else { fatalError("cannot open \(path)") }
    let bytes = Array("\(line)\n".utf8)
    _ = bytes.withUnsafeBufferPointer { write(descriptor, $0.baseAddress, $0.count) }
    fsync(descriptor)
    close(descriptor)
}

/// While WORK_DIR/block exists, the step that checks it waits: the test kills the process then.
func waitWhileBlocked(in directory: String) async throws {
    while FileManager.default.fileExists(atPath: "\(directory)/block") {
        try await Task.sleep(for: .milliseconds(50))
    }
}

let arguments = CommandLine.arguments
guard arguments.count >= 4 else {
    FileHandle.standardError.write(Data("usage: dbos-test-worker start|recover DB_PATH WORK_DIR [WORKFLOW ID]\n".utf8))
    exit(2)
}
let mode = arguments[1]
let databasePath = arguments[2]
let workDirectory = arguments[3]

let runtime = try await DBOSRuntime(configuration: DBOSConfiguration(
    appName: "crash-test", systemDatabaseURL: "sqlite:\(databasePath)", executorID: "crash-worker",
    applicationVersion: "crash-test-v1", pollingInterval: .milliseconds(50)))

let fourSteps = try runtime.register("four-steps") { (context: WorkflowContext, directory: String) -> Int in
    var total = 0
    for index in 0..<4 {
        total += try await context.runStep("step-\(index)") {
            logExecution("step-\(index)", in: directory)
            if index == 2 { try await waitWhileBlocked(in: directory) }
            return index * 10
        }
    }
    return total
}

let sleeper = try runtime.register("sleeper") { (context: WorkflowContext, directory: String) -> String in
    try await context.runStep("before") { logExecution("before", in: directory) }
    try await context.sleep(for: .seconds(4))
    try await context.runStep("after") { logExecution("after", in: directory) }
    return "rested"
}

try await runtime.launch()
switch mode {
case "start":
    guard arguments.count == 6 else { exit(2) }
    let options = WorkflowOptions(workflowID: arguments[5])
    let output: String
    switch arguments[4] {
    case fourSteps.name: output = String(try await runtime.startWorkflow(fourSteps, input: workDirectory, options: options).result())
    case sleeper.name: output = try await runtime.startWorkflow(sleeper, input: workDirectory, options: options).result()
    default: exit(2)
    }
    print("result: \(output)")
case "recover":
    // launch() has already resumed this executor's runs: wait until none is left unfinished.
    while try await !runtime.listWorkflows(WorkflowFilter(states: [.pending])).isEmpty {
        try await Task.sleep(for: .milliseconds(50))
    }
    print("recovered")
default:
    exit(2)
}
await runtime.shutdown(gracePeriod: .seconds(1))
