import Foundation
import Synchronization

/// The PostgreSQL backend: a pool of libpq connections (each on its own thread), DBOS's schema
/// in `dbos`, LISTEN/NOTIFY for wake-ups, and `FOR UPDATE SKIP LOCKED` dequeues, so many workers
/// on many machines can share one system database.
///
/// A lost connection (a server restart, a network blip) does not fail the engine: every
/// operation is retried with backoff until the server is back. Writes are written so that a
/// retry after a lost acknowledgement finds its own effect (see `SQLSystemDatabase`).
final class PostgresBackend: SQLBackend {
    let url: PostgresURL
    /// The URL as the user gave it, password hidden, for messages: `url` carries session options
    /// of the engine's own.
    private let redactedURL: String
    let groupsCommits = false
    let dialect = SQLDialect.postgres
    private let pool: PostgresConnectionPool
    private let listener = ListenerBox()
    private let publisher = NotificationQueue()
    /// How long an operation keeps retrying a lost connection (nil: until the server is back).
    private let retryPolicy: PostgresRetryPolicy

    /// Channels that wake waiters: DBOS's three, plus ours for completions and enqueues.
    enum Channel {
        static let notifications = "dbos_notifications_channel"
        static let events = "dbos_workflow_events_channel"
        static let streams = "dbos_streams_channel"
        static let completions = "dbos_swift_completions_channel"
        static let queues = "dbos_swift_queues_channel"
        static let all = [notifications, events, streams, completions, queues]
    }

    init(url text: String, maximumConnections: Int = 10, retryPolicy: PostgresRetryPolicy = PostgresRetryPolicy()) throws {
        var url: PostgresURL
        do {
            url = try PostgresURL(text)
        } catch let error as PostgresError {
            throw SystemDatabaseError.invalidURL(SystemDatabaseURL.redacted(text), reason: error.message)
        }
        redactedURL = url.redacted
        // Every statement names DBOS's tables without a schema: the session looks in `dbos` first.
        let searchPath = "-c search_path=dbos,public"
        url.parameters["options"] = url.parameters["options"].map { "\($0) \(searchPath)" } ?? searchPath
        self.url = url
        self.retryPolicy = retryPolicy
        pool = PostgresConnectionPool(url: url, maximumConnections: maximumConnections)
    }

    private func translate(_ error: PostgresError, operation: String) -> SystemDatabaseError {
        switch error.kind {
        case .invalidURL:
            .invalidURL(redactedURL, reason: error.message)
        case .connectionFailed, .connectionRejected:
            .cannotOpen(location: redactedURL, reason: error.message)
        case .connectionLost, .server, .closed:
            .queryFailed(operation: operation, reason: error.description)
        }
    }

