import ArgumentParser
import DBOS
import DBOSSpec
import Foundation
import Synchronization

/// `dbos-run worker DIR_OR_FILES... [--executor-id ID]`: a long-running process that executes the runs of
/// the specs it loads: this executor's unfinished runs, cron ticks, and the runs of the declared queues.
public struct WorkerCommand: FailureReportingCommand {
    public static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Serve specs: recover unfinished runs, run cron schedules, dequeue the declared queues.",
        discussion: """
            A directory stands for its .yaml and .yml files; all are validated together (exit 2 on any problem). \
            SIGINT or SIGTERM stops the worker cleanly: running steps get the grace period to finish, the rest \
            of their runs stay PENDING and this executor's next start resumes them. Exit 0 on a clean stop.
            """)

    /// Which system database to use (`--db`).
    @OptionGroup public var database: DatabaseOptions

    /// The spec files and directories to serve.
    @Argument(help: ArgumentHelp("Spec files, or directories of them.", valueName: "dir-or-files"))
    public var paths: [String]

    /// This worker's executor ID.
    @Option(help: ArgumentHelp(
        "This worker's executor ID: recovery resumes the unfinished runs of this ID. Default: $DBOS__VMID, else dbos-run-worker.",
        valueName: "id"))
    public var executorID: String?

    /// How long running steps get to finish on SIGINT/SIGTERM.
    @Option(help: ArgumentHelp("How long running runs get to finish when the worker stops, e.g. 10s.", valueName: "duration"))
    public var gracePeriod: String = "10s"

    public init() {}

    public func execute() async throws {
        // Signals are handled from the very start: a stop that arrives while the worker is still
        // opening the database ends it cleanly too (nothing has started yet).
        let stopping = StopFlag()
        let started = Mutex<DBOSRuntime?>(nil)
        let graceText = gracePeriod
        let grace = try CLIDuration.parse(gracePeriod, option: "--grace-period")
        TerminationSignals.handle { number in
            guard stopping.set() else { Foundation.exit(128 + number) }
            guard let runtime = started.withLock({ $0 }) else {
                printError("dbos-run worker: \(TerminationSignals.name(of: number)) received before it started; stopped")
                Foundation.exit(0)
            }
            printError("dbos-run worker: \(TerminationSignals.name(of: number)) received; stopping (running runs get \(graceText), the rest stay PENDING for recovery)")
            Task {
                await runtime.shutdown(gracePeriod: grace)
                TerminalStatusLine.shared.disable()
                printError("dbos-run worker: stopped")
                Foundation.exit(0)
            }
        }
        let files = try SpecFiles.expand(paths)
        let specs = try SpecFiles.loadTogether(files)
        let neighbours = SpecFiles.neighbours(of: files, excludingNames: Set(specs.map(\.name)))
        let executor = executorID
            ?? ProcessInfo.processInfo.environment["DBOS__VMID"].flatMap { $0.isEmpty ? nil : $0 }
            ?? CLIRuntime.defaultWorkerExecutorID
        let runtime = try await CLIRuntime.open(database, executorID: executor, recoversPendingWorkflows: true)
        let interpreter = try SpecInterpreter(
            runtime: runtime, handlers: DBOSRunCommand.handlers, specs: specs, directorySpecs: neighbours,
            registersSchedules: true)
        interpreter.addObserver(ProgressReporter(rootWorkflowID: nil))
        started.withLock { $0 = runtime }
        if stopping.isSet {
            await runtime.shutdown(gracePeriod: .zero)
            return
        }
        try await runtime.launch()

        let queues = runtime.registeredQueues.map(\.name).filter { !$0.hasPrefix("_") }
        let schedules = specs.filter { $0.schedule != nil }.map(\.name)
        printError(
            "dbos-run worker \(executor): serving \(specs.map(\.name).joined(separator: ", "))"
                + "; queues: \(queues.isEmpty ? "none" : queues.joined(separator: ", "))"
                + "; schedules: \(schedules.isEmpty ? "none" : schedules.joined(separator: ", "))")
        while true {
            try? await Task.sleep(for: .seconds(3600))
        }
    }
}
