@testable import DBOS
import DBOSTestSupport
import Foundation
import Synchronization
import Testing

/// The statements a queue runs on every enqueue and every look must find their rows through an
/// index: a statement that reads the table's whole history gets slower with every run ever
/// finished. SQLite's plans are fixed by its rules (no statistics are gathered), so they are
/// checked there plan by plan; PostgreSQL's depend on its statistics and, for prepared statements,
/// on whether it settled on a generic plan, so they are checked by what it counted on a database
/// with a history.
@Suite(.timeLimit(.minutes(2)))
struct QueryPlanTests {
    /// The system tables (and the aliases the engine gives them) that grow with the history.
    static let historyTables: Set<String> = [
        "workflow_status", "ws", "operation_outputs", "notifications", "workflow_events",
        "workflow_events_history", "streams", "workflow_input", "wi", "workflow_output", "wo",
    ]

    /// The tables a plan reads from start to end: a SCAN without an index, or along an index that
    /// holds every row (a SCAN along a partial index, of runs in flight say, is bounded).
    static func fullScans(in plan: [String], partialIndexes: Set<String>) -> [String] {
        plan.compactMap { line in
            guard line.hasPrefix("SCAN ") else { return nil }
            // Older SQLite versions write "SCAN TABLE name".
            var words = line.split(separator: " ").dropFirst()
            if words.first == "TABLE" { words = words.dropFirst() }
            guard let table = words.first.map(String.init), historyTables.contains(table) else { return nil }
            if let using = words.firstIndex(of: "INDEX"), words.index(after: using) < words.endIndex,
                partialIndexes.contains(String(words[words.index(after: using)]))
            {
                return nil
            }
            return line
        }
    }

    @Test func queueStatementsOnSQLiteReadNoTableFromStartToEnd() async throws {
        let setup = try await TestRuntime(.sqlite)
        defer { setup.directory.remove() }
        let plans = Mutex<[String: [String]]>([:])
        let directory = setup.directory.path
        SQLiteConnection.queryPlanObserver.withLock { observer in
            observer = { path, statement, plan in
                guard path.hasPrefix(directory) else { return }
                plans.withLock { $0[statement] = plan }
            }
        }
        defer { SQLiteConnection.queryPlanObserver.withLock { $0 = nil } }

        let runtime = try await setup.make()
        try await Self.runQueueWorkload(on: runtime)
        await runtime.shutdown(gracePeriod: .seconds(1))

        let observed = plans.withLock { $0 }
        let connection = try SQLiteConnection(path: setup.directory.file("system.sqlite"), readOnly: true)
        let partialIndexes = Set(try connection.query(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'"
        ).compactMap { $0.string("name") })
        connection.close()
        #expect(partialIndexes.contains("idx_workflow_status_in_flight_v2"))
        // The statements this workload must have run, so that the check below looked at them.
        #expect(observed.keys.contains { $0.contains("WITH candidates AS MATERIALIZED") }, "no claim was planned")
        #expect(observed.keys.contains { $0.contains("SELECT DISTINCT queue_partition_key") }, "no partition lookup")
        #expect(observed.keys.contains { $0.contains("WITH queue_state AS") }, "no enqueue started its run")
        for (statement, plan) in observed {
            let scans = Self.fullScans(in: plan, partialIndexes: partialIndexes)
            #expect(scans.isEmpty, "reads \(scans) from start to end: \(statement)\nplan: \(plan)")
        }
    }

