import ArgumentParser
import DBOS
import Foundation

/// The `--input JSON | --input @file.json` option of the commands that start runs.
public struct SpecInputOptions: ParsableArguments, Sendable {
    /// The input as given: JSON text, or `@` and a path to a file holding it. Parsed unconditionally, so a
    /// value starting with `-` (`--input -5`) is the input rather than an unknown flag.
    @Option(
        name: .customLong("input"), parsing: .unconditional,
        help: ArgumentHelp(
            "The run's input: JSON text, or @FILE to read it from a file.",
            discussion: "Checked against the spec's input: schema (defaults filled in). Default: null.",
            valueName: "json|@file"))
    public var text: String?

    public init() {}

    /// The input as a JSON value (null when not given), or exit 2 naming what is wrong.
    public func value() throws(CommandFailure) -> JSONValue {
        guard let text else { return .null }
        guard text.hasPrefix("@") else { return try SendCommand.parseJSON(text, option: "--input") }
        let path = String(text.dropFirst())
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CommandFailure(
                exitCode: CommandFailure.invalidInputExitCode, message: "cannot read the input file '\(path)' given to --input")
        }
        guard let json = String(validating: data, as: UTF8.self) else {
            throw CommandFailure(
                exitCode: CommandFailure.invalidInputExitCode, message: "the input file '\(path)' given to --input is not valid UTF-8 text")
        }
        return try SendCommand.parseJSON(json, option: "--input \(text)")
    }
}
