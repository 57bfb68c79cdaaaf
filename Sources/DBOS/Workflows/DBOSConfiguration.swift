import Foundation

/// Settings of a `DBOSRuntime`.
public struct DBOSConfiguration: Sendable {
    /// The application's name.
    public var appName: String
    /// Where the system database lives: `sqlite:PATH`, `sqlite::memory:`, or a `postgres://` URL.
    public var systemDatabaseURL: String
    /// This process's executor ID; recovery resumes only this executor's workflows.
    /// Default: `DBOS__VMID` from the environment, else `local`.
    public var executorID: String
    /// Overrides the application version derived from the executable
    /// (also settable through `DBOS__APPVERSION`).
    public var applicationVersion: String?
    /// Whether `launch()` resumes this executor's unfinished workflows.
    public var recoversPendingWorkflows: Bool
    /// Whether workflows may branch on patches (`WorkflowContext.patch(_:)`), as DBOS's
    /// `EnablePatching`: new code then recovers the runs older code left, and the application
    /// version, unless one is set, is `ApplicationVersion.patchingEnabled` rather than derived
    /// from the executable (which changes with every build).
    public var enablesPatching = false
    /// How often waits re-check the database for changes made by other processes.
    public var pollingInterval: Duration
    /// How often running workflows check whether another process cancelled them.
    public var cancellationCheckInterval: Duration
    /// With a database that pushes changes (PostgreSQL), how often waits re-check anyway, in
    /// case a notification was lost.
    public var notificationFallbackInterval: Duration
    /// Which queued runs this process's queue runners may claim.
    public var queueClaimScope: QueueClaimScope = .all
    /// When a finished step's checkpoint is written, and how long a run's outcome may wait to share
    /// a commit with other runs' outcomes (see `StepCheckpointWrites`).
    public var stepCheckpointWrites: StepCheckpointWrites = .beforeNextOperation(within: .milliseconds(2))
    /// The longest a run's outcome is held to share a commit, whatever `stepCheckpointWrites`
    /// allows: other processes see outcomes at most this much later. Tests raise it.
    var outcomeLingerLimit: Duration = .milliseconds(10)

    /// When a finished step's checkpoint is written. Either way the checkpoint is durable before
    /// the run's next durable operation starts (the next step's body, a send, a sleep, a child),
    /// and a crash before it is durable runs the step again on recovery, as DBOS does for a crash
    /// during a step.
    public enum StepCheckpointWrites: Sendable, Hashable {
        /// Before the step returns to the workflow: one commit per step.
        case beforeReturning
        /// With the run's next durable operation: before it starts, or, when the run ends next,
        /// in the same commit as its outcome (one commit less per run). A checkpoint still
        /// waiting about `within` (at least 1 ms) after its step ended, because the workflow
        /// awaits something that is not a durable operation, is written then (best effort: a
        /// write that fails is left to the run's next operation).
        ///
        /// On PostgreSQL, the outcome of a run that no caller in this process awaits (a queued
        /// run, one started and left to finish) is then also held up to `within` (at most 10 ms)
        /// and written with the others that ended meanwhile, in one statement and one commit:
        /// fewer commits leave the database to the runs being started. A `result()` in this
        /// process ends the wait at once; other processes see the outcome up to that much later;
        /// a crash meanwhile leaves the run PENDING, to be recovered and run again, as a crash
        /// just before its outcome's commit would.
        case beforeNextOperation(within: Duration)
    }

    /// Which queued runs a process claims from the queues it serves.
    public enum QueueClaimScope: Sendable, Hashable {
        /// Any run of a workflow this process registered: a worker.
        case all
        /// Only runs this executor enqueued (its own children and fan-out), plus the listed runs:
        /// a one-off process that must not take other processes' work.
        case enqueuedByThisExecutor(alsoWorkflowIDs: [String])
    }

    /// The embedded default database, relative to the working directory.
    public static let defaultSystemDatabaseURL = "sqlite:.dbos/system.sqlite"

    /// A configuration with the defaults filled in.
    public init(
        appName: String = "dbos",
        systemDatabaseURL: String? = nil,
        executorID: String? = nil,
        applicationVersion: String? = nil,
        recoversPendingWorkflows: Bool = true,
        pollingInterval: Duration = .milliseconds(200),
        cancellationCheckInterval: Duration = .seconds(1),
        notificationFallbackInterval: Duration = .seconds(3)
    ) {
        let environment = ProcessInfo.processInfo.environment
        self.appName = appName
        self.systemDatabaseURL =
            systemDatabaseURL ?? environment["DBOS_SYSTEM_DATABASE_URL"] ?? Self.defaultSystemDatabaseURL
        self.executorID = executorID ?? environment["DBOS__VMID"] ?? "local"
        self.applicationVersion = applicationVersion ?? environment["DBOS__APPVERSION"]
        self.recoversPendingWorkflows = recoversPendingWorkflows
        self.pollingInterval = pollingInterval
        self.cancellationCheckInterval = cancellationCheckInterval
        self.notificationFallbackInterval = notificationFallbackInterval
    }
}

/// Opens the system database a URL names.
enum SystemDatabaseFactory {
    /// `outcomeLinger`: how long the outcome of a run nobody in the process waits for may wait to
    /// share a commit with others (`SystemDatabase.completeWorkflow(mayLinger:)`).
    static func open(url: String, outcomeLinger: Duration? = nil) throws -> any SystemDatabase {
        if url == "sqlite::memory:" {
            return SQLSystemDatabase(backend: try SQLiteBackend(path: ":memory:", deferLimit: outcomeLinger))
        }
        if let path = try SystemDatabaseURL.sqliteFilePath(in: url) {
            return SQLSystemDatabase(backend: try SQLiteBackend(path: path, deferLimit: outcomeLinger))
        }
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            return SQLSystemDatabase(backend: try PostgresBackend(url: url), outcomeLinger: outcomeLinger)
        }
        throw SystemDatabaseError.invalidURL(
            SystemDatabaseURL.redacted(url), reason: "expected sqlite:PATH, sqlite::memory: or postgres://USER@HOST:PORT/DB")
    }
}
