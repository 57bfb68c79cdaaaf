import DBOS
import Foundation

/// The execution log of a chaos test, read back: which process ran which step body with which token,
/// when the driver killed which process, and how many `work` bodies ran at once.
///
/// Lines, in the order they were appended (one `write` with `O_APPEND` each, so the file order is the
/// order in time): `exec WORKER RUN CHECKPOINT TOKEN`, `exit WORKER RUN CHECKPOINT TOKEN` (`chaos.work`
/// only) and `kill WORKER` (written by the driver once the process is gone). A worker name is the
/// worker's letter (its executor) and its incarnation: `a1`, `a2`, `b1`, ...
struct ExecutionLedger {
    /// One execution of a step body.
    struct Execution {
        var worker: String
        var workflowID: String
        var checkpoint: String
        var token: String
        /// The line's position in the log.
        var position: Int
    }

    /// The queue limits of `chaos-items`, whose runs are the `work` bodies.
    static let globalLimit = 3
    static let workerLimit = 2

    private(set) var executions: [Execution] = []
    /// The log position of each worker's `kill` line.
    private(set) var killPositions: [String: Int] = [:]
    /// The most `work` bodies that ran at once in all workers, and in one worker (executor).
    private(set) var mostConcurrentWork = 0
    private(set) var mostConcurrentWorkInOneWorker = 0

    init(contentsOfFile path: String) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var runningWork: [String: String] = [:]  // token -> worker
        for (position, line) in text.split(separator: "\n").enumerated() {
            let fields = line.split(separator: " ").map(String.init)
            switch (fields.first, fields.count) {
            case ("exec", 5):
                executions.append(Execution(
                    worker: fields[1], workflowID: fields[2], checkpoint: fields[3], token: fields[4], position: position))
                if fields[3] == "work" { runningWork[fields[4]] = fields[1] }
            case ("exit", 5):
                runningWork[fields[4]] = nil
            case ("kill", 2):
                killPositions[fields[1]] = position
                // A killed process's bodies ended with it.
                runningWork = runningWork.filter { $0.value != fields[1] }
            default:
                throw ChaosFailure("\(path):\(position + 1): unexpected line '\(line)'")
            }
            mostConcurrentWork = max(mostConcurrentWork, runningWork.count)
            let perExecutor = Dictionary(grouping: runningWork.values) { $0.prefix(1) }.values.map(\.count)
            mostConcurrentWorkInOneWorker = max(mostConcurrentWorkInOneWorker, perExecutor.max() ?? 0)
        }
    }

    /// What `verify` found.
    struct Verdict {
        var problems: [String] = []
        /// The (run, checkpoint) pairs whose body ran.
        var checkpoints = 0
        /// Executions beyond the one checkpointed, each by a process killed before the checkpointed one started.
        var duplicatesExplainedByKills = 0
    }

    /// Checks that each step body ran exactly once after its checkpoint existed: for every (run,
    /// checkpoint) the checkpointed output (or error) carries the token of one logged execution, and
    /// every other execution ran in a process that was killed before that execution started (it died
    /// before it could write the checkpoint). Also checks the `chaos-items` limits.
    ///
    /// `checkpoints` gives a run's checkpoints: each name with its recorded output or error as text.
    func verify(checkpoints: (String) async throws -> [String: String]) async throws -> Verdict {
        var verdict = Verdict()
        let byCheckpoint = Dictionary(grouping: executions) { "\($0.workflowID) \($0.checkpoint)" }
        verdict.checkpoints = byCheckpoint.count
        var checkpointsByRun: [String: [String: String]] = [:]
        for key in byCheckpoint.keys.sorted() {
            let runs = byCheckpoint[key]!
            let workflowID = runs[0].workflowID
            let checkpoint = runs[0].checkpoint
            if checkpointsByRun[workflowID] == nil { checkpointsByRun[workflowID] = try await checkpoints(workflowID) }
            guard let recorded = checkpointsByRun[workflowID]![checkpoint] else {
                verdict.problems.append("\(key): its body ran \(runs.count) time(s) but no checkpoint exists")
                continue
            }
            let recordedWords = Set(recorded.split(whereSeparator: \.isWhitespace).map(String.init))
            guard let kept = runs.first(where: { recordedWords.contains($0.token) }) else {
                verdict.problems.append("\(key): the checkpoint '\(recorded)' matches none of its executions \(runs.map(\.token))")
                continue
            }
            for other in runs where other.token != kept.token {
                if let killed = killPositions[other.worker], killed < kept.position {
                    verdict.duplicatesExplainedByKills += 1
                } else {
                    verdict.problems.append(
                        "\(key): ran again in \(other.worker) (log line \(other.position + 1)), besides the checkpointed "
                            + "execution in \(kept.worker) (line \(kept.position + 1)), and \(other.worker) was not killed before it")
                }
            }
        }
        if mostConcurrentWork > Self.globalLimit {
            verdict.problems.append("\(mostConcurrentWork) chaos-items runs at once, over the global limit of \(Self.globalLimit)")
        }
        if mostConcurrentWorkInOneWorker > Self.workerLimit {
            verdict.problems.append("\(mostConcurrentWorkInOneWorker) chaos-items runs at once in one worker, over its limit of \(Self.workerLimit)")
        }
        return verdict
    }
}

extension ExecutionLedger {
    /// A run's checkpoints as `verify` wants them: a body's output is {"token": TOKEN} (handlers) or TOKEN
    /// (shell); a failed shell step's error ends with its token.
    static func checkpointTexts(_ steps: [StepInfo]) -> [String: String] {
        Dictionary(steps.map { step in
            (step.name, step.output?["token"]?.stringValue ?? step.output?.stringValue ?? step.error?.message ?? "")
        }) { first, _ in first }
    }
}
