import Foundation

/// A parsed `postgres://` or `postgresql://` connection URL.
///
/// We parse the URL ourselves instead of handing the string to libpq so that error messages and
/// logs can name the server (`hostAndPort`, `redacted`) without ever printing the password, and so
/// that the maintenance connection can point the same server at another database.
///
/// Accepted form (as in libpq): `postgres://[user[:password]@][host][:port][/database][?key=value&...]`.
/// Every part is percent-decoded. A host starting with `/` is a Unix-socket directory, given either
/// percent-encoded (`%2Fvar%2Frun%2Fpostgresql`) or as `?host=/var/run/postgresql`. The query keys
/// `host`, `port`, `user`, `password` and `dbname` override the corresponding URL parts; every other
/// key (`sslmode`, `connect_timeout`, `application_name`, ...) is passed to libpq unchanged.
struct PostgresURL: Sendable, Hashable, CustomStringConvertible {
    /// The scheme as written (`postgres` or `postgresql`), kept so `redacted` reads like the input.
    var scheme: String
    /// The role to log in as; nil lets libpq use the operating-system user name.
    var user: String?
    /// Never printed: `description` and `redacted` show `***` instead.
    var password: String?
    /// A host name, an IP address, or (starting with `/`) a Unix-socket directory; `nil` lets libpq
    /// pick its default socket.
    var host: String?
    /// The TCP port (or socket file suffix); nil means 5432.
    var port: Int?
    /// The database name; nil lets libpq use the user name.
    var database: String?
    /// Other libpq connection keywords from the query string.
    var parameters: [String: String]

    /// The port libpq uses when none is given.
    static let defaultPort = 5432