    /// PostgreSQL plans a prepared statement for its parameters' values at first, and after five
    /// executions may switch to one generic plan for any value; a statement whose generic plan reads
    /// the whole table (say, an EXISTS the planner expects to find a row early) slows down with the
    /// history, on every call. So the workload runs on a database holding a history of finished
    /// runs, analyzed, once with every statement on its generic plan and once on plans for its
    /// values, and no system table may be read from start to end (PostgreSQL counts sequential
    /// scans per table).
    @Test(arguments: ["force_generic_plan", "force_custom_plan"])
    func queueStatementsOnPostgreSQLReadNoTableFromStartToEnd(planCacheMode: String) async throws {
        let server = try await SharedPostgresServer.get()
        let database = "plans_\(UUID().uuidString.prefix(8).lowercased())"
        let migrating = try await DBOSRuntime(configuration: DBOSConfiguration(systemDatabaseURL: server.url(database: database)))
        try await migrating.launch()
        await migrating.shutdown(gracePeriod: .seconds(1))

        try server.execute(Self.postgresHistory(runs: 20_000), database: database)
        // Counts from here on: the history's own inserts and the analysis are not the workload's.
        try server.execute("SELECT pg_stat_reset()", database: database)
        let url = server.url(database: database) + "?options=-c%20plan_cache_mode%3D\(planCacheMode)"
        // The setting reaches the sessions the runtime opens with this URL.
        let probe = try await PostgresConnection.connect(PostgresURL(url))
        #expect(try await probe.query("SHOW plan_cache_mode").first?.string("plan_cache_mode") == planCacheMode)
        probe.close()
        let runtime = try await DBOSRuntime(configuration: DBOSConfiguration(
            systemDatabaseURL: url, executorID: "local", applicationVersion: "v1",
            pollingInterval: .milliseconds(50), cancellationCheckInterval: .milliseconds(100)))
        try await Self.runQueueWorkload(on: runtime)
        await runtime.shutdown(gracePeriod: .seconds(1))

        // A backend reports its counts when its session ends: wait for the runtime's sessions to end.
        let observer = try await PostgresConnection.connect(PostgresURL(server.url(database: database)))
        defer { observer.close() }
        let ended = try await eventually(timeout: .seconds(20)) {
            try await observer.query("""
                SELECT count(*) AS sessions FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid()
                """).first?.int("sessions") == 0
        }
        #expect(ended, "the runtime's sessions did not end, so their counts may be missing")
        let scans = try await observer.query("""
            SELECT relname, seq_scan, idx_scan FROM pg_stat_user_tables WHERE schemaname = 'dbos' ORDER BY relname
            """)
        let touched = scans.filter { ($0.int("idx_scan") ?? 0) > 0 }.compactMap { $0.string("relname") }
        // The workload must have used the tables whose scans are checked below.
        for table in ["workflow_status", "operation_outputs", "notifications", "workflow_events"] {
            #expect(touched.contains(table), "the workload never read \(table)")
        }
        for row in scans {
            guard let table = row.string("relname"), Self.historyTables.contains(table) else { continue }
            #expect(row.int("seq_scan") == 0, "\(planCacheMode): \(table) was read from start to end \(row.int("seq_scan") ?? -1) times")
        }
    }

    /// A history of `runs` finished runs on the workload's queues (and on none), each with a step,
    /// some with a consumed message and an event, some with their input and output in the tables
    /// other DBOS SDKs write them to; a backlog waiting on a queue no worker here serves, and runs
    /// another executor is running; then analyzed.
    static func postgresHistory(runs: Int) -> String {
        """
        INSERT INTO dbos.workflow_status (workflow_uuid, status, name, queue_name, executor_id, application_version,
            created_at, updated_at, inputs, serialization)
        SELECT 'backlog-' || i, 'ENQUEUED', 'one-step', 'backlog', NULL, 'v0', 1700000000000 + i, 1700000000000 + i,
            '[1]', 'portable_json'
        FROM generate_series(1, \(runs / 4)) AS i;
        INSERT INTO dbos.workflow_status (workflow_uuid, status, name, queue_name, executor_id, application_version,
            created_at, updated_at, started_at_epoch_ms, inputs, serialization, recovery_attempts)
        SELECT 'elsewhere-' || i, 'PENDING', 'one-step', 'elsewhere', 'other-executor', 'v1', 1700000000000 + i,
            1700000000000 + i, 1700000000000 + i, '[1]', 'portable_json', 1
        FROM generate_series(1, \(runs / 4)) AS i;
        INSERT INTO dbos.workflow_input (workflow_uuid, inputs)
        SELECT 'history-' || i, '[1]' FROM generate_series(1, \(runs), 10) AS i;
        INSERT INTO dbos.workflow_output (workflow_uuid, output)
        SELECT 'history-' || i, '2' FROM generate_series(1, \(runs), 10) AS i;
        INSERT INTO dbos.workflow_status (workflow_uuid, status, name, queue_name, executor_id, application_version,
            created_at, updated_at, started_at_epoch_ms, completed_at, inputs, output, serialization, recovery_attempts)
        SELECT 'history-' || i, CASE WHEN i % 50 = 0 THEN 'ERROR' ELSE 'SUCCESS' END, 'one-step',
            (ARRAY['plain', 'parts', 'global', 'rated', 'ranked', NULL])[1 + i % 6], 'old-executor', 'v1',
            1700000000000 + i, 1700000000000 + i, 1700000000000 + i, 1700000000001 + i, '[1]', '2', 'portable_json', 1
        FROM generate_series(1, \(runs)) AS i;
        INSERT INTO dbos.operation_outputs (workflow_uuid, function_id, function_name, output, started_at_epoch_ms,
            completed_at_epoch_ms, serialization)
        SELECT 'history-' || i, 0, 'double', '2', 1700000000000 + i, 1700000000000 + i, 'portable_json'
        FROM generate_series(1, \(runs)) AS i;
        INSERT INTO dbos.notifications (destination_uuid, topic, message, consumed)
        SELECT 'history-' || i, 'numbers', '7', true FROM generate_series(1, \(runs), 3) AS i;
        INSERT INTO dbos.workflow_events (workflow_uuid, key, value)
        SELECT 'history-' || i, 'ready', 'true' FROM generate_series(1, \(runs), 3) AS i;
        ANALYZE;
        """
    }