    /// Runs `body` again when PostgreSQL chose it as a deadlock's victim: its transaction was rolled
    /// back entirely, so it can (as PostgreSQL's documentation advises). Batched writes lock many
    /// rows in one statement and may meet a transaction that locks some of them in another order.
    static func retryingDeadlocks<T>(
        isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> T
    ) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await body()
            } catch let error as PostgresError where error.sqlState == "40P01" && attempt < 5 {
                attempt += 1
                try await Task.sleep(for: .milliseconds(Int.random(in: 1...10) * attempt))
            }
        }
    }

    /// Runs `work` with a pooled connection, retrying while the connection is lost or after a deadlock.
    private func withRetries<T: Sendable>(
        _ operation: String, policy: PostgresRetryPolicy? = nil,
        _ work: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        do {
            return try await retryingOnConnectionLoss(policy: policy ?? retryPolicy) {
                try await Self.retryingDeadlocks {
                    try await pool.withConnection { connection in try await work(connection) }
                }
            }
        } catch let error as PostgresError {
            throw translate(error, operation: operation)
        }
    }

    func transaction<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (any SQLStatementRunner) throws -> T
    ) async throws -> T {
        try await withRetries(operation) { connection in
            try await connection.transaction { transaction in try body(transaction) }
        }
    }

    func autocommit<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (any SQLStatementRunner) throws -> T
    ) async throws -> T {
        try await withRetries(operation) { connection in
            try await connection.session { session in try body(session) }
        }
    }

    func migrate() async throws {
        // Reaching the server at all gets a short budget: a wrong host or a server that is not
        // running is reported at once instead of retried forever.
        let startup = PostgresRetryPolicy(maximumTotalDuration: .seconds(3))
        do {
            _ = try await retryingOnConnectionLoss(policy: startup) {
                try await PostgresConnection.createDatabaseIfMissing(url)
            }
        } catch let error as PostgresError {
            throw translate(error, operation: "creating the database")
        }
        let level = PostgresSchema.dbosSchemaLevel
        try await withRetries("migrating the schema", policy: startup) { connection in
            try await connection.transaction { transaction in
                try transaction.execute("SELECT pg_advisory_xact_lock(\(PostgresSchema.migrationLockKey))")
                try transaction.execute("CREATE SCHEMA IF NOT EXISTS dbos")
                try transaction.execute("CREATE TABLE IF NOT EXISTS dbos.dbos_swift_migrations (version bigint PRIMARY KEY)")
                try transaction.execute("CREATE TABLE IF NOT EXISTS dbos.dbos_migrations (version bigint PRIMARY KEY)")
                let current = try transaction.query("SELECT max(version) AS version FROM dbos.dbos_swift_migrations")
                    .first?.int("version") ?? 0
                let latest = PostgresSchema.migrations.count
                if current > latest {
                    throw SystemDatabaseError.schemaTooNew(found: current, supported: latest)
                }
                for migration in PostgresSchema.migrations[current...] {
                    for statement in migration { try transaction.execute(SQL(stringLiteral: statement)) }
                }
                if current < latest {
                    try transaction.execute("DELETE FROM dbos.dbos_swift_migrations")
                    try transaction.execute("INSERT INTO dbos.dbos_swift_migrations (version) VALUES (\(latest))")
                }
                // DBOS tools read this level; a newer DBOS that raised it keeps its number.
                let dbosLevel = try transaction.query("SELECT max(version) AS version FROM dbos.dbos_migrations")
                    .first?.int("version") ?? 0
                if dbosLevel < level {
                    try transaction.execute("DELETE FROM dbos.dbos_migrations")
                    try transaction.execute("INSERT INTO dbos.dbos_migrations (version) VALUES (\(level))")
                }
            }
        }
    }

    func startNotifications(
        queues: Bool, _ handler: @escaping @Sendable (DatabaseNotification) -> Void
    ) async throws -> Bool {
        let started: PostgresListener
        do {
            started = try await PostgresListener.start(
                url: url, channels: queues ? Channel.all : Channel.all.filter { $0 != Channel.queues },
                onNotification: { notification in
                    for decoded in Self.decode(notification) { handler(decoded) }
                },
                onReconnect: { handler(.everything) })
        } catch let error as PostgresError {
            throw translate(error, operation: "listening for notifications")
        }
        listener.set(started)
        return true
    }

    /// The channels the listener LISTENs on, once started; for tests.
    var listenedChannels: [String]? { listener.channels }

    /// The advisory lock class of completion locks (two-key form, so apart from DBOS's one-key locks).
    static let completionLockClass: Int32 = 0x4442_5357

    func awaitCompletion(of workflowID: String) async {
        await listener.get()?.holdSharedLock(workflowID)
    }

    func stopAwaitingCompletion(of workflowID: String) {
        listener.get()?.releaseSharedLock(workflowID)
    }

    /// DBOS payloads are `<workflow ID>::<topic or key>`; IDs and topics may themselves contain
    /// `::`, so every split is delivered (a spurious wake-up only costs a re-check).
    static func decode(_ notification: PostgresNotification) -> [DatabaseNotification] {
        let payload = notification.payload
        func splits() -> [(String, String)] {
            var result: [(String, String)] = []
            var searchStart = payload.startIndex
            while let range = payload.range(of: "::", range: searchStart..<payload.endIndex) {
                result.append((String(payload[..<range.lowerBound]), String(payload[range.upperBound...])))
                searchStart = payload.index(after: range.lowerBound)
            }
            return result
        }
        switch notification.channel {
        case Channel.notifications: return splits().map { .message(workflowID: $0.0, topic: $0.1) }
        case Channel.events: return splits().map { .event(workflowID: $0.0, key: $0.1) }
        case Channel.streams: return splits().map { .stream(workflowID: $0.0, key: $0.1) }
        case Channel.completions: return [.completion(workflowID: payload)]
        case Channel.queues: return [.queue(name: payload)]
        default: return []
        }
    }

    /// PostgreSQL's limit on a notification's payload: it must be shorter than this many bytes.
    static let notificationPayloadLimit = 8000

    func publish(_ notifications: [DatabaseNotification]) async {
        let pairs: [(String, String)] = notifications.compactMap { notification in
            switch notification {
            // The insert trigger on `notifications` already announced messages.
            case .message, .everything: nil
            case .event(let workflowID, let key): (Channel.events, "\(workflowID)::\(key)")
            case .stream(let workflowID, let key): (Channel.streams, "\(workflowID)::\(key)")
            case .completion(let workflowID): (Channel.completions, workflowID)
            case .queue(let name): (Channel.queues, name)
            }
        }
        // PostgreSQL refuses a payload of 8000 bytes or more, and one refused payload would fail
        // the whole statement: such a waiter in another process learns by its fallback poll.
        let sendable = pairs.filter { $0.1.utf8.count < Self.notificationPayloadLimit }
        guard !sendable.isEmpty, publisher.enqueue(sendable) else { return }
        // Sent from a task of its own, so the write that published does not wait a round trip
        // for it: waiters in this process were already woken directly, and a lost notification
        // only delays a waiter in another process until its fallback poll (best effort, no
        // retries). The task sends everything queued until nothing is left; calls made meanwhile
        // only queue theirs, so under load many notifications share one statement.
        let pool = pool
        let publisher = publisher
        publisher.started(Task {
            while let batch = publisher.next() {
                _ = try? await pool.withConnection { connection in
                    try await connection.session { session in
                        var statement: SQL = "SELECT "
                        for (index, (channel, payload)) in batch.enumerated() {
                            statement = statement + (index == 0 ? "" : ", ") + "pg_notify(\(channel), \(payload))"
                        }
                        try session.execute(statement)
                    }
                }
            }
        })
    }

    func close() async {
        // What was published before closing is still sent, so no connection work outlives close().
        await publisher.drained()
        listener.stop()
        pool.close()
    }
}

