import CSQLite
import Foundation
import Synchronization

/// A failure reported by SQLite, with the result code and the message of the connection.
struct SQLiteError: Error, CustomStringConvertible {
    let code: Int32
    let message: String
    let statement: String?

    var isBusy: Bool { code & 0xFF == SQLITE_BUSY || code & 0xFF == SQLITE_LOCKED }
    var isConstraintViolation: Bool { code & 0xFF == SQLITE_CONSTRAINT }
    // Extended result codes are C macros with expressions Swift does not import.
    var isPrimaryKeyOrUniqueViolation: Bool {
        code == SQLITE_CONSTRAINT | (6 << 8) || code == SQLITE_CONSTRAINT | (8 << 8)
    }
    var isForeignKeyViolation: Bool { code == SQLITE_CONSTRAINT | (3 << 8) }
    var isCorruption: Bool { code & 0xFF == SQLITE_NOTADB || code & 0xFF == SQLITE_CORRUPT }
    var isReadOnlyOrFull: Bool {
        code & 0xFF == SQLITE_READONLY || code & 0xFF == SQLITE_FULL || code & 0xFF == SQLITE_CANTOPEN
            || code & 0xFF == SQLITE_IOERR
    }

    var description: String { message }
}

/// One SQLite connection. Not thread-safe by itself: only the `SQLiteExecutor` that owns it uses
/// it, one job at a time (a batch on its thread, or one job inline on a workflow thread).
final class SQLiteConnection {
    private var handle: OpaquePointer?
    private var statementCache: [String: OpaquePointer] = [:]
    let path: String

