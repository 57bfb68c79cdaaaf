import Foundation

/// An error from the PostgreSQL connection layer: a bad URL, a failed or lost connection, or an
/// error the server reported for a statement.
///
/// Callers decide what to do from the classification (`isConnectionLost`, `isUniqueViolation`,
/// `isSerializationFailure`) rather than from message text; the message is for people. No message
/// ever contains the connection password.
struct PostgresError: Error, Sendable, CustomStringConvertible {
    /// Where the error came from, which decides how callers may react.
    enum Kind: Sendable, Hashable {
        /// The connection URL could not be parsed.
        case invalidURL
        /// No connection could be opened (server down, refused, timed out, authentication failed).
        case connectionFailed
        /// The server answered but refused the session for a reason retrying will not fix
        /// (unknown database or role, failed authentication).
        case connectionRejected
        /// An open connection broke while in use.
        case connectionLost
        /// The server rejected a statement; `sqlState` says why.
        case server
        /// The connection or listener was closed by its owner and cannot be used again.
        case closed
    }

    var kind: Kind
    /// The five-character SQLSTATE code, when the server sent one.
    var sqlState: String?
    /// The primary, one-line message.
    var message: String
    /// The server's DETAIL line, when there is one (for example which key was duplicated).
    var detail: String?
    /// The statement that failed, with `$N` placeholders and no values.
    var statement: String?

    init(kind: Kind, sqlState: String? = nil, message: String, detail: String? = nil, statement: String? = nil) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.statement = statement
    }

    static func invalidURL(_ message: String) -> PostgresError {
        PostgresError(kind: .invalidURL, message: "invalid PostgreSQL URL: \(message)")
    }

    static func closed(_ what: String = "connection") -> PostgresError {
        PostgresError(kind: .closed, message: "the PostgreSQL \(what) is closed")
    }

    /// True when retrying on a fresh connection may succeed: the link broke, the server could not
    /// be reached, or the server is shutting down or starting up (SQLSTATE class 08, 57P01-57P03).
    var isConnectionLost: Bool {
        switch kind {
        case .connectionFailed, .connectionLost: return true
        case .invalidURL, .connectionRejected, .closed: return false
        case .server:
            guard let sqlState else { return false }
            return sqlState.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(sqlState)
        }
    }

    /// True for `unique_violation` (23505): the engine relies on it to make starts idempotent.
    var isUniqueViolation: Bool { sqlState == "23505" }

    /// True for `serialization_failure` (40001) and `deadlock_detected` (40P01): the transaction may
    /// be retried as a whole.
    var isSerializationFailure: Bool { sqlState == "40001" || sqlState == "40P01" }

    var description: String {
        var text = message
        if let sqlState { text += " (SQLSTATE \(sqlState))" }
        if let detail { text += "; \(detail)" }
        if let statement { text += "; statement: " + statement.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
        return text
    }

    /// Collapses libpq's multi-line messages ("...failed: Connection refused\n\tIs the server
    /// running...") to one line, and masks `secret` should libpq ever echo it.
    static func oneLine(_ text: String, hiding secret: String? = nil) -> String {
        let line = text.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
            .joined(separator: " ")
        return SystemDatabaseURL.masking(secret, in: line)
    }
}
