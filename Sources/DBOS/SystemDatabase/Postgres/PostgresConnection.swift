import CLibPQ
import Synchronization

/// One PostgreSQL session, driven from async code without blocking the cooperative thread pool.
///
/// The `PGconn` lives on a dedicated thread (`PostgresOwnerThread`). A connection is lent to one
/// task at a time, so that thread is normally idle when its borrower calls; when the borrower runs
/// on a workflow thread that may block (`WorkflowThreads.reserveInlineSlot`), the statement's
/// round trip runs inline there, which saves two thread wake-ups per statement.
/// Workflow threads belong to the system database, never to the cooperative pool. A round trip
/// that takes long (a lock wait, a server under load) sends the connection's next jobs to its
/// thread for a while (`InlineJobBackoff`). Connecting and resetting, which can block up to
/// connect_timeout, always run on that thread. Either way statements on one connection execute
/// strictly in call order.
///
/// Every interpolated value in a `SQL` statement is sent as a text-format bind parameter.
final class PostgresConnection: Sendable {
    /// The URL this connection was opened with (`description` is redacted).
    let url: PostgresURL
    private let thread: PostgresOwnerThread
    private let handle: PostgresConnectionHandle
    /// Set after each job, read by pools without a round trip to the owner thread.
    private let linkBroken = Atomic<Bool>(false)

    private init(url: PostgresURL, thread: PostgresOwnerThread, handle: PostgresConnectionHandle) {
        self.url = url
        self.thread = thread
        self.handle = handle
    }

    deinit { close() }

    /// Opens a connection; throws `PostgresError` whose message names `host:port` and libpq's
    /// reason, never the password.
    static func connect(_ url: PostgresURL) async throws -> PostgresConnection {
        let thread = PostgresOwnerThread(name: "dbos-postgres")
        do {
            let handle = try await thread.run { try PostgresConnectionHandle(connectingTo: url) }
            return PostgresConnection(url: url, thread: thread, handle: handle)
        } catch {
            thread.stop()
            throw error
        }
    }

    /// True once libpq has seen the link break; a pool discards such connections.
    var isConnectionLost: Bool { linkBroken.load(ordering: .acquiring) }

    /// Runs a statement and returns its rows. With `prepared`, the statement is prepared once per
    /// session and reused: use it for statements the engine runs on every step.
    func query(_ sql: SQL, prepared: Bool = false) async throws -> [SQLRow] {
        try await perform { try $0.run(sql, prepared: prepared).rows }
    }

    /// Runs a statement and returns the number of rows it inserted, updated or deleted.
    @discardableResult
    func execute(_ sql: SQL, prepared: Bool = false) async throws -> Int {
        try await perform { try $0.run(sql, prepared: prepared).rowsAffected }
    }

    /// Runs `body` inside BEGIN ... COMMIT as one job (on the owner thread, or inline on an idle
    /// workflow thread), so its statements run back to back
    /// with no suspension in between; a thrown error rolls the transaction back and is rethrown.
    ///
    /// The body is synchronous on purpose: awaiting inside an open transaction would hold its locks
    /// across arbitrary other work.
    func transaction<T: Sendable>(
        isolationLevel: PostgresIsolationLevel? = nil,
        _ body: @escaping @Sendable (PostgresTransaction) throws -> T
    ) async throws -> T {
        try await perform { handle in
            let begin = isolationLevel.map { "BEGIN ISOLATION LEVEL \($0.rawValue)" } ?? "BEGIN"
            _ = try handle.run(SQL(stringLiteral: begin))
            let transaction = PostgresTransaction(handle: handle)
            defer { transaction.isFinished = true }
            let value: T
            do {
                value = try body(transaction)
            } catch {
                if !handle.isBroken { _ = try? handle.run("ROLLBACK") }
                throw error
            }
            // A body that caught a statement error leaves the transaction aborted, and COMMIT
            // would then quietly roll back; report it instead of returning success.
            if handle.isTransactionAborted {
                _ = try? handle.run("ROLLBACK")
                throw PostgresError(
                    kind: .server, sqlState: "25P02",
                    message: "the transaction was aborted by an earlier failed statement and has been rolled back")
            }
            do {
                _ = try handle.run("COMMIT")
            } catch {
                if !handle.isBroken { _ = try? handle.run("ROLLBACK") }
                throw error
            }
            return value
        }
    }

