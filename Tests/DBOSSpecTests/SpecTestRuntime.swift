import DBOS
import DBOSSpec
import DBOSTestSupport
import Foundation
import Synchronization

/// A temporary directory with an SQLite system database, a runtime and an interpreter for the specs of one
/// test; `close()` shuts everything down and removes the directory.
struct SpecTestRuntime {
    let directory: TemporaryDirectory
    let runtime: DBOSRuntime
    let interpreter: SpecInterpreter
    let events: EventRecorder

    /// The database file.
    var databasePath: String { directory.file("system.sqlite") }

    /// Opens a runtime on `directory` (a fresh one by default), registers `specs` and launches.
    static func make(
        specs: [WorkflowSpec], directorySpecs: [WorkflowSpec] = [], handlers: HandlerRegistry = HandlerRegistry(),
        directory: TemporaryDirectory? = nil, registersSchedules: Bool = false,
        secrets: @escaping @Sendable (String) -> String? = { ProcessInfo.processInfo.environment[$0] },
        configure: (inout DBOSConfiguration) -> Void = { _ in }
    ) async throws -> SpecTestRuntime {
        let directory = try directory ?? TemporaryDirectory(prefix: "dbos-interp")
        var configuration = DBOSConfiguration(
            systemDatabaseURL: "sqlite:\(directory.file("system.sqlite"))", applicationVersion: "interpreter-tests",
            pollingInterval: .milliseconds(50))
        configure(&configuration)
        let runtime = try await DBOSRuntime(configuration: configuration)
        let interpreter = try SpecInterpreter(
            runtime: runtime, handlers: handlers, specs: specs, directorySpecs: directorySpecs,
            registersSchedules: registersSchedules, secrets: secrets)
        let events = EventRecorder()
        interpreter.addObserver(events)
        try await runtime.launch()
        return SpecTestRuntime(directory: directory, runtime: runtime, interpreter: interpreter, events: events)
    }

    /// Starts a run and waits for its output.
    func run(_ spec: WorkflowSpec, input: JSONValue = .null, id: String? = nil) async throws -> JSONValue {
        try await interpreter.start(spec: spec, input: input, workflowID: id).result()
    }

    /// Runs `spec` expecting it to fail; returns the error's description ("" if it succeeded).
    func failureMessage(of spec: WorkflowSpec, input: JSONValue = .null, id: String? = nil) async -> String {
        do {
            _ = try await run(spec, input: input, id: id)
            return ""
        } catch {
            return String(describing: error)
        }
    }

    /// Shuts the runtime down and removes the directory.
    func close() async {
        await runtime.shutdown(gracePeriod: .seconds(1))
        directory.remove()
    }
}

/// Collects the interpreter's events.
final class EventRecorder: SpecRunObserver {
    private let recorded = Mutex<[SpecRunEvent]>([])

    func specRun(_ event: SpecRunEvent) { recorded.withLock { $0.append(event) } }

    /// The events so far.
    var all: [SpecRunEvent] { recorded.withLock { $0 } }

    /// The events of one run.
    func kinds(of workflowID: String) -> [SpecRunEvent.Kind] { all.filter { $0.workflowID == workflowID }.map(\.kind) }
}

/// Writes spec files into a directory and loads them the way `dbos-run` does.
enum SpecFiles {
    /// Writes `text` as `name` in `directory` and loads it (with the directory's other specs as context).
    static func write(_ text: String, as name: String, in directory: TemporaryDirectory, handlers: Set<String> = [])
        throws -> WorkflowSpec
    {
        try text.write(toFile: directory.file(name), atomically: true, encoding: .utf8)
        return try SpecLoader(knownHandlers: handlers).load(file: directory.file(name))
    }

    /// The reference specs of `Specs/`, validated together.
    static func referenceSpecs() throws -> [String: WorkflowSpec] {
        let specs = try SpecLoader(knownHandlers: ["charge_card"]).loadFiles(TestFiles.yamlFiles(in: TestFiles.specsDirectory))
        return Dictionary(specs.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }
}

/// A file that records lines appended by shell steps and handlers, for counting side effects.
struct SideEffectLog {
    let path: String

    /// The lines written so far.
    var lines: [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Appends a line (from Swift code).
    func append(_ line: String) {
        let handle = FileHandle(forWritingAtPath: path) ?? {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            return FileHandle(forWritingAtPath: path)!
        }()
        handle.seekToEndOfFile()
        handle.write(Data((line + "\n").utf8))
        try? handle.close()
    }
}
