import Foundation

/// Reads the passwords out of system database URLs, so that no error, log line or help text
/// ever prints one.
public enum SystemDatabaseURL {
    /// The URL with any password replaced by `***`: the one in the user information and the
    /// `password=` query parameter that libpq also accepts.
    public static func redacted(_ url: String) -> String {
        var redacted = url
        if let range = userInformationPasswordRange(in: url) {
            redacted.replaceSubrange(range, with: "***")
        }
        guard let query = redacted.firstIndex(of: "?") else { return redacted }
        let parameters = redacted[redacted.index(after: query)...]
            .split(separator: "&", omittingEmptySubsequences: false)
            .map { $0.lowercased().hasPrefix("password=") ? "password=***" : String($0) }
        return String(redacted[...query]) + parameters.joined(separator: "&")
    }

    /// The URL's password (from the user information, else from a `password=` parameter), if any.
    public static func password(in url: String) -> String? {
        if let range = userInformationPasswordRange(in: url) { return String(url[range]) }
        guard let query = url.firstIndex(of: "?") else { return nil }
        return url[url.index(after: query)...].split(separator: "&")
            .first { $0.lowercased().hasPrefix("password=") }
            .map { String($0.dropFirst("password=".count)) }
            .flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The password between `user:` and the last `@` (a password may hold '/' or '@').
    private static func userInformationPasswordRange(in url: String) -> Range<String.Index>? {
        guard let schemeEnd = url.range(of: "://") else { return nil }
        let rest = url[schemeEnd.upperBound...]
        guard let at = rest.lastIndex(of: "@"), let colon = rest[..<at].firstIndex(of: ":") else { return nil }
        let start = url.index(after: colon)
        return start < at ? start..<at : nil
    }
}
