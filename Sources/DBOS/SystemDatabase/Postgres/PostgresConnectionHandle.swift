import CLibPQ
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One libpq `PGconn` plus its prepared-statement cache, used synchronously.
///
/// `@unchecked Sendable` is safe because one job at a time uses an instance: libpq is thread-safe as
/// long as no two threads use one `PGconn` at once. The listener's handle lives on its thread; a
/// pooled connection's handle is used by jobs of its `PostgresOwnerThread`, which runs them one at a
/// time on its own thread or lets one run inline on a workflow thread while none runs there
/// (`runInlineIfIdle`), the hand-over ordered by that thread's lock. Other threads only pass the
/// reference around inside such jobs.
final class PostgresConnectionHandle: @unchecked Sendable {
    /// The connection; `nil` once `finish()` ran.
    private(set) var pointer: OpaquePointer?
    let url: PostgresURL
    /// Prepared statement names by statement text: prepared once per session, reused after.
    private var preparedStatements: [String: String] = [:]
    private var nextStatementNumber = 1

    /// Opens a blocking connection. Call on the owner thread only.
    init(connectingTo url: PostgresURL) throws {
        self.url = url
        let pairs = url.connectionKeywords
        let connection = Self.withCStrings(pairs.map(\.keyword) + [nil]) { keywords in
            Self.withCStrings(pairs.map(\.value) + [nil]) { values in
                PQconnectdbParams(keywords, values, 0)
            }
        }
        guard let connection else {
            throw PostgresError(
                kind: .connectionFailed,
                message: "cannot connect to PostgreSQL at \(url.hostAndPort): out of memory")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let reason = PostgresError.oneLine(String(cString: PQerrorMessage(connection)), hiding: url.password)
            PQfinish(connection)
            throw PostgresError(
                kind: Self.isPermanentConnectionFailure(reason) ? .connectionRejected : .connectionFailed,
                message: "cannot connect to PostgreSQL at \(url.hostAndPort): \(reason)")
        }
        // libpq prints NOTICE and WARNING messages to stderr by default; a library must not.
        PQsetNoticeReceiver(connection, { _, _ in }, nil)
        pointer = connection
    }

    deinit { finish() }

    /// True when libpq knows the link is gone; the connection must be reset or discarded.
    var isBroken: Bool {
        guard let pointer else { return true }
        return PQstatus(pointer) == CONNECTION_BAD
    }

    /// True inside a transaction that a failed statement aborted: only ROLLBACK is accepted.
    var isTransactionAborted: Bool {
        guard let pointer else { return false }
        return PQtransactionStatus(pointer) == PQTRANS_INERROR
    }

    /// How many statements this session has prepared (for tests and diagnostics).
    var preparedStatementCount: Int { preparedStatements.count }

    /// Closes the connection. Safe to call twice.
    func finish() {
        if let pointer { PQfinish(pointer) }
        pointer = nil
        preparedStatements = [:]
    }

    /// Re-establishes a broken connection with the same parameters (PQreset). Prepared statements
    /// belong to the old session, so the cache is emptied.
    func reset() throws {
        guard let pointer else { throw PostgresError.closed() }
        preparedStatements = [:]
        PQreset(pointer)
        guard PQstatus(pointer) == CONNECTION_OK else {
            let reason = PostgresError.oneLine(String(cString: PQerrorMessage(pointer)), hiding: url.password)
            throw PostgresError(
                kind: Self.isPermanentConnectionFailure(reason) ? .connectionRejected : .connectionFailed,
                message: "cannot connect to PostgreSQL at \(url.hostAndPort): \(reason)")
        }
    }

    /// The rows and the affected-row count of one statement.
    struct Outcome {
        var rows: [SQLRow]
        var rowsAffected: Int
    }

