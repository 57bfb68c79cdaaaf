import ArgumentParser
import DBOS
import DBOSSpec
import Foundation

/// `dbos-run FILE [--input JSON|@file] [--id ID] [--queue Q] [--json]`: runs a spec as a durable workflow in
/// this process and waits for its end. The root command's default: `dbos-run FILE` is `dbos-run run FILE`.
public struct RunCommand: FailureReportingCommand {
    public static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a spec as a durable workflow in this process (the default: dbos-run FILE).",
        discussion: """
            Validates FILE and the input, runs the workflow, streams step progress to stderr and prints the output \
            to stdout. Exit codes: 0 success, 1 workflow error, 2 invalid spec or input, 3 cancelled or timed out, \
            130/143 stopped by SIGINT/SIGTERM (the run stays PENDING). Run again with the same --id: a finished run \
            prints its recorded outcome without running anything; an unfinished one whose process died resumes \
            from its last checkpoint, with the spec text stored with it.
            """)

    /// Which system database to use (`--db`).
    @OptionGroup public var database: DatabaseOptions

    /// The spec file.
    @Argument(help: "The spec file to run.", completion: .file(extensions: ["yaml", "yml"]))
    public var file: String

    /// The run's input.
    @OptionGroup public var input: SpecInputOptions

    /// The run's workflow ID (parsed unconditionally: an ID may start with `-`).
    @Option(name: .customLong("id"), parsing: .unconditional, help: ArgumentHelp("The run's workflow ID (default: a new UUID).", valueName: "id"))
    public var workflowID: String?

    /// A queue to enqueue the run on; this process serves it.
    @Option(help: ArgumentHelp(
        "Enqueue the run on this queue (declared by the spec or a spec next to it); this process serves the queue.",
        valueName: "queue"))
    public var queue: String?

    /// Print the output as JSON even when it is a string.
    @Flag(help: "Print the output as JSON, strings included.")
    public var json = false

    public init() {}

    public func execute() async throws {
        if workflowID?.isEmpty == true {
            throw CommandFailure(exitCode: CommandFailure.invalidInputExitCode, message: "--id must not be empty")
        }
        let spec = try SpecFiles.load(file)
        let inputValue = try input.value()
        let fileNeighbours = SpecFiles.neighbours(of: [file], excludingNames: [spec.name])
        if try isNewRunForSure() {
            // Refuse a bad input or queue before the database is even opened (or created).
            _ = try Self.preparedInput(for: spec, input: inputValue)
            try checkQueue(declaredBy: [spec] + fileNeighbours)
        }
        let id = workflowID ?? UUID().uuidString.lowercased()
        // This process serves the queues its specs declare only for its own run and the runs that run
        // enqueues (map items, children): other processes' queued runs are left to workers.
        let runtime = try await CLIRuntime.open(
            database, executorID: CLIRuntime.runExecutorID(for: id), recoversPendingWorkflows: false,
            queueClaimScope: .enqueuedByThisExecutor(alsoWorkflowIDs: [id]))
        let printer = ValuePrinter(printsJSON: json)
        let existing: WorkflowStatus?
        do {
            existing = try await runtime.workflowStatus(id: id)
        } catch {
            await runtime.shutdown(gracePeriod: .zero)
            throw CommandFailure(error).redacting(SystemDatabaseURL.password(in: database.resolvedURL))
        }

        if let existing, existing.name != spec.name {
            await runtime.shutdown(gracePeriod: .zero)
            throw CommandFailure(
                exitCode: CommandFailure.invalidInputExitCode,
                message: "workflow ID '\(id)' is already used by a run of '\(existing.name)', not '\(spec.name)'")
        }
        if let existing, existing.state.isTerminal {
            await runtime.shutdown(gracePeriod: .zero)
            printError("dbos-run: run \(id) already finished (\(existing.state.rawValue)); its recorded outcome follows")
            try AttachedRun.report(existing, printer: printer)
            return
        }

        // An unfinished run executes the spec text stored with it, whatever the file says now.
        var specs = [spec]
        if let existing {
            let stored = try SpecInterpreter.storedSpecs(
                in: existing.attributes, handlers: DBOSRunCommand.handlers, otherSpecs: fileNeighbours)
            if !stored.isEmpty { specs = stored }
        }
        let storedNames = Set(specs.map(\.name))
        let neighbours = fileNeighbours.filter { !storedNames.contains($0.name) }
        let interpreter = try SpecInterpreter(
            runtime: runtime, handlers: DBOSRunCommand.handlers, specs: specs, directorySpecs: neighbours,
            registersSchedules: false)

        var prepared = JSONValue.null
        if existing == nil {
            do {
                prepared = try Self.preparedInput(for: spec, input: inputValue)
                try checkQueue(declaredBy: [spec] + fileNeighbours)
            } catch {
                await runtime.shutdown(gracePeriod: .zero)
                throw error
            }
        }

        interpreter.addObserver(ProgressReporter(rootWorkflowID: id))
        let run = AttachedRun(
            runtime: runtime, workflowID: id, continueCommand: "dbos-run \(ShellWord.quoted(ShellWord.path(file))) \(ShellWord.option("--id", id))", printer: printer)
        run.stopOnTerminationSignals()
        try await runtime.launch()

        switch existing?.state {
        case nil:
            printError("dbos-run: run \(id) of '\(spec.name)'" + (queue.map { " enqueued on queue '\($0)'" } ?? " started"))
            _ = try await interpreter.start(spec: spec, input: prepared, workflowID: id, queue: queue)
        case .pending?:
            printError("dbos-run: run \(id) was interrupted; resuming it from its last checkpoint")
            _ = try await runtime.recoverWorkflow(id: id)
            // Its child runs that the dead process had claimed carry this executor ID too.
            _ = try await runtime.recoverPendingWorkflows()
        case let state?:
            printError("dbos-run: run \(id) is \(state.rawValue); waiting for it (this process serves its queue)")
        }
        try await run.waitForEnd()
    }

    /// Whether the run cannot exist yet: no `--id`, or an embedded database whose file is not there.
    private func isNewRunForSure() throws(CommandFailure) -> Bool {
        guard workflowID != nil else { return true }
        let url = database.resolvedURL
        if url == "sqlite::memory:" { return true }
        do {
            guard let path = try SystemDatabaseURL.sqliteFilePath(in: url) else { return false }
            return !FileManager.default.fileExists(atPath: path)
        } catch {
            throw CommandFailure(error)
        }
    }

    /// The input with the schema's defaults, or exit 2 with a `FILE:LINE:COL: error:` line per field that is wrong.
    static func preparedInput(for spec: WorkflowSpec, input: JSONValue) throws(CommandFailure) -> JSONValue {
        do {
            return try spec.preparedInput(input)
        } catch {
            throw CommandFailure(SpecRunError.invalidInput(spec: spec.name, errors: error.errors))
        }
    }

    /// Exit 2 when `--queue` names a queue none of `specs` declares.
    func checkQueue(declaredBy specs: [WorkflowSpec]) throws(CommandFailure) {
        guard let queue, !specs.contains(where: { $0.queue(named: queue) != nil }) else { return }
        throw CommandFailure.unknownQueue(queue, file: file, declaredBy: specs)
    }
}

extension CommandFailure {
    /// Exit 2: a queue that neither the spec file nor the specs next to it declare. A file next to it
    /// that declares the queue but is not a valid spec (so was not read) is named.
    static func unknownQueue(_ queue: String, file: String, declaredBy specs: [WorkflowSpec]) -> CommandFailure {
        let declared = Set(specs.flatMap { $0.queues.map(\.name) }).sorted()
        var message = "unknown queue '\(queue)': \(file) and the specs next to it declare "
            + (declared.isEmpty ? "no queues" : declared.joined(separator: ", "))
        let invalid = SpecFiles.invalidNeighbours(of: [file], declaringQueue: queue)
        if !invalid.isEmpty {
            message += "; '\(queue)' is declared in " + invalid.joined(separator: ", ")
                + ", which is not a valid spec (dbos-run validate shows why)"
        }
        return CommandFailure(exitCode: invalidInputExitCode, message: message)
    }
}
