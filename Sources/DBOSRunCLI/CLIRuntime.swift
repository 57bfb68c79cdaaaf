import DBOS
import DBOSSpec
import Foundation

/// How the commands that execute runs configure the engine: executor IDs and the application version.
///
/// - The application version is derived from this executable and the names of the handlers the program
///   registered, never from the specs loaded (specs are data stored with each run), so `dbos-run FILE`,
///   `worker` and `enqueue` of one build agree. `DBOS__APPVERSION` overrides it.
/// - `dbos-run FILE` (and attached `resume`/`fork`) uses the executor ID `dbos-run:<workflow id>`: no worker
///   shares it by accident, and a rerun with the same `--id` finds the runs its crashed predecessor claimed.
/// - `worker` uses `--executor-id`, else `DBOS__VMID`, else `dbos-run-worker`.
enum CLIRuntime {
    /// The executor ID of a process that executes the one run `workflowID` (and its descendants).
    static func runExecutorID(for workflowID: String) -> String { "dbos-run:\(workflowID)" }

    /// The default executor ID of `dbos-run worker`.
    static let defaultWorkerExecutorID = "dbos-run-worker"

    /// This build's application version: the executable and the registered handler names.
    static var applicationVersion: String {
        if let override = ProcessInfo.processInfo.environment["DBOS__APPVERSION"], !override.isEmpty { return override }
        return ApplicationVersion.derive(workflowNames: ["dbos-run"] + DBOSRunCommand.handlers.names.map { "handler:\($0)" })
    }

    /// Opens the system database as a runtime (not launched yet); errors name the database without its password.
    static func open(
        _ database: DatabaseOptions, executorID: String, recoversPendingWorkflows: Bool,
        queueClaimScope: DBOSConfiguration.QueueClaimScope = .all
    ) async throws(CommandFailure) -> DBOSRuntime {
        var configuration = DBOSConfiguration(
            appName: "dbos-run", systemDatabaseURL: database.resolvedURL, executorID: executorID,
            applicationVersion: applicationVersion, recoversPendingWorkflows: recoversPendingWorkflows)
        configuration.queueClaimScope = queueClaimScope
        do {
            return try await DBOSRuntime(configuration: configuration)
        } catch {
            throw CommandFailure(error).redacting(SystemDatabaseURL.password(in: database.resolvedURL))
        }
    }
}
