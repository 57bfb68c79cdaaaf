import ArgumentParser
import DBOS

/// The root `dbos-run` command.
public struct DBOSRunCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "dbos-run",
        abstract: "Run durable workflows written as YAML specs.",
        version: DBOSVersion.current,
        subcommands: [
            ValidateCommand.self, GraphCommand.self, WorkflowsCommand.self, SendCommand.self, GetEventCommand.self,
            MigrateCommand.self,
        ])

    public init() {}

    public mutating func run() async throws {
        print(Self.helpMessage())
    }
}

extension DBOSRunCommand {
    /// Parses the process's arguments and runs the chosen command: what `dbos-run`'s `main.swift` calls,
    /// and what a program that registers its own handlers calls to reuse the whole CLI.
    public static func runFromCommandLine() async {
        await (Self.main as ([String]?) async -> Void)(nil)
    }
}