    /// Runs one statement with its values as text-format bind parameters. With `prepared`, the
    /// statement is prepared on first use in this session and executed by name afterwards, which
    /// saves the server a parse and plan on hot paths.
    func run(_ sql: SQL, prepared: Bool = false) throws -> Outcome {
        guard let pointer else { throw PostgresError.closed() }
        let text = sql.text { "$\($0)" }
        var values: [String?] = []
        values.reserveCapacity(sql.bindings.count)
        for value in sql.bindings {
            let parameter = Self.parameterText(value)
            // strdup would silently cut the value at a NUL; PostgreSQL text cannot hold one anyway.
            if let parameter, parameter.utf8.contains(0) {
                throw PostgresError(
                    kind: .server, sqlState: "22021",
                    message: "a text value contains a NUL character, which PostgreSQL cannot store",
                    statement: text)
            }
            values.append(parameter)
        }
        let count = Int32(values.count)

        var statementName: String?
        if prepared {
            if let name = preparedStatements[text] {
                statementName = name
            } else {
                let name = "dbos_statement_\(nextStatementNumber)"
                let result = PQprepare(pointer, name, text, count, nil)
                defer { PQclear(result) }
                guard let result, PQresultStatus(result) == PGRES_COMMAND_OK else {
                    throw error(from: result, statement: text)
                }
                nextStatementNumber += 1
                preparedStatements[text] = name
                statementName = name
            }
        }

        let result = Self.withCStrings(values) { parameters in
            if let statementName {
                PQexecPrepared(pointer, statementName, count, parameters, nil, nil, 0)
            } else {
                PQexecParams(pointer, text, count, nil, parameters, nil, nil, 0)
            }
        }
        defer { PQclear(result) }
        guard let result else { throw error(from: nil, statement: text) }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
            return Outcome(rows: Self.rows(of: result), rowsAffected: affected)
        default:
            let failure = error(from: result, statement: text)
            // The session lost the statement (DISCARD ALL, or a server-side deallocation): prepare
            // it again next time instead of failing forever.
            if failure.sqlState == "26000" { preparedStatements[text] = nil }
            throw failure
        }
    }

    /// Builds the error for a failed statement, classifying a dead link as `.connectionLost`.
    func error(from result: OpaquePointer?, statement: String?) -> PostgresError {
        func field(_ code: Int32) -> String? {
            guard let result, let value = PQresultErrorField(result, code) else { return nil }
            return String(cString: value)
        }
        let connectionMessage = pointer.map { String(cString: PQerrorMessage($0)) } ?? ""
        let message = field(CLIBPQ_DIAG_MESSAGE_PRIMARY)
            ?? PostgresError.oneLine(connectionMessage, hiding: url.password)
        let kind: PostgresError.Kind = isBroken ? .connectionLost : .server
        var explained = message.isEmpty ? "PostgreSQL connection failed" : message
        if explained == "payload string too long" {
            // DBOS's triggers notify with the destination workflow ID and the topic or key as the payload.
            explained += ": a notification carries the workflow ID and the topic or key, which PostgreSQL limits"
                + " to 8000 bytes together"
        }
        return PostgresError(
            kind: kind,
            sqlState: field(CLIBPQ_DIAG_SQLSTATE),
            message: explained,
            detail: field(CLIBPQ_DIAG_MESSAGE_DETAIL),
            statement: statement)
    }

    /// The text-format representation PostgreSQL parses back into the same value.
    static func parameterText(_ value: SQLValue) -> String? {
        switch value {
        case .null: return nil
        case .integer(let value): return String(value)
        case .double(let value):
            if value.isNaN { return "NaN" }
            if value.isInfinite { return value < 0 ? "-Infinity" : "Infinity" }
            return "\(value)"
        case .text(let value): return value
        case .bool(let value): return value ? "t" : "f"
        }
    }

    // Type OIDs from pg_type.dat; stable across PostgreSQL versions.
    private static let integerTypes: Set<UInt32> = [20, 21, 23, 26]  // int8, int2, int4, oid
    private static let doubleTypes: Set<UInt32> = [700, 701, 1700]  // float4, float8, numeric
    private static let boolType: UInt32 = 16

    /// Converts a text-format result into rows, typing values by column OID.
    private static func rows(of result: OpaquePointer) -> [SQLRow] {
        let rowCount = PQntuples(result)
        let columnCount = PQnfields(result)
        guard rowCount > 0 else { return [] }
        let columns = (0..<columnCount).map { String(cString: PQfname(result, $0)) }
        let types = (0..<columnCount).map { PQftype(result, $0) }
        var rows: [SQLRow] = []
        rows.reserveCapacity(Int(rowCount))
        for row in 0..<rowCount {
            var values: [SQLValue] = []
            values.reserveCapacity(Int(columnCount))
            for column in 0..<columnCount {
                guard PQgetisnull(result, row, column) == 0, let bytes = PQgetvalue(result, row, column) else {
                    values.append(.null)
                    continue
                }
                let length = Int(PQgetlength(result, row, column))
                let text = String(decoding: UnsafeRawBufferPointer(start: bytes, count: length), as: UTF8.self)
                let type = types[Int(column)]
                if integerTypes.contains(type), let integer = Int64(text) {
                    values.append(.integer(integer))
                } else if doubleTypes.contains(type), let double = Double(text) {
                    values.append(.double(double))
                } else if type == boolType {
                    values.append(.bool(text == "t"))
                } else {
                    values.append(.text(text))
                }
            }
            rows.append(SQLRow(columns: columns, values: values))
        }
        return rows
    }

    /// Calls `body` with a C array of copies of `strings` (nil stays NULL), freed afterwards. The
    /// copies make the pointers valid for the whole call, which `String`'s implicit bridging does not.
    static func withCStrings<Result>(
        _ strings: [String?], _ body: ([UnsafePointer<CChar>?]) throws -> Result
    ) rethrows -> Result {
        let copies: [UnsafeMutablePointer<CChar>?] = strings.map { $0.flatMap { strdup($0) } }
        defer { for copy in copies { free(copy) } }
        return try body(copies.map { $0.map { UnsafePointer($0) } })
    }

    /// True when the server answered but refused the session for a reason a retry will not fix
    /// (unknown database or role, failed authentication). libpq gives no SQLSTATE before a session
    /// exists, so this reads libpq's message; anything unrecognised counts as transient.
    static func isPermanentConnectionFailure(_ reason: String) -> Bool {
        let permanentMarkers = [
            "does not exist", "authentication failed", "no pg_hba.conf entry", "password is specified",
            "no password supplied", "invalid connection option", "invalid sslmode", "invalid integer value",
        ]
        return permanentMarkers.contains { reason.contains($0) }
    }
}

extension PostgresConnectionHandle {
    /// Quotes an identifier (database or channel name) for SQL text, doubling embedded quotes.
    static func quotedIdentifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
