import DBOS
import DBOSTestSupport
import Foundation
import Testing

/// DBOS Transact for Python, the real PyPI package, pointed at our system database: its client
/// and CLI list our runs and steps, its client enqueues into our queues, and its migrations find
/// our schema current. It reads and writes through Tests/Interop/dbos_python_interop.py.
@Suite(.serialized, .timeLimit(.minutes(15)))
struct DBOSPythonInteropTests {
    struct Point: Codable, Sendable, Equatable { var x: Int }
    struct Doubled: Codable, Sendable, Equatable { var x: Int; var doubled: Int }
    struct Report: Codable, Sendable, Equatable { var greeting: String; var total: Int }

    @Test(arguments: Backend.allCases) func dbosPythonListsOurRunsWithDecodedOutputsAndErrors(backend: Backend) async throws {
        let python = try await DBOSPython.shared()
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        let greet = try runtime.register("greet") { (_: WorkflowContext, name: String) -> String in "Hello, \(name)" }
        let double = try runtime.register("double") { (_: WorkflowContext, point: Point) -> Doubled in
            Doubled(x: point.x, doubled: point.x * 2)
        }
        let fail = try runtime.register("fail") { (_: WorkflowContext, _: String) -> String in
            throw PortableError(name: "InteropError", message: "boom", code: "E42")
        }
        try await runtime.launch()
        _ = try await runtime.runWorkflow(greet, input: "Ada", options: WorkflowOptions(workflowID: "list-greet"))
        _ = try await runtime.runWorkflow(double, input: Point(x: 21), options: WorkflowOptions(workflowID: "list-double"))
        await #expect(throws: PortableError.self) {
            try await runtime.runWorkflow(fail, input: "x", options: WorkflowOptions(workflowID: "list-fail"))
        }

        let listed = try await python.run("list", python.url(setup.url))
        let runs = Dictionary(uniqueKeysWithValues: try listed.jsonLines().map { ($0["id"]?.stringValue ?? "", $0) })
        #expect(runs["list-greet"] == ["id": "list-greet", "name": "greet", "status": "SUCCESS", "output": "Hello, Ada", "error": nil])
        #expect(runs["list-double"]?["output"] == ["x": 21, "doubled": 42])
        #expect(runs["list-fail"]?["status"] == "ERROR")
        #expect(runs["list-fail"]?["output"] == .null)
        #expect(runs["list-fail"]?["error"] == ["type": "PortableWorkflowError", "name": "InteropError", "message": "boom"])

