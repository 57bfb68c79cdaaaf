import ArgumentParser
import DBOS
import DBOSSpec
import Foundation

/// `dbos-run enqueue FILE --queue Q [--input ...] [--id ID] [--priority N] [--dedup-id D]`: enqueues a run
/// for a worker and prints its workflow ID without waiting.
public struct EnqueueCommand: FailureReportingCommand {
    public static let configuration = CommandConfiguration(
        commandName: "enqueue",
        abstract: "Enqueue a run of a spec for a worker and print its workflow ID.",
        discussion: """
            Validates the spec and the input and stores the run ENQUEUED with the spec text; a worker serving \
            the queue executes it. Exit 2 for an invalid spec or input, a queue the spec (or the specs next \
            to it) does not declare, or a deduplication ID another waiting or running run holds.
            """)

    /// Which system database to use (`--db`).
    @OptionGroup public var database: DatabaseOptions

    /// The spec file.
    @Argument(help: "The spec file.", completion: .file(extensions: ["yaml", "yml"]))
    public var file: String

    /// The queue.
    @Option(help: ArgumentHelp("The queue, declared by the spec or a spec next to it.", valueName: "queue"))
    public var queue: String

    /// The run's input.
    @OptionGroup public var input: SpecInputOptions

    /// The run's workflow ID (parsed unconditionally: an ID may start with `-`).
    @Option(name: .customLong("id"), parsing: .unconditional, help: ArgumentHelp("The run's workflow ID (default: a new UUID).", valueName: "id"))
    public var workflowID: String?

    /// The run's priority on a queue with `priority: true`.
    @Option(help: ArgumentHelp("Priority, 1 (highest) to 2147483647; the queue must enable priority.", valueName: "n"))
    public var priority: Int?

    /// A deduplication ID (parsed unconditionally: an ID may start with `-`).
    @Option(name: .customLong("dedup-id"), parsing: .unconditional, help: ArgumentHelp(
        "Refuse the run while another run with this ID waits or runs on the queue.", valueName: "id"))
    public var deduplicationID: String?

    public init() {}

    public func execute() async throws {
        let spec = try SpecFiles.load(file)
        let inputValue = try input.value()
        let neighbours = SpecFiles.neighbours(of: [file], excludingNames: [spec.name])
        guard let queueSpec = ([spec] + neighbours).lazy.compactMap({ $0.queue(named: queue) }).first else {
            throw CommandFailure.unknownQueue(queue, file: file, declaredBy: [spec] + neighbours)
        }
        if priority != nil, !queueSpec.priority {
            throw CommandFailure(
                exitCode: CommandFailure.invalidInputExitCode,
                message: "--priority needs a queue with 'priority: true'; queue '\(queue)' does not enable it")
        }
        let prepared = try RunCommand.preparedInput(for: spec, input: inputValue)
        let attributes = SpecInterpreter.rootAttributes(for: spec, otherSpecs: neighbours).jsonValue
        let options = WorkflowOptions(
            workflowID: workflowID ?? UUID().uuidString.lowercased(), timeout: spec.timeout, priority: priority,
            deduplicationID: deduplicationID, applicationVersion: CLIRuntime.applicationVersion, attributes: attributes)
        let handle = try await database.withClient { client in
            try await client.enqueue(workflowName: spec.name, queueName: queue, input: prepared, options: options)
        }
        print(handle.workflowID)
    }
}