    init(path: String, readOnly: Bool = false) throws {
        self.path = path
        var flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI
        flags |= readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
        var db: OpaquePointer?
        let code = sqlite3_open_v2(path, &db, flags, nil)
        guard code == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(db)
            throw SQLiteError(code: code, message: message, statement: nil)
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, 5_000)
    }

    deinit { close() }

    func close() {
        for statement in statementCache.values { sqlite3_finalize(statement) }
        statementCache.removeAll()
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    /// Runs one or more statements that take no parameters (DDL, pragmas, BEGIN/COMMIT).
    func execute(script: String) throws {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(handle, script, nil, nil, &errorMessage)
        if code != SQLITE_OK {
            let message = errorMessage.map { String(cString: $0) } ?? lastErrorMessage
            sqlite3_free(errorMessage)
            throw SQLiteError(code: code, message: message, statement: script)
        }
    }

    /// Runs a statement and returns the rows it produced.
    @discardableResult
    func query(_ sql: SQL) throws -> [SQLRow] {
        let statement = try prepared(sql)
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        try bind(sql.bindings, to: statement, sql: sql)
        var rows: [SQLRow] = []
        var columns: [String]?
        while true {
            let code = sqlite3_step(statement)
            if code == SQLITE_DONE { break }
            guard code == SQLITE_ROW else {
                throw SQLiteError(code: code, message: lastErrorMessage, statement: sql.description)
            }
            let count = sqlite3_column_count(statement)
            if columns == nil {
                columns = (0..<count).map { String(cString: sqlite3_column_name(statement, $0)) }
            }
            var values: [SQLValue] = []
            values.reserveCapacity(Int(count))
            for index in 0..<count {
                switch sqlite3_column_type(statement, index) {
                case SQLITE_INTEGER: values.append(.integer(sqlite3_column_int64(statement, index)))
                case SQLITE_FLOAT: values.append(.double(sqlite3_column_double(statement, index)))
                case SQLITE_NULL: values.append(.null)
                default:
                    let length = Int(sqlite3_column_bytes(statement, index))
                    if let text = sqlite3_column_text(statement, index) {
                        values.append(.text(String(decoding: UnsafeBufferPointer(start: text, count: length), as: UTF8.self)))
                    } else {
                        values.append(.text(""))
                    }
                }
            }
            rows.append(SQLRow(columns: columns!, values: values))
        }
        return rows
    }

    /// Runs a statement and returns how many rows it changed.
    @discardableResult
    func execute(_ sql: SQL) throws -> Int {
        try query(sql)
        return Int(sqlite3_changes(handle))
    }

    /// Set while a group-commit batch is open: transactions become savepoints inside it.
    private var batchOpen = false
    private var savepointCounter = 0

    /// Runs `body` in a write transaction (`BEGIN IMMEDIATE`, so a busy database waits for the
    /// busy timeout instead of failing at the first write); rolls back if it throws. Inside a
    /// group-commit batch it is a savepoint of the batch's transaction instead.
    func writeTransaction<T>(_ body: () throws -> T) throws -> T {
        if batchOpen {
            savepointCounter += 1
            let name = "job\(savepointCounter)"
            try execute(script: "SAVEPOINT \(name)")
            do {
                let result = try body()
                try execute(script: "RELEASE \(name)")
                return result
            } catch {
                try? execute(script: "ROLLBACK TO \(name)")
                try? execute(script: "RELEASE \(name)")
                throw error
            }
        }
        try execute(script: "BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute(script: "COMMIT")
            return result
        } catch {
            try? execute(script: "ROLLBACK")
            throw error
        }
    }

    /// True while a group-commit batch's transaction is open; for tests.
    var isInBatch: Bool { batchOpen }

    /// Whether a transaction is open: false once SQLite rolled one back by itself (a full disk, an
    /// I/O error, no memory), which ends a batch's shared transaction under its jobs' savepoints.
    var isInTransaction: Bool { handle.map { sqlite3_get_autocommit($0) == 0 } ?? false }

    /// Ends a batch whose transaction SQLite rolled back: later jobs commit each by themselves.
    func abandonBatch() {
        batchOpen = false
    }

    /// Opens the transaction a batch of jobs shares.
    func beginBatch() throws {
        try execute(script: "BEGIN IMMEDIATE")
        batchOpen = true
    }

    /// Commits the batch's transaction; on failure nothing of the batch is kept.
    func commitBatch() throws {
        batchOpen = false
        do {
            try execute(script: "COMMIT")
        } catch {
            try? execute(script: "ROLLBACK")
            throw error
        }
    }

    private var lastErrorMessage: String {
        handle.map { String(cString: sqlite3_errmsg($0)) } ?? "connection closed"
    }

    private func prepared(_ sql: SQL) throws -> OpaquePointer {
        let text = sql.text { "?\($0)" }
        if let statement = statementCache[text] { return statement }
        var statement: OpaquePointer?
        let code = sqlite3_prepare_v3(handle, text, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard code == SQLITE_OK, let statement else {
            throw SQLiteError(code: code, message: lastErrorMessage, statement: text)
        }
        statementCache[text] = statement
        // A plan that cannot be read is not this statement's failure (the observer sees every connection).
        if let observer = Self.queryPlanObserver.withLock({ $0 }), let plan = try? queryPlan(of: text) {
            observer(path, text, plan)
        }
        return statement
    }

    /// Called, when set, with each statement's text and query plan the first time a connection
    /// prepares it: tests check with it that the engine's statements find rows through indexes.
    static let queryPlanObserver = Mutex<(@Sendable (_ path: String, _ statement: String, _ plan: [String]) -> Void)?>(nil)

    /// The lines of SQLite's `EXPLAIN QUERY PLAN` for `text`.
    private func queryPlan(of text: String) throws -> [String] {
        var statement: OpaquePointer?
        let code = sqlite3_prepare_v2(handle, "EXPLAIN QUERY PLAN " + text, -1, &statement, nil)
        guard code == SQLITE_OK, let statement else {
            throw SQLiteError(code: code, message: lastErrorMessage, statement: text)
        }
        defer { sqlite3_finalize(statement) }
        var lines: [String] = []
        while sqlite3_step(statement) == SQLITE_ROW {
            lines.append(sqlite3_column_text(statement, 3).map { String(cString: $0) } ?? "")
        }
        return lines
    }

    private func bind(_ values: [SQLValue], to statement: OpaquePointer, sql: SQL) throws {
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let code: Int32
            switch value {
            case .null: code = sqlite3_bind_null(statement, index)
            case .integer(let value): code = sqlite3_bind_int64(statement, index, value)
            case .double(let value): code = sqlite3_bind_double(statement, index, value)
            case .bool(let value): code = sqlite3_bind_int64(statement, index, value ? 1 : 0)
            case .text(let value):
                code = value.utf8CString.withUnsafeBufferPointer { buffer in
                    // The buffer holds a trailing NUL: bind the bytes before it, which may contain NULs themselves.
                    sqlite3_bind_text(statement, index, buffer.baseAddress, Int32(buffer.count - 1), csqlite_transient())
                }
            }
            guard code == SQLITE_OK else {
                throw SQLiteError(code: code, message: lastErrorMessage, statement: sql.description)
            }
        }
    }
}