        let cli = try await python.run("cli-list", python.url(setup.url))
        guard case .array(let cliRuns) = try JSONValue(parsing: cli.output) else {
            Issue.record("`dbos workflow list` printed no JSON array: \(cli.output)")
            return
        }
        let byID = Dictionary(uniqueKeysWithValues: cliRuns.map { ($0["workflow_id"]?.stringValue ?? "", $0) })
        #expect(byID.count == 3)
        #expect(byID["list-greet"]?["name"] == "greet")
        #expect(byID["list-greet"]?["status"] == "SUCCESS")
        #expect(byID["list-greet"]?["output"] == "Hello, Ada")
        #expect(byID["list-double"]?["output"] == ["x": 21, "doubled": 42])
        #expect(byID["list-double"]?["input"] == ["args": [["x": 21]], "kwargs": [:]])
        #expect(byID["list-fail"]?["status"] == "ERROR")
        // The CLI prints an error as its message.
        #expect(byID["list-fail"]?["error"] == "boom")
        await runtime.shutdown()
    }

    @Test(arguments: Backend.allCases) func dbosPythonListsTheStepsOfOurRun(backend: Backend) async throws {
        let python = try await DBOSPython.shared()
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        let child = try runtime.register("child") { (_: WorkflowContext, name: String) -> String in "Hello, \(name)" }
        let parent = try runtime.register("parent") { (context: WorkflowContext, start: Int) -> Report in
            let total: Int = try await context.runStep("fetch") { start + 40 }
            try await context.sleep(for: .milliseconds(10))
            let greeting = try await context.runChildWorkflow(
                child, input: "Ada", options: WorkflowOptions(workflowID: "steps-child"))
            return try await context.runStep("describe") { Report(greeting: greeting, total: total) }
        }
        try await runtime.launch()
        let started = Date().timeIntervalSince1970 * 1000
        _ = try await runtime.runWorkflow(parent, input: 1, options: WorkflowOptions(workflowID: "steps-parent"))

        let listed = try await python.run("steps", python.url(setup.url), "steps-parent")
        guard case .array(let steps) = try JSONValue(parsing: listed.output) else {
            Issue.record("no steps printed: \(listed.output)")
            return
        }
        #expect(steps.map { $0["function_name"] } == ["fetch", "DBOS.sleep", "child", "describe"])
        #expect(steps.allSatisfy { $0["error"] == .null })
        let functionIDs = steps.compactMap { $0["function_id"]?.doubleValue }
        #expect(functionIDs == functionIDs.sorted() && Set(functionIDs).count == 4)
        guard steps.count == 4 else { return }
        #expect(steps[0]["output"] == 41)
        // The sleep's checkpoint is its wake-up time.
        #expect((steps[1]["output"]?.doubleValue ?? 0) >= started)
        #expect(steps[2]["child_workflow_id"] == "steps-child")
        #expect(steps[3]["output"] == ["greeting": "Hello, Ada", "total": 41])
        await runtime.shutdown()
    }

    @Test(arguments: Backend.allCases) func dbosPythonEnqueuesIntoOurQueueAndGetsTheResult(backend: Backend) async throws {
        let python = try await DBOSPython.shared()
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        try runtime.register(queue: WorkflowQueue(name: "interop", pollingInterval: .milliseconds(50)))
        try runtime.register("double") { (context: WorkflowContext, point: Point) -> Doubled in
            let doubled: Int = try await context.runStep("double") { point.x * 2 }
            return Doubled(x: point.x, doubled: doubled)
        }
        try runtime.register("reject") { (_: WorkflowContext, point: Point) -> Doubled in
            throw PortableError(name: "Rejected", message: "x was \(point.x)")
        }
        try await runtime.launch()
        let url = python.url(setup.url)

        let enqueued = try await python.run("enqueue", url, "interop", "double", #"{"x": 1}"#, "--id", "from-python")
        #expect(try JSONValue(parsing: enqueued.output) == "from-python")
        let result = try await python.run("wait", url, "from-python", "60")
        #expect(try JSONValue(parsing: result.output) == ["output": ["x": 1, "doubled": 2]])
        #expect(try await runtime.retrieveWorkflow(id: "from-python", as: Doubled.self).result() == Doubled(x: 1, doubled: 2))
        let status = try #require(try await runtime.workflowStatus(id: "from-python"))
        #expect(status.queueName == "interop")
        #expect(status.executorID == runtime.executorID)

        let rejected = try await python.run("enqueue", url, "interop", "reject", #"{"x": 7}"#)
        let rejectedID = try #require(try JSONValue(parsing: rejected.output).stringValue)
        let failure = try await python.run("wait", url, rejectedID, "60")
        #expect(try JSONValue(parsing: failure.output)
            == ["error": ["type": "PortableWorkflowError", "name": "Rejected", "message": "x was 7"]])
        await runtime.shutdown()
    }

    @Test(arguments: Backend.allCases) func dbosPythonMigrationsFindOurSchemaCurrent(backend: Backend) async throws {
        let python = try await DBOSPython.shared()
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let first = try await setup.make()
        try first.register("greet") { (_: WorkflowContext, name: String) -> String in "Hello, \(name)" }
        try await first.launch()
        await first.shutdown()

        let migrated = try await python.run("migrate", python.url(setup.url))
        #expect(try JSONValue(parsing: migrated.output) == ["versions": [125]])

        // Our runtime still opens the database and runs on it afterwards.
        let second = try await setup.make()
        let greet = try second.register("greet") { (_: WorkflowContext, name: String) -> String in "Hello, \(name)" }
        try await second.launch()
        #expect(try await second.runWorkflow(greet, input: "Ada") == "Hello, Ada")
        await second.shutdown()
    }
}

/// What one run of the interop script printed.
struct ScriptOutput {
    /// Standard output: the JSON the command prints.
    var output: String
    /// Standard error: DBOS Python's log, including its warnings about values it could not decode.
    var errors: String

    /// One JSON value per non-empty line of output.
    func jsonLines() throws -> [JSONValue] {
        try output.split(separator: "\n").map { try JSONValue(parsing: String($0)) }
    }
}

