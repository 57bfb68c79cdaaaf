import DBOS
import Foundation

/// How the CLI writes instants: RFC 3339 in UTC with milliseconds (`2026-11-26T11:04:06.123Z`).
enum Timestamp {
    private static let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    /// The RFC 3339 text of an instant.
    static func text(_ date: Date) -> String {
        style.format(date)
    }

    /// The instant as a JSON string, or JSON null when there is none.
    static func jsonValue(_ date: Date?) -> JSONValue {
        date.map { .string(text($0)) } ?? .null
    }
}
