@testable import DBOS
import DBOSTestSupport
import Foundation
import Synchronization
import Testing

/// Misuse and damaged inputs: unknown or duplicate workflow names, conflicting IDs, checkpoints that
/// no longer decode, and system database URLs or files the engine cannot use.
@Suite struct BadInputTests {
    @Test func aNaNOrInfinityInsideAJSONValueIsRefusedNotStoredAsNull() throws {
        // JSONEncoder refuses them; JSONValue's own writer must not quietly turn them into null.
        for value: JSONValue in [.double(.infinity), .array([1, .double(.nan)]), .object(["a": .double(-.infinity)])] {
            #expect(throws: WorkflowError.self) { try PortableJSON.encode(value) }
        }
        #expect(try PortableJSON.encode(JSONValue.array([.double(1.5), 2])) == "[1.5,2]")
    }

    @Test func integersAndBooleansAreWrittenAsJSONEncoderWritesThem() throws {
        let encoder = JSONEncoder()
        for value in [0, 1, -1, 42, Int.max, Int.min] {
            #expect(try PortableJSON.encode(value) == String(decoding: try encoder.encode(value), as: UTF8.self))
            #expect(try PortableJSON.decode(Int.self, from: PortableJSON.encode(value)) == value)
        }
        for value in [true, false] {
            #expect(try PortableJSON.encode(value) == String(decoding: try encoder.encode(value), as: UTF8.self))
        }
        #expect(try PortableJSON.encodeInput(7) == #"{"namedArgs":{},"positionalArgs":[7]}"#)
    }

    // MARK: Registration and starting

