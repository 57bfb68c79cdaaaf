import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The embedded backend: one SQLite file in WAL mode, shared safely by the processes of one
/// machine (a worker and a client, say). Every call runs on the executor's own thread; write
/// transactions are `BEGIN IMMEDIATE`, so a busy database waits for the busy timeout instead of
/// failing. SQLite cannot push notifications: waiters poll.
final class SQLiteBackend: SQLBackend {
    private let executor: SQLiteExecutor
    /// Where the database lives, for error messages: a path or `:memory:`.
    let location: String
    let groupsCommits = true
    let dialect = SQLDialect.sqlite

    /// Opens (creating if needed, with mode 0600) the database at `path`, or an in-memory one
    /// for `":memory:"`. `deferLimit`: how long a `deferrableTransaction` may wait to share the
    /// next write's commit (nil: never).
    init(path: String, deferLimit: Duration? = nil) throws {
        location = path
        if path != ":memory:" {
            try Self.createFileIfMissing(path)
        }
        let connection: SQLiteConnection
        do {
            connection = try SQLiteConnection(path: path)
            try connection.execute(script: "PRAGMA foreign_keys = ON")
            if path != ":memory:" {
                let mode = try Self.retryingWhileBusy { try connection.query("PRAGMA journal_mode = WAL") }
                    .first?.string("journal_mode")
                guard mode?.lowercased() == "wal" else {
                    throw SystemDatabaseError.cannotOpen(location: path, reason: "cannot switch to WAL mode (got \(mode ?? "nothing"))")
                }
                try connection.execute(script: "PRAGMA synchronous = FULL")
            }
        } catch let error as SQLiteError {
            throw Self.translate(error, location: path, operation: Self.openingOperation)
        }
        executor = SQLiteExecutor(connection: connection, name: "dbos-sqlite", deferLimit: deferLimit)
    }

    /// Switching a new file to WAL needs a moment of exclusive access, and SQLite answers BUSY at
    /// once (without its busy handler) when another process is opening the same file: retry for a
    /// while, as processes that start together (two workers) race for it.
    private static func retryingWhileBusy<T>(_ body: () throws -> T) throws -> T {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            do {
                return try body()
            } catch let error as SQLiteError where error.isBusy && ContinuousClock.now < deadline {
                usleep(UInt32.random(in: 10_000...30_000))
            }
        }
    }

    private static func createFileIfMissing(_ path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) {
            do {
                try FileManager.default.createDirectory(
                    atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw SystemDatabaseError.cannotOpen(location: path, reason: "cannot create directory \(directory): \(error.localizedDescription)")
            }
        }
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if descriptor < 0 {
            let reason = String(cString: strerror(errno))
            // A read-only file can still be opened by SQLite for reading; let SQLite report it.
            if errno == EACCES || errno == EROFS, FileManager.default.fileExists(atPath: path) { return }
            throw SystemDatabaseError.cannotOpen(location: path, reason: reason)
        }
        Glibc.close(descriptor)
    }

    /// The operation name of opening the database, whose read-only or I/O failures mean it cannot be opened.
    static let openingOperation = "opening the database"

    static func translate(_ error: SQLiteError, location: String, operation: String) -> SystemDatabaseError {
        if error.isCorruption {
            return .corrupted(location: location, reason: error.message)
        }
        if error.isReadOnlyOrFull {
            guard operation != openingOperation else { return .cannotOpen(location: location, reason: error.message) }
            // An open database that stops taking writes: say where and the usual causes, not "cannot open".
            return .queryFailed(
                operation: operation,
                reason: "\(error.message) writing \(location) (is the disk full, the file or its directory read-only,"
                    + " or a file size limit reached?)")
        }
        return .queryFailed(operation: operation, reason: error.message)
    }

    /// Runs `body` on the connection's thread, translating SQLite errors.
    private func perform<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (SQLiteConnection) throws -> T
    ) async throws -> T {
        try await translatingErrors(operation) { try await executor.perform(body) }
    }

    private func translatingErrors<T: Sendable>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as SQLiteError {
            throw Self.translate(error, location: location, operation: operation)
        }
    }

    func transaction<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (any SQLStatementRunner) throws -> T
    ) async throws -> T {
        try await perform(operation) { connection in
            try connection.writeTransaction { try body(connection) }
        }
    }

    func autocommit<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (any SQLStatementRunner) throws -> T
    ) async throws -> T {
        try await perform(operation) { connection in try body(connection) }
    }

    var defersWrites: Bool { executor.defersJobs }

    func deferrableTransaction<T: Sendable>(
        _ operation: String, deferringIf mayDefer: @escaping @Sendable () -> Bool,
        _ body: @escaping @Sendable (any SQLStatementRunner) throws -> T
    ) async throws -> T {
        try await translatingErrors(operation) {
            try await executor.perform(deferringIf: mayDefer) { connection in
                try connection.writeTransaction { try body(connection) }
            }
        }
    }

    func expediteDeferred() {
        executor.expediteDeferred()
    }

    func stopDeferring() {
        executor.stopDeferring()
    }

    func startNotifications(
        queues: Bool, _ handler: @escaping @Sendable (DatabaseNotification) -> Void
    ) async throws -> Bool {
        false
    }

    func publish(_ notifications: [DatabaseNotification]) async {}

    func awaitCompletion(of workflowID: String) async {}

    func stopAwaitingCompletion(of workflowID: String) {}

    func close() async {
        executor.shutdown()
    }

    func migrate() async throws {
        try await perform("migrating the schema") { connection in
            try connection.writeTransaction {
                try connection.execute(script: """
                    CREATE TABLE IF NOT EXISTS dbos_swift_migrations (version INTEGER NOT NULL PRIMARY KEY);
                    CREATE TABLE IF NOT EXISTS dbos_migrations (version INTEGER NOT NULL PRIMARY KEY);
                    """)
                let current = try connection.query("SELECT max(version) AS version FROM dbos_swift_migrations").first?.int("version") ?? 0
                let latest = SQLiteSchema.migrations.count
                if current > latest {
                    throw SystemDatabaseError.schemaTooNew(found: current, supported: latest)
                }
                for migration in SQLiteSchema.migrations[current...] {
                    try connection.execute(script: migration)
                }
                if current < latest {
                    try connection.execute("DELETE FROM dbos_swift_migrations")
                    try connection.execute("INSERT INTO dbos_swift_migrations (version) VALUES (\(latest))")
                }
                // DBOS tools read this level; a newer DBOS that raised it keeps its number.
                let level = try connection.query("SELECT max(version) AS version FROM dbos_migrations").first?.int("version") ?? 0
                if level < SQLiteSchema.dbosSchemaLevel {
                    try connection.execute("DELETE FROM dbos_migrations")
                    try connection.execute("INSERT INTO dbos_migrations (version) VALUES (\(SQLiteSchema.dbosSchemaLevel))")
                }
            }
        }
    }
}

extension SQLiteConnection: SQLStatementRunner {}
