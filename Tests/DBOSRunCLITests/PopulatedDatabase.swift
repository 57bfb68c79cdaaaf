import DBOS
import DBOSTestSupport
import Foundation

/// A failure a step throws, with a message the CLI must print as is.
struct DemoFailure: Error, CustomStringConvertible {
    var description: String { "the bomb went off" }
}

/// A temporary SQLite system database filled by a real `DBOSRuntime` with four runs of the
/// `cli-demo` workflow, created in this order:
///
/// - `run-success`: one step `shout`, output `"HELLO WORLD"`;
/// - `run-failure`: step `prepare` succeeds, step `explode` fails, so the run ends in ERROR;
/// - `run-waiting`: sets event `ready`, waits in `recv` on topic `go` (stays PENDING), then sets
///   event `answer` to the message and returns it;
/// - `run-events`: sets events `greeting` (`"hello"`) and `config` (`{"retries":3}`), output `{"ok":true}`.
struct PopulatedDatabase {
    static let workflowName = "cli-demo"
    static let executorID = "cli-test-executor"

    let directory: TemporaryDirectory
    let runtime: DBOSRuntime
    /// The handle of the run waiting for a message.
    let waiting: WorkflowHandle<JSONValue>

    var path: String { directory.file("system.sqlite") }
    var url: String { "sqlite:\(path)" }

    /// Creates the database and runs the four runs; the runtime stays up so `run-waiting` can finish.
    static func make() async throws -> PopulatedDatabase {
        let directory = try TemporaryDirectory(prefix: "dbos-cli-test")
        let runtime = try await DBOSRuntime(configuration: DBOSConfiguration(
            appName: "cli-tests", systemDatabaseURL: "sqlite:\(directory.file("system.sqlite"))",
            executorID: executorID, applicationVersion: "v1", recoversPendingWorkflows: false,
            pollingInterval: .milliseconds(50), cancellationCheckInterval: .milliseconds(100)))
        let demo = try runtime.register(workflowName) { (context: WorkflowContext, input: JSONValue) -> JSONValue in
            switch input["mode"]?.stringValue {
            case "fail":
                _ = try await context.runStep("prepare") { "prepared" }
                try await context.runStep("explode") { throw DemoFailure() }
                return .null
            case "wait":
                try await context.setEvent(key: "ready", value: "yes")
                let message = try await context.recv(JSONValue.self, topic: "go", timeout: .seconds(120)) ?? .null
                try await context.setEvent(key: "answer", value: message)
                return message
            case "events":
                try await context.setEvent(key: "greeting", value: "hello")
                try await context.setEvent(key: "config", value: ["retries": 3] as JSONValue)
                return ["ok": true]
            default:
                let name = input["name"]?.stringValue ?? "nobody"
                return .string(try await context.runStep("shout") { "HELLO \(name.uppercased())" })
            }
        }
        try await runtime.launch()

        _ = try? await runtime.runWorkflow(demo, input: ["mode": "success", "name": "world"], options: WorkflowOptions(workflowID: "run-success"))
        _ = try? await runtime.runWorkflow(demo, input: ["mode": "fail"], options: WorkflowOptions(workflowID: "run-failure"))
        let waiting = try await runtime.startWorkflow(demo, input: ["mode": "wait"], options: WorkflowOptions(workflowID: "run-waiting"))
        _ = try await runtime.getEvent(workflowID: "run-waiting", key: "ready", as: String.self, timeout: .seconds(30))
        _ = try await runtime.runWorkflow(demo, input: ["mode": "events"], options: WorkflowOptions(workflowID: "run-events"))
        return PopulatedDatabase(directory: directory, runtime: runtime, waiting: waiting)
    }

    /// Runs `body` with a fresh populated database, then shuts the runtime down and deletes the files.
    static func with<Result>(_ body: (PopulatedDatabase) async throws -> Result) async throws -> Result {
        let database = try await make()
        do {
            let result = try await body(database)
            await database.runtime.shutdown(gracePeriod: .zero)
            database.directory.remove()
            return result
        } catch {
            await database.runtime.shutdown(gracePeriod: .zero)
            database.directory.remove()
            throw error
        }
    }

    /// Stops the runtime, so no worker in the test process picks up runs the CLI puts on a queue.
    /// The waiting run stays PENDING.
    func stopRuntime() async {
        await runtime.shutdown(gracePeriod: .zero)
    }

    /// Runs `dbos-run` with `arguments` followed by `--db` this database's URL.
    func run(_ arguments: String...) async throws -> CLIResult {
        try await runCLI(arguments + ["--db", url], in: directory)
    }
}