    @Test(arguments: Backend.allCases) func startingAnUnregisteredWorkflowThrows(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { _ in } test: { runtime, _ in
            await #expect(throws: WorkflowError.unregisteredWorkflow("nope")) {
                _ = try await runtime.startWorkflow(Workflow<String, String>(name: "nope"), input: "x")
            }
            let recorded = try await runtime.listWorkflows()
            #expect(recorded.isEmpty, "nothing is recorded for a workflow that cannot run")
        }
    }

    @Test func registeringTheSameNameTwiceThrows() async throws {
        // Registration never reaches the system database: one backend is enough.
        try await withLaunchedRuntime { runtime in
            try runtime.register("twice") { (_: WorkflowContext, input: String) -> String in input }
            #expect(throws: WorkflowError.duplicateRegistration("twice")) {
                try runtime.register("twice") { (_: WorkflowContext, input: Int) -> Int in input }
            }
        } test: { runtime, _ in
            #expect(runtime.registeredWorkflowNames == ["twice"])
        }
    }

    @Test func registeringAfterLaunchThrows() async throws {
        // Registration never reaches the system database: one backend is enough.
        try await withLaunchedRuntime { _ in } test: { runtime, _ in
            #expect(throws: WorkflowError.registrationAfterLaunch("late")) {
                try runtime.register("late") { (_: WorkflowContext, input: String) -> String in input }
            }
            #expect(runtime.registeredWorkflowNames.isEmpty)
        }
    }

    @Test(arguments: Backend.allCases) func reusingAWorkflowIDWithAnotherWorkflowNameThrows(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            let first = try runtime.register("first") { (_: WorkflowContext, input: String) -> String in "first:\(input)" }
            let second = try runtime.register("second") { (_: WorkflowContext, input: String) -> String in "second:\(input)" }
            return (first, second)
        } test: { runtime, workflows in
            let (first, second) = workflows
            #expect(try await runtime.runWorkflow(first, input: "a", options: WorkflowOptions(workflowID: "shared-id")) == "first:a")
            await #expect(
                throws: WorkflowError.conflictingWorkflowID(id: "shared-id", existingName: "first", requestedName: "second")
            ) {
                _ = try await runtime.startWorkflow(second, input: "b", options: WorkflowOptions(workflowID: "shared-id"))
            }
            // The existing run is untouched.
            let status = try await runtime.workflowStatus(id: "shared-id")
            #expect(status?.name == "first")
            #expect(status?.output == .string("first:a"))
        }
    }

    @Test(arguments: Backend.allCases) func aRecordedStepOutputThatNoLongerDecodesFailsReplayWithADeserializationError(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let url = setup.url

        // Version 1 of the code: the step returns a String, then the workflow waits.
        try await withLaunchedRuntime(url: url) { runtime in
            try runtime.register("typed") { (ctx: WorkflowContext, _: String) -> String in
                let value: String = try await ctx.runStep("produce") { "text" }
                _ = try await ctx.recv(String.self, topic: "go", timeout: .seconds(60))
                return value
            }
        } test: { runtime, typed in
            _ = try await runtime.startWorkflow(typed, input: "", options: WorkflowOptions(workflowID: "typed-1"))
            let deadline = ContinuousClock.now + .seconds(20)
            // produce (0), then recv's sleep (2): the step is recorded and the workflow waits.
            while try await runtime.listSteps(workflowID: "typed-1").count < 2, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(try await runtime.listSteps(workflowID: "typed-1").first?.output == .string("text"))
        }

        // Version 2, same name, executor and version: the step now returns an Int. Recovery replays it.
        try await withLaunchedRuntime(url: url) { runtime in
            try runtime.register("typed") { (ctx: WorkflowContext, _: String) -> String in
                let value: Int = try await ctx.runStep("produce") { 42 }
                return String(value)
            }
        } test: { runtime, _ in
            let handle = runtime.retrieveWorkflow(id: "typed-1", as: String.self)
            let error = await #expect(throws: WorkflowError.self) { _ = try await handle.result() }
            // A run of this process hands back its own error; one that already finished hands back the stored one.
            switch error {
            case .deserializationFailed(let type, let reason)?:
                #expect(type == "Int")
                #expect(!reason.isEmpty)
            case .failed(_, let stored)?:
                #expect(stored.message.contains("does not decode as Int"), "stored error: \(stored.message)")
            default:
                Issue.record("expected a deserialization failure, got \(String(describing: error))")
            }
            #expect(error.map { "\($0)" }?.contains("Int") == true)
            let status = try await handle.status()
            #expect(status.state == .error)
            #expect(status.error?.message.contains("does not decode as Int") == true, "stored error: \(String(describing: status.error))")
            // The step did not run again: its recorded output is unchanged.
            #expect(try await runtime.listSteps(workflowID: "typed-1").first?.output == .string("text"))
        }
    }

    @Test(arguments: Backend.allCases) func anInputOfTheWrongShapeFailsTheRunWithADeserializationError(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register("wants-a-number") { (_: WorkflowContext, input: Int) -> Int in input * 2 }
        } test: { runtime, _ in
            let handle = try await runtime.startWorkflow(
                named: "wants-a-number", input: .string("not a number"), options: WorkflowOptions(workflowID: "shape-1"))
            let error = await #expect(throws: WorkflowError.self) { _ = try await handle.result() }
            #expect(error.map { "\($0)" }?.contains("Int") == true, "error: \(String(describing: error))")
            let status = try await handle.status()
            #expect(status.state == .error)
            #expect(status.input == .string("not a number"))
        }
    }

    @Test(arguments: Backend.allCases) func aMessageThatCannotBeEncodedIsRejectedBeforeAnythingIsSent(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register("inbox") { (ctx: WorkflowContext, _: String) -> Double? in
                try await ctx.recv(Double.self, topic: "numbers", timeout: .milliseconds(500))
            }
        } test: { runtime, inbox in
            let handle = try await runtime.startWorkflow(inbox, input: "", options: WorkflowOptions(workflowID: "inbox-1"))
            let error = await #expect(throws: WorkflowError.self) {
                try await runtime.send(to: "inbox-1", topic: "numbers", message: Double.nan)
            }
            if case .serializationFailed(let type, _)? = error {
                #expect(type == "Double")
            } else {
                Issue.record("expected serializationFailed, got \(String(describing: error))")
            }
            #expect(try await handle.result() == nil, "nothing was delivered")
        }
    }

    @Test(arguments: Backend.allCases) func aStepRenamedBetweenRunsFailsReplayAsNondeterministic(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let url = setup.url

        try await withLaunchedRuntime(url: url) { runtime in
            try runtime.register("evolving") { (ctx: WorkflowContext, _: String) -> String in
                let value = try await ctx.runStep("original-name") { "text" }
                _ = try await ctx.recv(String.self, topic: "go", timeout: .seconds(60))
                return value
            }
        } test: { runtime, evolving in
            _ = try await runtime.startWorkflow(evolving, input: "", options: WorkflowOptions(workflowID: "evolving-1"))
            let deadline = ContinuousClock.now + .seconds(20)
            while try await runtime.listSteps(workflowID: "evolving-1").count < 2, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
        }

        let ran = RanFlag()
        try await withLaunchedRuntime(url: url) { runtime in
            try runtime.register("evolving") { (ctx: WorkflowContext, _: String) -> String in
                try await ctx.runStep("new-name") {
                    ran.set()
                    return "text"
                }
            }
        } test: { runtime, _ in
            let handle = runtime.retrieveWorkflow(id: "evolving-1", as: String.self)
            let error = await #expect(throws: WorkflowError.self) { _ = try await handle.result() }
            switch error {
            case .nondeterministicReplay(let workflowID, let functionID, let recorded, let requested)?:
                #expect(workflowID == "evolving-1")
                #expect(functionID == 0)
                #expect(recorded == "original-name")
                #expect(requested == "new-name")
            case .failed(_, let stored)?:
                #expect(stored.name == "UnexpectedStep")
            default:
                Issue.record("expected nondeterministicReplay, got \(String(describing: error))")
            }
            #expect(!ran.isSet, "the renamed step must not run")
            let status = try await handle.status()
            #expect(status.error?.name == "UnexpectedStep")
        }
    }

    @Test(arguments: Backend.allCases) func durableOperationsInsideAStepAreRejected(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register("misuse") { (ctx: WorkflowContext, operation: String) -> String in
                try await ctx.runStep("outer") { () async throws -> String in
                    switch operation {
                    case "sleep": try await ctx.sleep(for: .milliseconds(1))
                    case "send": try await ctx.send(to: ctx.workflowID, message: "x")
                    case "recv": _ = try await ctx.recv(String.self, timeout: .milliseconds(1))
                    case "closeStream": try await ctx.closeStream(key: "k")
                    default: _ = try await ctx.getEvent(workflowID: ctx.workflowID, key: "k", as: String.self, timeout: .milliseconds(1))
                    }
                    return "allowed"
                }
            }
        } test: { runtime, misuse in
            // (setEvent and writeStream are allowed there, as in DBOS: `EventTests`.)
            for operation in ["sleep", "send", "recv", "closeStream", "getEvent"] {
                let handle = try await runtime.startWorkflow(misuse, input: operation, options: WorkflowOptions(workflowID: "misuse-\(operation)"))
                let error = await #expect(throws: (any Error).self) { _ = try await handle.result() }
                let message = error.map { "\($0)" } ?? ""
                #expect(message.contains("cannot be called inside step 'outer'"), "\(operation): \(message)")
                let steps = try await runtime.listSteps(workflowID: "misuse-\(operation)")
                #expect(steps.map(\.name) == ["outer"], "\(operation) left only the failed step's checkpoint")
            }
        }
    }

    @Test(arguments: Backend.allCases) func aMalformedMessageWrittenStraightIntoTheDatabaseFailsOnlyTheRunThatReceivesIt(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        try await withLaunchedRuntime(url: setup.url) { runtime in
            try runtime.register("inbox") { (ctx: WorkflowContext, _: String) -> String in
                try await ctx.recv(String.self, topic: "t", timeout: .seconds(60)) ?? "nothing"
            }
        } test: { runtime, inbox in
            let stored = try await runtime.startWorkflow(inbox, input: "", options: WorkflowOptions(workflowID: "stored"))
            try await runtime.send(to: "stored", topic: "t", message: "fine")
            #expect(try await stored.result() == "fine")
            let before = try await runtime.listSteps(workflowID: "stored").map { "\($0.functionID) \($0.name) \(String(describing: $0.output))" }

            // Another client (any language, or plain SQL) writes what no DBOS serializer wrote.
            for (id, text) in [("not-json", "{not json"), ("wrong-type", "42"), ("empty", "")] {
                let handle = try await runtime.startWorkflow(inbox, input: "", options: WorkflowOptions(workflowID: id))
                try await waitForSteps(of: id, atLeast: 1, in: runtime)
                switch setup.backend {
                case .sqlite:
                    let connection = try SQLiteConnection(path: String(setup.url.dropFirst("sqlite:".count)))
                    defer { connection.close() }
                    let insert: SQL = "INSERT INTO notifications (destination_uuid, topic, message) VALUES (\(id), 't', \(text))"
                    _ = try connection.execute(insert)
                case .postgres:
                    let connection = try await PostgresConnection.connect(PostgresURL(setup.url))
                    defer { connection.close() }
                    let insert: SQL = "INSERT INTO dbos.notifications (destination_uuid, topic, message) VALUES (\(id), 't', \(text))"
                    _ = try await connection.execute(insert)
                }
                let error = await #expect(throws: (any Error).self) { _ = try await handle.result() }
                let message = error.map { "\($0)" } ?? ""
                #expect(message.contains("String") && !message.contains("\n"), "\(id): \(message)")
                #expect(try await runtime.workflowStatus(id: id)?.state == .error, "\(id)")
            }
            #expect(try await runtime.workflowStatus(id: "stored")?.output == .string("fine"))
            #expect(try await runtime.listSteps(workflowID: "stored").map { "\($0.functionID) \($0.name) \(String(describing: $0.output))" } == before)
        }
    }

    // MARK: System database URLs and files

    @Test func aFileThatIsNotASQLiteDatabaseIsReportedAsCorruptedAndLeftUnchanged() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-bad-input")
        defer { directory.remove() }
        let path = directory.file("not-a-database.sqlite")
        var generator = SystemRandomNumberGenerator()
        let garbage = Data((0..<8192).map { _ in UInt8.random(in: 0...255, using: &generator) })
        try garbage.write(to: URL(fileURLWithPath: path))

        let error = await #expect(throws: SystemDatabaseError.self) {
            _ = try await DBOSRuntime(configuration: DBOSConfiguration(systemDatabaseURL: "sqlite:\(path)"))
        }
        if case .corrupted(let location, _)? = error {
            #expect(location == path)
        } else {
            Issue.record("expected SystemDatabaseError.corrupted, got \(String(describing: error))")
        }
        #expect(error.map { "\($0)" }?.contains(path) == true, "the message should name the file")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == garbage, "the file must not be modified")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(leftovers == ["not-a-database.sqlite"], "no journal or WAL files are left next to it")
    }

    @Test func aDamagedDatabaseIsReportedAsCorruptedAndLeftUnchanged() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-bad-input")
        defer { directory.remove() }
        let path = directory.file("damaged.sqlite")
        // A real system database with some rows in it...
        try await withLaunchedRuntime(url: "sqlite:\(path)") { runtime in
            try runtime.register("filler") { (ctx: WorkflowContext, input: String) -> String in
                try await ctx.runStep("pad") { String(repeating: input, count: 2_000) }
            }
        } test: { runtime, filler in
            for index in 0..<5 {
                _ = try await runtime.runWorkflow(filler, input: "x\(index)", options: WorkflowOptions(workflowID: "filler-\(index)"))
            }
        }
        // ...whose pages after the header are overwritten: the header still says SQLite.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(bytes.count > 8_192)
        var generator = SystemRandomNumberGenerator()
        for index in 100..<bytes.count { bytes[index] = UInt8.random(in: 0...255, using: &generator) }
        try bytes.write(to: URL(fileURLWithPath: path))

        let error = await #expect(throws: SystemDatabaseError.self) {
            _ = try await DBOSRuntime(configuration: DBOSConfiguration(systemDatabaseURL: "sqlite:\(path)"))
        }
        if case .corrupted(let location, _)? = error {
            #expect(location == path)
        } else {
            Issue.record("expected SystemDatabaseError.corrupted, got \(String(describing: error))")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == bytes, "the file must not be modified")
    }

    @Test func aDatabaseWrittenByANewerSchemaIsRefusedAndLeftUnchanged() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-bad-input")
        defer { directory.remove() }
        let path = directory.file("newer.sqlite")
        try await withLaunchedRuntime(url: "sqlite:\(path)") { _ in } test: { _, _ in }
        // A later dbos-swift migrated it further.
        let connection = try SQLiteConnection(path: path)
        try connection.execute(script: "UPDATE dbos_swift_migrations SET version = 999")
        connection.close()
        let before = try Data(contentsOf: URL(fileURLWithPath: path))

        let error = await #expect(throws: SystemDatabaseError.self) {
            _ = try await DBOSRuntime(configuration: DBOSConfiguration(systemDatabaseURL: "sqlite:\(path)"))
        }
        if case .schemaTooNew(let found, let supported)? = error {
            #expect(found == 999)
            #expect(supported < 999)
        } else {
            Issue.record("expected SystemDatabaseError.schemaTooNew, got \(String(describing: error))")
        }
        #expect(error.map { "\($0)" }?.contains("upgrade") == true)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before, "a newer database must not be touched")
    }

    @Test func anUnknownURLSchemeIsAnInvalidURL() async throws {
        for url in ["mysql://localhost/app", "file:/tmp/db.sqlite", "sqlite:", "sqlite://", "not a url", "sqlite:/tmp/a\u{0}b.sqlite"] {
            let error = await #expect(throws: SystemDatabaseError.self) {
                _ = try await DBOSRuntime(configuration: DBOSConfiguration(systemDatabaseURL: url))
            }
            if case .invalidURL? = error {} else {
                Issue.record("expected SystemDatabaseError.invalidURL for '\(url)', got \(String(describing: error))")
            }
        }
    }

    @Test func aPostgresURLsPasswordNeverAppearsInTheError() async throws {
        for url in [
            "postgres://user:secret@host/db", "postgresql://user:secret@host:5432/db?sslmode=require",
            "postgres://user:p@ss:secret@host/db", "postgres://user@host/db?sslmode=require&password=secret",
            "postgresql://host/db?password=secret&application_name=app",
        ] {
            let error = await #expect(throws: (any Error).self) {
                _ = try await DBOSRuntime(configuration: DBOSConfiguration(systemDatabaseURL: url))
            }
            guard let error else { continue }
            #expect(!"\(error)".contains("secret"))
            #expect(!String(reflecting: error).contains("secret"))
            #expect(!error.localizedDescription.contains("secret"))
            #expect("\(error)".contains("host"), "the message should still say which server: \(error)")
        }
    }

    @Test func aDirectoryThatCannotBeCreatedIsReportedAsCannotOpen() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-bad-input")
        defer { directory.remove() }
        // A regular file where a directory of the path should be: no one, not even root, can create it.
        let blocker = directory.file("blocker")
        try Data("a file, not a directory".utf8).write(to: URL(fileURLWithPath: blocker))
        let path = "\(blocker)/nested/db.sqlite"

        let error = await #expect(throws: SystemDatabaseError.self) {
            _ = try await DBOSRuntime(configuration: DBOSConfiguration(systemDatabaseURL: "sqlite:\(path)"))
        }
        if case .cannotOpen(let location, _)? = error {
            #expect(location == path)
        } else {
            Issue.record("expected SystemDatabaseError.cannotOpen, got \(String(describing: error))")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: blocker)) == Data("a file, not a directory".utf8))
    }

    @Test func aPathThatIsADirectoryIsReportedAsCannotOpen() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-bad-input")
        defer { directory.remove() }
        let error = await #expect(throws: SystemDatabaseError.self) {
            _ = try await DBOSRuntime(configuration: DBOSConfiguration(systemDatabaseURL: "sqlite:\(directory.path)"))
        }
        if case .cannotOpen(let location, _)? = error {
            #expect(location == directory.path)
        } else {
            Issue.record("expected SystemDatabaseError.cannotOpen, got \(String(describing: error))")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty, "nothing is created inside it")
    }
}

/// Whether a step body ran.
private final class RanFlag: Sendable {
    private let value = Mutex(false)

    func set() { value.withLock { $0 = true } }

    var isSet: Bool { value.withLock { $0 } }
}
