import DBOS
import DBOSSpec
import Foundation

/// What attached `workflows resume` and `workflows fork` share: a runtime that registered the spec texts
/// stored with an existing run, before launch, so this process can execute it even when the files changed
/// or are gone.
struct StoredRun {
    let runtime: DBOSRuntime
    let interpreter: SpecInterpreter

    /// Opens the database for executing `executingID` and registers the specs stored with `workflowID`
    /// (exit 4 when no run has that ID; exit 2 when it has no stored spec text, like a child run).
    static func open(
        _ database: DatabaseOptions, workflowID: String, executingID: String
    ) async throws -> StoredRun {
        // Like `dbos-run FILE`, this process executes only its own run and what it enqueues (or resumes),
        // never runs other commands left ENQUEUED for a worker (`--detach`).
        let runtime = try await CLIRuntime.open(
            database, executorID: CLIRuntime.runExecutorID(for: executingID), recoversPendingWorkflows: false,
            queueClaimScope: .enqueuedByThisExecutor(alsoWorkflowIDs: [executingID]))
        do {
            guard let status = try await runtime.workflowStatus(id: workflowID) else {
                throw WorkflowError.nonexistentWorkflow(workflowID)
            }
            // The specs next to the run's file, when it is still there, are validation context (declared queues).
            let file = RunAttributes(status.attributes)?.spec?.file
            let neighbours = file.map { SpecFiles.neighbours(of: [$0], excludingNames: [status.name]) } ?? []
            let specs = try SpecInterpreter.storedSpecs(
                in: status.attributes, handlers: DBOSRunCommand.handlers, otherSpecs: neighbours)
            guard !specs.isEmpty else {
                throw CommandFailure(
                    exitCode: CommandFailure.invalidInputExitCode,
                    message: "workflow '\(workflowID)' has no spec text stored with it (it was not started from a spec, or it is a child run: use its top-level run); use --detach to leave it for a worker that registers it")
            }
            let storedNames = Set(specs.map(\.name))
            let interpreter = try SpecInterpreter(
                runtime: runtime, handlers: DBOSRunCommand.handlers, specs: specs,
                directorySpecs: neighbours.filter { !storedNames.contains($0.name) }, registersSchedules: false)
            interpreter.addObserver(ProgressReporter(rootWorkflowID: executingID))
            return StoredRun(runtime: runtime, interpreter: interpreter)
        } catch {
            await runtime.shutdown(gracePeriod: .zero)
            throw CommandFailure(error).redacting(SystemDatabaseURL.password(in: database.resolvedURL))
        }
    }
}