/// A virtual environment with DBOS Transact for Python installed from PyPI, created once per test
/// process under `.build/dbos-python-venv` and reused while it still imports the pinned version.
struct DBOSPython: Sendable {
    /// The DBOS Python release the tests run against.
    static let version = "3.4.0"

    /// The venv's interpreter.
    let python: String
    /// Tests/Interop/dbos_python_interop.py.
    let script: String

    /// The shared environment; a failure to create it (no network, pip failing) fails the test
    /// with pip's output instead of skipping it.
    static func shared() async throws -> DBOSPython {
        try await installation.environment()
    }

    private static let installation = Installation()

    private actor Installation {
        private var task: Task<DBOSPython, any Error>?

        func environment() async throws -> DBOSPython {
            if let task { return try await task.value }
            let task = Task { try await DBOSPython.install() }
            self.task = task
            return try await task.value
        }
    }

    /// The root of this package: two folders up from this file.
    private static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    private static func install() async throws -> DBOSPython {
        let venv = "\(packageRoot)/.build/dbos-python-venv"
        let environment = DBOSPython(
            python: "\(venv)/bin/python", script: "\(packageRoot)/Tests/Interop/dbos_python_interop.py")
        let check = "import dbos, importlib.metadata as m; assert m.version('dbos') == '\(version)', m.version('dbos')"
        if FileManager.default.fileExists(atPath: environment.python),
            try await runProcess(environment.python, ["-c", check]).status == 0
        {
            return environment
        }
        let started = ContinuousClock.now
        let created = try await runProcess("/usr/bin/env", ["python3", "-m", "venv", "--clear", venv])
        guard created.status == 0 else {
            throw InteropSetupError(description: "`python3 -m venv \(venv)` failed:\n\(created.output)\(created.errors)")
        }
        let installed = try await runProcess(
            environment.python, ["-m", "pip", "install", "--disable-pip-version-check", "dbos==\(version)"],
            timeout: .seconds(600))
        guard installed.status == 0 else {
            throw InteropSetupError(description: "`pip install dbos==\(version)` failed:\n\(installed.output)\(installed.errors)")
        }
        let imported = try await runProcess(environment.python, ["-c", check])
        guard imported.status == 0 else {
            throw InteropSetupError(description: "dbos \(version) is not importable after pip install:\n\(imported.errors)")
        }
        print("DBOS Python \(version) installed in \(venv) in \(ContinuousClock.now - started)")
        return environment
    }

    /// DBOS Python's URL for one of ours. SQLAlchemy reads `sqlite:///` followed by the path, so an
    /// absolute path gives four slashes (`sqlite:///tmp/x` would be the relative path `tmp/x`).
    func url(_ url: String) -> String {
        guard url.hasPrefix("sqlite:") else { return url }
        let path = String(url.dropFirst("sqlite:".count))
        return "sqlite:///" + (path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path)
    }

    /// Runs one command of the interop script; a failure throws with everything it printed.
    func run(_ arguments: String...) async throws -> ScriptOutput {
        let result = try await Self.runProcess(python, [script] + arguments)
        guard result.status == 0 else {
            throw InteropSetupError(description: """
                dbos_python_interop.py \(arguments.joined(separator: " ")) exited with \(result.status.map(String.init) ?? "a timeout"):
                \(result.output)\(result.errors)
                """)
        }
        #expect(!result.errors.contains("could not be deserialized"), "DBOS Python could not decode a value: \(result.errors)")
        return ScriptOutput(output: result.output, errors: result.errors)
    }

    /// Runs a process to its end (killing it after `timeout`), its stdout and stderr kept apart.
    private static func runProcess(
        _ executable: String, _ arguments: [String], timeout: Duration = .seconds(120)
    ) async throws -> (status: Int32?, output: String, errors: String) {
        let directory = try TemporaryDirectory(prefix: "dbos-python")
        defer { directory.remove() }
        let process = try ChildProcess(
            executable: executable, arguments: arguments, outputPath: directory.file("stdout"),
            errorOutputPath: directory.file("stderr"))
        let status = await process.waitForExit(timeout: timeout)
        if status == nil { process.kill() }
        return (status, process.output, process.errorOutput)
    }
}

/// The Python side could not be set up or a command of it failed.
struct InteropSetupError: Error, CustomStringConvertible {
    let description: String
}
