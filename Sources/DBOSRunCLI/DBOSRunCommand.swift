import ArgumentParser
import DBOS
import DBOSSpec
import Foundation

/// The root `dbos-run` command: `dbos-run FILE` runs a spec (the default subcommand, `run`); the other
/// commands are subcommands.
///
/// A program that registers its own handlers reuses the whole CLI:
///
/// ```swift
/// DBOSRunCommand.handlers.register("payments.charge") { (charge: Charge, context: HandlerContext) in ... }
/// await DBOSRunCommand.runFromCommandLine()
/// ```
public struct DBOSRunCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "dbos-run",
        abstract: "Run durable workflows written as YAML specs.",
        discussion: """
            dbos-run FILE runs a spec in this process (see 'dbos-run run --help'). Exit codes: 0 success, \
            1 workflow error, 2 invalid spec, input or usage, 3 cancelled or timed out, 4 unknown workflow ID, \
            5 wait timed out.
            """,
        version: DBOSVersion.current,
        subcommands: [
            RunCommand.self, ValidateCommand.self, GraphCommand.self, WorkerCommand.self, EnqueueCommand.self,
            WorkflowsCommand.self, SendCommand.self, GetEventCommand.self, MigrateCommand.self,
        ],
        defaultSubcommand: RunCommand.self)

    /// `--db URL` given before the command (`dbos-run --db URL workflows list`): the root parses it wherever it
    /// stands, and every command's own `@OptionGroup DatabaseOptions` receives this value (ArgumentParser hands a
    /// parent's decoded option group to its subcommands), so `--db` works the same before and after the command.
    @OptionGroup public var database: DatabaseOptions

    /// The Swift handlers `handler:` steps may call. Register them before `runFromCommandLine()`; `validate`
    /// and every command that runs specs then know their names, and they are part of the application version.
    public static let handlers = HandlerRegistry()

    public init() {}
}

extension DBOSRunCommand {
    /// Parses the process's arguments and runs the chosen command: what `dbos-run`'s `main.swift` calls,
    /// and what a program that registers its own handlers calls to reuse the whole CLI.
    ///
    /// A usage error (unknown flag, missing argument) or an argument that is not UTF-8 prints one
    /// `dbos-run: error: ...` line and exits 2; `--help` and `--version` print and exit 0.
    public static func runFromCommandLine() async {
        ArgumentEncoding.failure(for: ArgumentEncoding.processArguments)?.exit()
        await runFromCommandLine(arguments: Array(CommandLine.arguments.dropFirst()))
    }

    /// `runFromCommandLine()` with `handlers` registered first (under their names, replacing none).
    public static func runFromCommandLine(handlers registry: HandlerRegistry) async {
        for name in registry.names {
            if let handler = registry.handler(named: name) { handlers.register(name, handler) }
        }
        await runFromCommandLine()
    }

    static func runFromCommandLine(arguments: [String]) async {
        if arguments.isEmpty {
            print(helpMessage())
            return
        }
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .validationFailure {
                CommandFailure(exitCode: CommandFailure.invalidInputExitCode, message: message(for: error)).exit()
            }
            exit(withError: error)
        }
    }
}