    /// Parses `string`; throws `PostgresError` (kind `.invalidURL`) naming what is wrong, but never
    /// echoing the string itself, since it may hold a password.
    init(_ string: String) throws {
        guard let schemeEnd = string.range(of: "://") else {
            throw PostgresError.invalidURL("expected postgres://user@host:port/database")
        }
        let scheme = string[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "postgres" || scheme == "postgresql" else {
            throw PostgresError.invalidURL("scheme must be postgres:// or postgresql://, not \(scheme)://")
        }
        self.scheme = scheme
        parameters = [:]

        var rest = string[schemeEnd.upperBound...]
        if let fragment = rest.firstIndex(of: "#") { rest = rest[..<fragment] }
        var query: Substring = ""
        if let questionMark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: questionMark)...]
            rest = rest[..<questionMark]
        }
        var authority = rest
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            path = rest[rest.index(after: slash)...]
        }

        // The last "@" separates user info: passwords may contain "@" when not percent-encoded.
        var hostPort = authority
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            hostPort = authority[authority.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                user = try Self.decode(userInfo[..<colon], part: "user name")
                password = try Self.decode(userInfo[userInfo.index(after: colon)...], part: "password")
            } else {
                user = try Self.decode(userInfo, part: "user name")
            }
            if user == "" { user = nil }
        }

        var portText: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else {
                throw PostgresError.invalidURL("unterminated IPv6 address in host")
            }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let afterBracket = hostPort[hostPort.index(after: close)...]
            if afterBracket.hasPrefix(":") {
                portText = afterBracket.dropFirst()
            } else if !afterBracket.isEmpty {
                throw PostgresError.invalidURL("unexpected text after IPv6 address")
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = try Self.decode(hostPort[..<colon], part: "host")
            portText = hostPort[hostPort.index(after: colon)...]
        } else {
            host = try Self.decode(hostPort, part: "host")
        }
        if host == "" { host = nil }
        if let portText, !portText.isEmpty { port = try Self.port(String(portText)) }

        database = try Self.decode(path, part: "database name")
        if database == "" { database = nil }

        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let key: String
            let value: String
            if let equals = pair.firstIndex(of: "=") {
                key = try Self.decode(pair[..<equals], part: "query parameter name")
                value = try Self.decode(pair[pair.index(after: equals)...], part: "query parameter \(key)")
            } else {
                key = try Self.decode(pair, part: "query parameter name")
                value = ""
            }
            switch key {
            case "host": host = value.isEmpty ? nil : value
            case "port": port = try Self.port(value)
            case "user": user = value.isEmpty ? nil : value
            case "password": password = value
            case "dbname": database = value.isEmpty ? nil : value
            default: parameters[key] = value
            }
        }
    }

    /// True when `host` names a Unix-socket directory rather than a network host.
    var isUnixSocket: Bool { host?.hasPrefix("/") ?? true }

    /// `host:port` for error messages: enough to find the server, nothing secret.
    var hostAndPort: String {
        let shownHost: String
        switch host {
        case nil: shownHost = "localhost"
        case let host? where host.contains(":"): shownHost = "[\(host)]"
        case let host?: shownHost = host
        }
        return "\(shownHost):\(port ?? Self.defaultPort)"
    }

    /// The URL with the password replaced by `***`, safe for logs and error messages.
    var redacted: String {
        var output = "\(scheme)://"
        if let user {
            output += Self.encode(user)
            if password != nil { output += ":***" }
            output += "@"
        }
        var query = parameters.sorted { $0.key < $1.key }.map { "\(Self.encode($0.key))=\(Self.encode($0.value))" }
        if let host, host.hasPrefix("/") {
            query.insert("host=\(Self.encode(host))", at: 0)
        } else if let host {
            output += host.contains(":") ? "[\(host)]" : Self.encode(host)
        }
        if let port { output += ":\(port)" } else if host != nil && !isUnixSocket { output += ":\(Self.defaultPort)" }
        if let database { output += "/\(Self.encode(database))" }
        if !query.isEmpty { output += "?" + query.joined(separator: "&") }
        return output
    }

    var description: String { redacted }

    /// The same server and credentials, but another database: used to reach the `postgres`
    /// maintenance database when the target database may not exist yet.
    func withDatabase(_ name: String) -> PostgresURL {
        var copy = self
        copy.database = name
        return copy
    }

    /// Keyword/value pairs for `PQconnectdbParams`, plus the defaults we rely on: UTF-8 text (our
    /// result decoding assumes it), a connect timeout (libpq waits forever by default, which would
    /// turn a dead server into a hung thread), and TCP keepalives so a vanished server is noticed.
    var connectionKeywords: [(keyword: String, value: String)] {
        var pairs: [(String, String)] = []
        if let host { pairs.append(("host", host)) }
        if let port { pairs.append(("port", String(port))) }
        if let user { pairs.append(("user", user)) }
        if let password { pairs.append(("password", password)) }
        if let database { pairs.append(("dbname", database)) }
        var options = parameters
        options["client_encoding"] = "UTF8"
        if options["connect_timeout"] == nil { options["connect_timeout"] = "10" }
        if options["application_name"] == nil { options["fallback_application_name"] = "dbos-swift" }
        if !isUnixSocket {
            if options["keepalives_idle"] == nil { options["keepalives_idle"] = "30" }
            if options["keepalives_interval"] == nil { options["keepalives_interval"] = "10" }
            if options["keepalives_count"] == nil { options["keepalives_count"] = "3" }
        }
        for key in options.keys.sorted() { pairs.append((key, options[key]!)) }
        return pairs
    }

    private static func port(_ text: String) throws -> Int {
        guard let port = Int(text), (1...65535).contains(port) else {
            // Not echoed: with an unencoded '/', '?' or '#' in a password, the "port" is part of the password.
            throw PostgresError.invalidURL("the port must be a number from 1 to 65535 (percent-encode '/', '?', '#' and '@' in a password)")
        }
        return port
    }

    private static func decode(_ text: some StringProtocol, part: String) throws -> String {
        guard text.contains("%") else { return String(text) }
        guard let decoded = String(text).removingPercentEncoding else {
            throw PostgresError.invalidURL("invalid percent-encoding in \(part)")
        }
        return decoded
    }

    /// Characters left unescaped when printing: RFC 3986 unreserved plus a few harmless ones.
    private static let printable = CharacterSet(
        charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")

    private static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: printable) ?? text
    }
}
