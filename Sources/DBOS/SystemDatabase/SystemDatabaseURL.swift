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

    /// `text` with each occurrence of `password` that stands as a value of its own replaced by `***`: between
    /// the start, a space, a quote, `=`, `:` or an opening bracket and the end, a space, a quote, `@`, `&`, `,`,
    /// `;` or a closing bracket, as a password does in a URL (`:PASSWORD@`), a connection string
    /// (`password=PASSWORD`) or a quoted message. A short password that happens to be part of a host, a
    /// port or a name (`1` in `127.0.0.1:5431`) is left alone, so the message still says what and where.
    public static func masking(_ password: String?, in text: String) -> String {
        guard let password, !password.isEmpty else { return text }
        let before: Set<Character> = [" ", "\t", "\n", "\"", "'", "=", ":", "(", "[", ","]
        let after: Set<Character> = [" ", "\t", "\n", "\"", "'", "@", "&", ",", ";", ")", "]"]
        var result = ""
        var rest = Substring(text)
        while let range = rest.range(of: password) {
            let startsValue = range.lowerBound == rest.startIndex
                ? (result.last.map(before.contains) ?? true) : before.contains(rest[rest.index(before: range.lowerBound)])
            let endsValue = range.upperBound == rest.endIndex || after.contains(rest[range.upperBound])
            if startsValue && endsValue {
                result += rest[..<range.lowerBound] + "***"
                rest = rest[range.upperBound...]
            } else {
                // Not a value of its own here; a real occurrence may overlap it (user "ab", password "b:b").
                let next = rest.index(after: range.lowerBound)
                result += rest[..<next]
                rest = rest[next...]
            }
        }
        return result + rest
    }

    /// The file a `sqlite:` URL names (`sqlite:PATH`, or DBOS's `sqlite:///RELATIVE` and
    /// `sqlite:////ABSOLUTE`); nil for an in-memory database, another scheme, or a URL that names none.
    public static func sqliteFilePath(in url: String) throws(SystemDatabaseError) -> String? {
        guard url.hasPrefix("sqlite:"), url != "sqlite::memory:" else { return nil }
        var path = String(url.dropFirst("sqlite:".count))
        // DBOS's (SQLAlchemy's) form too, so one URL names one file for every DBOS tool.
        if path.hasPrefix("//") {
            guard path.hasPrefix("///") else {
                throw SystemDatabaseError.invalidURL(
                    url, reason: "a SQLite URL has no host: write sqlite:PATH, sqlite:///RELATIVE or sqlite:////ABSOLUTE")
            }
            path = String(path.dropFirst(3))
        }
        guard !path.isEmpty else { throw SystemDatabaseError.invalidURL(url, reason: "no file path after 'sqlite:'") }
        guard !path.contains("\0") else { throw SystemDatabaseError.invalidURL(url, reason: "the path contains a NUL byte") }
        return path
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
