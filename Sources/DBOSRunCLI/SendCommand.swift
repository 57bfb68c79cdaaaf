import ArgumentParser
import DBOS
import Foundation

/// `dbos-run send ID --topic T --message JSON`: sends a message to a run.
public struct SendCommand: FailureReportingCommand {
    public static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send a message to a workflow run.")

    /// Which system database to use (`--db`).
    @OptionGroup public var database: DatabaseOptions

    /// The run that receives the message.
    @Argument(help: ArgumentHelp("The ID of the workflow to send to.", valueName: "id"))
    public var workflowID: String

    /// The topic the run receives on (parsed unconditionally: a topic may start with `-`).
    @Option(parsing: .unconditional, help: ArgumentHelp("The topic the workflow receives the message on.", valueName: "topic"))
    public var topic: String

    /// The message, as JSON text (parsed unconditionally, so `--message -1` sends -1).
    @Option(parsing: .unconditional, help: ArgumentHelp("The message as JSON, e.g. '\"go\"' or '{\"approved\":true}'.", valueName: "json"))
    public var message: String

    public init() {}

    public func execute() async throws {
        let value = try Self.parseJSON(message, option: "--message")
        try await database.withClient { client in
            guard try await client.workflowStatus(id: workflowID) != nil else {
                throw WorkflowError.nonexistentWorkflow(workflowID)
            }
            try await client.send(to: workflowID, topic: topic, message: value)
        }
    }

    /// Parses `text` as a JSON value, or fails with exit 2 naming the option and the problem.
    static func parseJSON(_ text: String, option: String) throws(CommandFailure) -> JSONValue {
        guard let value = try? JSONValue(parsing: text) else {
            throw CommandFailure(
                exitCode: CommandFailure.invalidInputExitCode,
                message: "invalid JSON in \(option): \(reason(for: text))")
        }
        return value
    }

    /// Foundation's parser names the position of the problem; `JSONDecoder` only says the data is not JSON.
    private static func reason(for text: String) -> String {
        var reason = "not a JSON value"
        do {
            _ = try JSONSerialization.jsonObject(with: Data(text.utf8), options: .fragmentsAllowed)
        } catch {
            if let description = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String {
                reason = description.prefix(1).lowercased() + description.dropFirst()
                if reason.hasSuffix(".") { reason.removeLast() }
            }
        }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let first = trimmed.first, !"{[\"-0123456789tfn".contains(first) {
            reason += " (to send a string, quote it: '\"\(trimmed)\"')"
        }
        return reason
    }
}