    /// Runs `body` as one job with no explicit transaction: each statement commits on
    /// its own. For reads that need no snapshot across statements, it saves BEGIN and COMMIT.
    func session<T: Sendable>(_ body: @escaping @Sendable (PostgresTransaction) throws -> T) async throws -> T {
        try await perform { handle in
            let runner = PostgresTransaction(handle: handle)
            defer { runner.isFinished = true }
            return try body(runner)
        }
    }

    /// Reconnects with the same parameters after the link broke (PQreset on the owner thread).
    func reset() async throws {
        try await perform(inline: false) { try $0.reset() }
    }

    /// How many statements this session has prepared; lets tests check that reuse happens.
    var preparedStatementCount: Int {
        get async throws { try await perform { $0.preparedStatementCount } }
    }

    /// Finishes queued statements, closes the session and ends the owner thread. Later calls fail
    /// with a `.closed` error.
    func close() {
        let handle = handle
        linkBroken.store(true, ordering: .releasing)
        thread.stop { handle.finish() }
    }

    private func perform<T: Sendable>(
        inline: Bool = true,
        _ body: @escaping @Sendable (PostgresConnectionHandle) throws -> T
    ) async throws -> T {
        let job: @Sendable () throws -> T = { [self] in
            defer { linkBroken.store(handle.isBroken, ordering: .releasing) }
            return try body(handle)
        }
        if inline, let slot = WorkflowThreads.reserveInlineSlot() {
            let result = thread.runInlineIfIdle(job)
            slot.release()
            if let result { return try result.get() }
        }
        return try await thread.run(job)
    }
}

/// Transaction isolation levels for `PostgresConnection.transaction(isolationLevel:_:)`.
enum PostgresIsolationLevel: String, Sendable {
    case readCommitted = "READ COMMITTED"
    case repeatableRead = "REPEATABLE READ"
    case serializable = "SERIALIZABLE"
}

/// The statements of one open transaction; only valid inside the `transaction` body that received
/// it, on the thread that runs that job (hence deliberately not `Sendable`).
final class PostgresTransaction {
    private let handle: PostgresConnectionHandle
    fileprivate var isFinished = false

    fileprivate init(handle: PostgresConnectionHandle) {
        self.handle = handle
    }

    /// Runs a statement inside the transaction and returns its rows.
    func query(_ sql: SQL, prepared: Bool = false) throws -> [SQLRow] {
        try checkOpen()
        return try handle.run(sql, prepared: prepared).rows
    }

    /// Runs a statement inside the transaction and returns the number of rows it changed.
    @discardableResult
    func execute(_ sql: SQL, prepared: Bool = false) throws -> Int {
        try checkOpen()
        return try handle.run(sql, prepared: prepared).rowsAffected
    }

    private func checkOpen() throws {
        if isFinished { throw PostgresError.closed("transaction") }
    }
}

extension PostgresConnection {
    /// Creates the database `url` names when it cannot be connected to, through the `postgres`
    /// maintenance database (falling back to `template1`). Returns true if this call created it.
    ///
    /// Two processes starting at once may both see the database missing; the loser's
    /// `duplicate_database` (42P04) error, or the `unique_violation` (23505) on `pg_database` it
    /// gets when both inserts meet, is treated as success.
    @discardableResult
    static func createDatabaseIfMissing(_ url: PostgresURL) async throws -> Bool {
        guard let name = url.database else { return false }
        // A database that can be reached needs nothing more, and a role may be allowed to reach
        // only its own database (common on managed services). Any failure here is reported, if
        // it matters, by the maintenance connection below.
        if let existing = try? await connect(url) {
            existing.close()
            return false
        }
        let maintenance: PostgresConnection
        do {
            maintenance = try await connect(url.withDatabase("postgres"))
        } catch let error as PostgresError where error.kind == .connectionRejected {
            maintenance = try await connect(url.withDatabase("template1"))
        }
        defer { maintenance.close() }
        let existing = try await maintenance.query("SELECT 1 FROM pg_database WHERE datname = \(name)")
        guard existing.isEmpty else { return false }
        do {
            let quoted = PostgresConnectionHandle.quotedIdentifier(name)
            try await maintenance.execute("CREATE DATABASE \(unescaped: quoted)")
            return true
        } catch let error as PostgresError where error.sqlState == "42P04" || error.sqlState == "23505" {
            return false
        }
    }
}
