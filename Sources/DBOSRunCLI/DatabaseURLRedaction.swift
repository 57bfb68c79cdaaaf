import Foundation

/// Hides the password of a database URL (`scheme://user:password@host...`).
enum DatabaseURLRedaction {
    /// The URL with its password replaced by `***`; URLs without one are returned unchanged.
    static func redacted(_ url: String) -> String {
        guard let range = passwordRange(in: url) else { return url }
        return url.replacingCharacters(in: range, with: "***")
    }

    /// The password of the URL, if it has one.
    static func password(in url: String) -> String? {
        passwordRange(in: url).map { String(url[$0]) }
    }

    private static func passwordRange(in url: String) -> Range<String.Index>? {
        guard let schemeEnd = url.range(of: "://") else { return nil }
        // The last '@' ends the credentials, as the engine reads them: a password may hold '/' or '@'.
        let rest = url[schemeEnd.upperBound...]
        guard let at = rest.lastIndex(of: "@") else { return nil }
        guard let colon = rest[..<at].firstIndex(of: ":") else { return nil }
        let start = url.index(after: colon)
        return start < at ? start..<at : nil
    }
}
