/// Runs statements on one connection, inside the transaction the backend opened for it.
protocol SQLStatementRunner {
    /// Runs a statement and returns its rows.
    @discardableResult
    func query(_ sql: SQL) throws -> [SQLRow]
    /// Runs a statement and returns how many rows it changed.
    @discardableResult
    func execute(_ sql: SQL) throws -> Int
}

/// The few places where SQLite's and PostgreSQL's SQL differ in the engine's statements.
struct SQLDialect: Sendable {
    /// Appended to the dequeue's candidate SELECT: row locks that other workers skip.
    var lockingClause: String
    /// The tie-breaker that keeps insertion order among rows created in the same millisecond.
    var insertionOrder: String
    /// Whether `WITH name AS (INSERT/UPDATE … RETURNING …) SELECT …` works, so a write and the
    /// reads that go with it take one round trip (PostgreSQL; SQLite allows only SELECT there).
    var writesInCommonTableExpressions: Bool
    /// Added to the RETURNING list of the statements that record outcomes (`ws` is the
    /// `workflow_status` row), so that the same statement tells other processes (PostgreSQL's
    /// NOTIFY, delivered at commit) without a statement of its own; nil when the backend cannot
    /// push notifications. On PostgreSQL it notifies only when some process holds the run's
    /// completion lock (`SQLBackend.awaitCompletion(of:)`): a process that waits for the outcome
    /// holds it before it reads the run, and one that comes after the statement's try waits for
    /// its commit, so no waiter misses an outcome and no process is woken by the others' runs.
    var completionNotice: String?
    /// The same for the statement that starts a run (unqualified columns of the new row): tells
    /// the queue's workers when the run is enqueued.
    var enqueueNotice: String?
    /// Run first in a dequeue from a queue whose limits every worker counts together (global
    /// concurrency, rate limit), so workers in other processes count and claim one at a time;
    /// nil where write transactions are serial anyway (SQLite).
    var queueLock: (@Sendable (_ queueName: String) -> SQL)?

    static let sqlite = SQLDialect(
        lockingClause: "", insertionOrder: "rowid", writesInCommonTableExpressions: false, completionNotice: nil,
        enqueueNotice: nil, queueLock: nil)
    static let postgres = SQLDialect(
        lockingClause: " FOR UPDATE SKIP LOCKED", insertionOrder: "workflow_uuid", writesInCommonTableExpressions: true,
        completionNotice: """
            CASE WHEN octet_length(ws.workflow_uuid) < \(PostgresBackend.notificationPayloadLimit) \
                AND NOT pg_try_advisory_xact_lock(\(PostgresBackend.completionLockClass), hashtext(ws.workflow_uuid)) \
            THEN pg_notify('\(PostgresBackend.Channel.completions)', ws.workflow_uuid) END
            """,
        enqueueNotice: """
            CASE WHEN octet_length(queue_name) < \(PostgresBackend.notificationPayloadLimit) \
            THEN pg_notify('\(PostgresBackend.Channel.queues)', queue_name) END
            """,
        // Held until the transaction ends; under READ COMMITTED the counts that follow see what
        // the previous holder committed. The first key keeps these locks apart from others.
        queueLock: { queueName in "SELECT pg_advisory_xact_lock(1146441074, hashtext(\(queueName)))" })
}

/// A change another process (or this one) made that waiters may care about, as delivered by a
/// backend that can push notifications (PostgreSQL's LISTEN/NOTIFY).
enum DatabaseNotification: Sendable, Hashable {
    case message(workflowID: String, topic: String)
    case event(workflowID: String, key: String)
    case stream(workflowID: String, key: String)
    case completion(workflowID: String)
    case queue(name: String)
    /// Notifications may have been lost (the listener reconnected): every waiter should re-check.
    case everything
}

/// A database the engine's SQL runs on: how to open transactions, migrate the schema, and
/// deliver notifications. `SQLSystemDatabase` holds the statements, written once for both.
protocol SQLBackend: Sendable {
    var dialect: SQLDialect { get }

    /// Whether the backend already commits the work of concurrent calls together (SQLite's one
    /// writer thread does); if not, the system database batches concurrent writes itself.
    var groupsCommits: Bool { get }

    /// Runs `body` in one write transaction, retrying it where the backend knows that is safe.
    func transaction<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (any SQLStatementRunner) throws -> T
    ) async throws -> T

    /// Whether `deferrableTransaction` may defer at all (else it is `transaction`).
    var defersWrites: Bool { get }

    /// Runs `body` in one write transaction like `transaction(_:_:)`, but, while `mayDefer` holds
    /// (asked under the backend's own lock), lets it wait a moment to share the commit of the
    /// backend's next write (SQLite's writer thread); `expediteDeferred()` ends that wait.
    func deferrableTransaction<T: Sendable>(
        _ operation: String, deferringIf mayDefer: @escaping @Sendable () -> Bool,
        _ body: @escaping @Sendable (any SQLStatementRunner) throws -> T
    ) async throws -> T

    /// Runs the deferred transactions now (someone began to wait for one), without waiting.
    func expediteDeferred()

    /// Runs the deferred transactions now and every later one at once (shutdown).
    func stopDeferring()

    /// Runs statements that each commit on their own: reads (no write lock held) and writes of a
    /// single statement, which need no explicit transaction.
    func autocommit<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (any SQLStatementRunner) throws -> T
    ) async throws -> T

    /// Creates or upgrades the schema.
    func migrate() async throws

    /// Starts delivering notifications; returns false if the backend cannot push them (then
    /// waiters poll). Without `queues`, enqueues are not delivered (a client runs no queue).
    func startNotifications(
        queues: Bool, _ handler: @escaping @Sendable (DatabaseNotification) -> Void
    ) async throws -> Bool

    /// Tells other processes about a change, after the transaction that made it committed.
    func publish(_ notifications: [DatabaseNotification]) async

    /// Tells processes that finish `workflowID` that this one waits for its outcome, until
    /// `stopAwaitingCompletion(of:)`: only then does a completion notify (PostgreSQL). Returns once
    /// a completion committed from now on is sure to notify.
    func awaitCompletion(of workflowID: String) async

    /// Ends one `awaitCompletion(of:)`.
    func stopAwaitingCompletion(of workflowID: String)

    /// Closes every connection.
    func close() async
}

/// A backend whose writes each commit by themselves (PostgreSQL, where the system database groups
/// concurrent writes into shared statements instead) defers nothing.
extension SQLBackend {
    var defersWrites: Bool { false }

    func deferrableTransaction<T: Sendable>(
        _ operation: String, deferringIf mayDefer: @escaping @Sendable () -> Bool,
        _ body: @escaping @Sendable (any SQLStatementRunner) throws -> T
    ) async throws -> T {
        try await transaction(operation, body)
    }

    func expediteDeferred() {}

    func stopDeferring() {}
}
