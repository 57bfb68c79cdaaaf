import ArgumentParser
import DBOSSpec
import Foundation

/// `dbos-run validate FILE...`: checks specs and prints every problem as `FILE:LINE:COL: error: message`.
public struct ValidateCommand: ParsableCommand {
    /// The command's name and help.
    public static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check workflow specs without running them.",
        discussion: """
            Prints each problem as FILE:LINE:COL: error: message to stderr and exits with 2 when there is any. \
            Files are checked together: queues they declare must agree, and 'workflow:' steps may name the \
            specs given or the specs in the same directory. --db is accepted like on every command; no database is opened.
            """)

    /// `--db URL`, accepted like on every command and never opened: this command reads only spec files.
    @OptionGroup public var database: DatabaseOptions

    /// The spec files to check.
    @Argument(help: "The spec files to check.", completion: .file(extensions: ["yaml", "yml"]))
    public var files: [String]

    /// Creates the command (ArgumentParser fills in the arguments).
    public init() {}

    /// Validates the files; exits 0 when all are valid, 2 otherwise.
    public mutating func run() throws {
        let errors = SpecFiles.loader.validateFiles(files)
        for error in errors { printError(error.description) }
        guard errors.isEmpty else { throw ExitCode(2) }
        for file in files { print("\(file): valid") }
    }
}

/// Writes one line to standard error (above the live status line on a terminal).
func printError(_ line: String) {
    TerminalStatusLine.shared.write(line)
}