/// Notifications waiting to be sent, and the task sending them (at most one at a time).
private final class NotificationQueue: Sendable {
    /// The most notifications one statement sends.
    static let batchLimit = 500
    private struct State {
        var pending: [(String, String)] = []
        var isSending = false
        var sender: Task<Void, Never>?
    }
    private let state = Mutex(State())

    /// Queues `pairs`; true if the caller must start a sender (none is running).
    func enqueue(_ pairs: [(String, String)]) -> Bool {
        state.withLock { state in
            state.pending += pairs
            if state.isSending { return false }
            state.isSending = true
            return true
        }
    }

    /// Records the sender the caller of a true `enqueue` started.
    func started(_ sender: Task<Void, Never>) {
        state.withLock { $0.sender = sender }
    }

    /// The next batch to send, or nil (and the sender's turn ends) when nothing is left.
    func next() -> [(String, String)]? {
        state.withLock { state in
            guard !state.pending.isEmpty else {
                state.isSending = false
                return nil
            }
            let batch = Array(state.pending.prefix(Self.batchLimit))
            state.pending.removeFirst(batch.count)
            return batch
        }
    }

    /// Waits until every queued notification was sent (or failed to be).
    func drained() async {
        while let sender = state.withLock({ $0.isSending ? $0.sender : nil }) {
            await sender.value
            // A new sender may be starting and not yet recorded: let it.
            await Task.yield()
        }
    }
}

/// Holds the listener once notifications start.
private final class ListenerBox: Sendable {
    private let listener = Mutex<PostgresListener?>(nil)
    func set(_ value: PostgresListener) { listener.withLock { $0 = value } }
    func get() -> PostgresListener? { listener.withLock { $0 } }
    func stop() { listener.withLock { $0 }?.stop() }
    var channels: [String]? { listener.withLock { $0?.channels } }
}

extension PostgresTransaction: SQLStatementRunner {
    // Statements with a fixed shape (or few) are prepared once per session and reused; long
    // `IN (...)` lists vary in shape, so they are not cached (`SQL.isWorthPreparing`).
    @discardableResult
    func query(_ sql: SQL) throws -> [SQLRow] {
        try query(sql, prepared: sql.isWorthPreparing)
    }

    @discardableResult
    func execute(_ sql: SQL) throws -> Int {
        try execute(sql, prepared: sql.isWorthPreparing)
    }
}