    /// Enqueues on queues of every kind (plain, partitioned, global, rate limited, with priorities),
    /// with delays and deduplication IDs, and runs workflows that sleep, take steps, send and
    /// receive messages, and set and read events; launches `runtime` and awaits every run.
    static func runQueueWorkload(on runtime: DBOSRuntime) async throws {
        let queues = [
            WorkflowQueue(name: "plain", workerConcurrency: 2, pollingInterval: .milliseconds(20)),
            WorkflowQueue(name: "parts", workerConcurrency: 1, partitioned: true, pollingInterval: .milliseconds(20)),
            WorkflowQueue(name: "global", globalConcurrency: 2, pollingInterval: .milliseconds(20)),
            WorkflowQueue(
                name: "rated", rateLimit: .init(limit: 100, period: .seconds(1)), pollingInterval: .milliseconds(20)),
            WorkflowQueue(name: "ranked", workerConcurrency: 1, priorityEnabled: true, pollingInterval: .milliseconds(20)),
        ]
        let oneStep = try runtime.register("one-step") { (context: WorkflowContext, value: Int) -> Int in
            try await context.sleep(for: .milliseconds(5))
            return try await context.runStep("double") { value * 2 }
        }
        let receiver = try runtime.register("receiver") { (context: WorkflowContext, _: Int) -> Int in
            try await context.setEvent(key: "ready", value: true)
            return try await context.recv(Int.self, topic: "numbers", timeout: .seconds(20)) ?? -1
        }
        let sender = try runtime.register("sender") { (context: WorkflowContext, destination: String) -> Bool in
            let ready = try await context.getEvent(workflowID: destination, key: "ready", as: Bool.self, timeout: .seconds(20))
            try await context.send(to: destination, topic: "numbers", message: 7)
            return ready ?? false
        }
        for queue in queues { try runtime.register(queue: queue) }
        try await runtime.launch()
        var handles: [WorkflowHandle<Int>] = []
        for queue in queues {
            for index in 0..<4 {
                var options = WorkflowOptions(queueName: queue.name)
                if queue.partitioned { options.partitionKey = "key-\(index % 2)" }
                if queue.priorityEnabled { options.priority = 4 - index }
                if index == 3 { options.delay = .milliseconds(30) }
                if index == 2, !queue.partitioned { options.deduplicationID = "dedup-\(queue.name)" }
                handles.append(try await runtime.startWorkflow(oneStep, input: index, options: options))
            }
        }
        let receiving = try await runtime.startWorkflow(receiver, input: 0)
        let sending = try await runtime.startWorkflow(sender, input: receiving.workflowID)
        #expect(try await sending.result() == true)
        #expect(try await receiving.result() == 7)
        #expect(try await runtime.getEvent(workflowID: receiving.workflowID, key: "ready", as: Bool.self) == true)
        for handle in handles { _ = try await handle.result() }
    }
}
