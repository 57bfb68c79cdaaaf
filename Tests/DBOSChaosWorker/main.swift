// The worker program of the chaos tests (Tests/DBOSChaosTests, Docs/Chaos.md): the whole `dbos-run` CLI plus
// two handlers that record every execution of their body, so a test that SIGKILLs workers can count them.
//
//   CHAOS_LOG=/tmp/chaos.log CHAOS_WORKER=a1 dbos-chaos-worker worker Tests/DBOSChaosWorker/Specs --executor-id chaos-a
//
// Each body appends `exec WORKER RUN CHECKPOINT TOKEN` to $CHAOS_LOG before it returns {"token": TOKEN}, where
// WORKER is $CHAOS_WORKER (the test names each process it starts) and TOKEN is unique to this execution.
// `chaos.work` also appends `exit WORKER RUN CHECKPOINT TOKEN` when it ends, so the test can measure how many
// ran at once.
import DBOS
import DBOSRunCLI
import DBOSSpec
import DBOSTestSupport
import Foundation
import Synchronization

/// Where the executions are recorded, and this process's name in the records.
final class ExecutionRecorder: Sendable {
    let logPath: String
    let worker: String
    private let sequence = Atomic<Int>(0)

    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        logPath = environment["CHAOS_LOG"] ?? "chaos.log"
        worker = environment["CHAOS_WORKER"] ?? "unnamed"
    }

    /// Records a body's execution and returns the token that identifies it.
    func recordExecution(of checkpoint: String, in context: HandlerContext) -> String {
        let token = "\(worker).\(getpid()).\(sequence.add(1, ordering: .relaxed).newValue)"
        appendLine("exec \(worker) \(context.workflowID) \(checkpoint) \(token)", toFile: logPath)
        return token
    }

    /// Records that the execution `token` ended.
    func recordExit(of checkpoint: String, token: String, in context: HandlerContext) {
        appendLine("exit \(worker) \(context.workflowID) \(checkpoint) \(token)", toFile: logPath)
    }
}

/// What `chaos.effect` takes: the checkpoint's name when it is not the step's id (a compensation's).
struct Effect: Codable, Sendable {
    var checkpoint: String?
}

/// What `chaos.work` takes: the map item and how long the body holds its queue slot.
struct Work: Codable, Sendable {
    var item: Int
    var milliseconds: Int
}

let recorder = ExecutionRecorder()

DBOSRunCommand.handlers.register("chaos.effect") { (effect: Effect?, context: HandlerContext) async throws -> [String: String] in
    ["token": recorder.recordExecution(of: effect?.checkpoint ?? context.stepID, in: context)]
}

DBOSRunCommand.handlers.register("chaos.work") { (work: Work, context: HandlerContext) async throws -> [String: JSONValue] in
    let token = recorder.recordExecution(of: context.stepID, in: context)
    try await Task.sleep(for: .milliseconds(work.milliseconds))
    recorder.recordExit(of: context.stepID, token: token, in: context)
    return ["token": .string(token), "item": .integer(Int64(work.item))]
}

await DBOSRunCommand.runFromCommandLine()
