@testable import DBOS
import DBOSTestSupport
import Foundation
import Testing

@Suite struct SQLiteSystemDatabaseTests {
    @Test func theDatabaseFileIsCreatedPrivateInWALModeWithItsDirectory() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("nested/state/system.sqlite")
        let database = SQLSystemDatabase(backend: try SQLiteBackend(path: path))
        try await database.migrate()
        await database.close()

        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let connection = try SQLiteConnection(path: path)
        #expect(try connection.query("PRAGMA journal_mode").first?.string("journal_mode") == "wal")
    }

    @Test func migrationsAreVersionedAndRunOnce() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("system.sqlite")
        for _ in 0..<3 {
            let database = SQLSystemDatabase(backend: try SQLiteBackend(path: path))
            try await database.migrate()
            await database.close()
        }
        let connection = try SQLiteConnection(path: path)
        #expect(try connection.query("SELECT version FROM dbos_swift_migrations").map { $0.int("version") } == [SQLiteSchema.migrations.count])
        #expect(try connection.query("SELECT version FROM dbos_migrations").map { $0.int("version") } == [125])
        let tables = Set(try connection.query("SELECT name FROM sqlite_master WHERE type = 'table'").compactMap { $0.string("name") })
        #expect(tables.isSuperset(of: [
            "workflow_status", "operation_outputs", "notifications", "workflow_events", "workflow_events_history",
            "streams", "queues", "workflow_schedules", "application_versions", "dbos_migrations",
            "workflow_input", "workflow_output",
        ]))
        let columns = Set(try connection.query("PRAGMA table_info(workflow_status)").compactMap { $0.string("name") })
        #expect(columns.isSuperset(of: [
            "workflow_uuid", "status", "name", "inputs", "output", "error", "executor_id", "application_version",
            "queue_name", "created_at", "updated_at", "recovery_attempts", "workflow_timeout_ms",
            "workflow_deadline_epoch_ms", "deduplication_id", "priority", "serialization",
        ]))
    }

    @Test func aSchemaFromANewerVersionIsRefusedWithoutChanges() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("system.sqlite")
        let database = SQLSystemDatabase(backend: try SQLiteBackend(path: path))
        try await database.migrate()
        await database.close()
        let connection = try SQLiteConnection(path: path)
        try connection.execute("UPDATE dbos_swift_migrations SET version = 999")
        connection.close()

        let reopened = SQLSystemDatabase(backend: try SQLiteBackend(path: path))
        await #expect {
            try await reopened.migrate()
        } throws: { error in
            "\(error)".contains("999") && "\(error)".contains("newer")
        }
        await reopened.close()
    }

    @Test func applicationVersionChangesWithTheRegisteredWorkflows() {
        let one = ApplicationVersion.derive(workflowNames: ["a", "b"])
        #expect(one == ApplicationVersion.derive(workflowNames: ["b", "a"]))
        #expect(one != ApplicationVersion.derive(workflowNames: ["a", "b", "c"]))
        #expect(one != ApplicationVersion.derive(workflowNames: ["ab"]))
        #expect(one.count == 32)
    }

    @Test func aConfiguredApplicationVersionOverridesTheDerivedOne() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let runtime = try await DBOSRuntime(configuration: DBOSConfiguration(
            systemDatabaseURL: "sqlite:\(directory.file("db.sqlite"))", applicationVersion: "release-7"))
        let workflow = try runtime.register("noop") { (_: WorkflowContext, value: Int) -> Int in value }
        try await runtime.launch()
        _ = try await runtime.runWorkflow(workflow, input: 1, options: WorkflowOptions(workflowID: "v"))
        #expect(try await runtime.workflowStatus(id: "v")?.applicationVersion == "release-7")
        await runtime.shutdown()

        let derived = try await DBOSRuntime(configuration: DBOSConfiguration(
            systemDatabaseURL: "sqlite:\(directory.file("db.sqlite"))"))
        try derived.register("noop") { (_: WorkflowContext, value: Int) -> Int in value }
        try await derived.launch()
        #expect(derived.applicationVersion == ApplicationVersion.derive(workflowNames: ["noop"]))
        await derived.shutdown()
    }

    @Test func textWithNULsQuotesAndSQLRoundTripsThroughBindParameters() async throws {
        let connection = try SQLiteConnection(path: ":memory:")
        try connection.execute(script: "CREATE TABLE t (v TEXT)")
        let hostile = "a'b\"c; DROP TABLE t; --\0zero ünïcödé"
        try connection.execute("INSERT INTO t (v) VALUES (\(hostile))")
        #expect(try connection.query("SELECT v FROM t").first?.string("v") == hostile)
        #expect(try connection.query("SELECT count(*) AS n FROM t").first?.int("n") == 1)
    }

    @Test func dbosStyleSQLiteURLsNameTheSameFileAsOurs() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("shared.sqlite")
        let ours = try await DBOSRuntime(configuration: DBOSConfiguration(systemDatabaseURL: "sqlite:\(path)"))
        let workflow = try ours.register("noop") { (_: WorkflowContext, value: Int) -> Int in value }
        try await ours.launch()
        _ = try await ours.runWorkflow(workflow, input: 1, options: WorkflowOptions(workflowID: "same-file"))
        await ours.shutdown()
        // SQLAlchemy's form, as DBOS Python writes it: four slashes before an absolute path.
        let theirs = try await DBOSRuntime(configuration: DBOSConfiguration(systemDatabaseURL: "sqlite:///\(path)"))
        try await theirs.launch()
        #expect(try await theirs.workflowStatus(id: "same-file")?.state == .success)
        await theirs.shutdown()
        await #expect(throws: SystemDatabaseError.self) {
            _ = try await DBOSRuntime(configuration: DBOSConfiguration(systemDatabaseURL: "sqlite://host/db.sqlite"))
        }
    }

    @Test func severalProcessesOpeningANewDatabaseAtOnceAllSucceed() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let url = "sqlite:\(directory.file("fresh.sqlite"))"
        let processes = try (0..<6).map { index in
            try ChildProcess(
                executable: builtExecutable(named: "dbos-run"), arguments: ["migrate", "--db", url],
                outputPath: directory.file("migrate-\(index).out"))
        }
        for process in processes {
            #expect(await process.waitForExit() == 0, "\(process.output)")
        }
        let connection = try SQLiteConnection(path: directory.file("fresh.sqlite"))
        #expect(try connection.query("SELECT version FROM dbos_swift_migrations").count == 1)
        #expect(try connection.query("PRAGMA journal_mode").first?.string("journal_mode") == "wal")
    }
}
