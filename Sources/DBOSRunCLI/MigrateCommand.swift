import ArgumentParser
import DBOS

/// `dbos-run migrate`: creates or upgrades the system database schema.
public struct MigrateCommand: FailureReportingCommand {
    public static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Create or upgrade the system database schema.")

    /// Which system database to use (`--db`).
    @OptionGroup public var database: DatabaseOptions

    public init() {}

    public func execute() async throws {
        // Opening the database as a client creates it if missing and applies every pending migration.
        try await database.withClient { _ in }
        print("system database \(database.redactedURL) is migrated to the current schema")
    }
}
