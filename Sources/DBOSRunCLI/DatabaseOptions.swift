import ArgumentParser
import DBOS
import Foundation

/// The `--db URL` option every command shares, and how a command opens the system database.
///
/// The URL comes from `--db`, else `DBOS_SYSTEM_DATABASE_URL`, else the embedded default
/// `sqlite:.dbos/system.sqlite`. Its password is never printed: the help text names no default
/// that could hold one, and messages use `redactedURL`.
public struct DatabaseOptions: ParsableArguments, Sendable {
    /// The environment variable that names the system database when `--db` is not given.
    public static let environmentVariable = "DBOS_SYSTEM_DATABASE_URL"

    /// The system database URL given on the command line, if any.
    @Option(
        name: .customLong("db"),
        help: ArgumentHelp(
            "The system database: postgres://USER:PASSWORD@HOST:PORT/DB, sqlite:PATH or sqlite::memory:.",
            discussion: "Defaults to $DBOS_SYSTEM_DATABASE_URL, else sqlite:.dbos/system.sqlite.",
            valueName: "url"))
    public var databaseURL: String?

    public init() {}

    /// The URL to open: `--db`, else the environment variable, else the embedded default.
    public var resolvedURL: String {
        if let databaseURL { return databaseURL }
        if let fromEnvironment = ProcessInfo.processInfo.environment[Self.environmentVariable], !fromEnvironment.isEmpty {
            return fromEnvironment
        }
        return DBOSConfiguration.defaultSystemDatabaseURL
    }

    /// The resolved URL with its password, if any, replaced by `***`.
    public var redactedURL: String { DatabaseURLRedaction.redacted(resolvedURL) }

    /// Opens (creating and migrating if needed) the system database as a client. A URL that is not
    /// understood fails with exit 2, a database that cannot be opened with exit 1; neither message
    /// contains the password.
    public func openClient() async throws(CommandFailure) -> DBOSClient {
        do {
            return try await DBOSClient(systemDatabaseURL: resolvedURL)
        } catch {
            throw CommandFailure(error).redacting(DatabaseURLRedaction.password(in: resolvedURL))
        }
    }

    /// Opens a client, runs `body` with it and closes it, whether `body` succeeds or throws. Every
    /// error leaves as a `CommandFailure` with its password redacted.
    public func withClient<Result>(_ body: (DBOSClient) async throws -> Result) async throws(CommandFailure) -> Result {
        let client = try await openClient()
        do {
            let result = try await body(client)
            await client.close()
            return result
        } catch {
            await client.close()
            throw CommandFailure(error).redacting(DatabaseURLRedaction.password(in: resolvedURL))
        }
    }
}

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
