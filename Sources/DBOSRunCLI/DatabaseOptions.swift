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
    public var redactedURL: String { SystemDatabaseURL.redacted(resolvedURL) }
}
