@testable import DBOS
import DBOSTestSupport
import Foundation
import Synchronization
import Testing

/// The statements a queue runs on every enqueue and every look must find their rows through an
/// index: a statement that reads the table's whole history gets slower with every run ever
/// finished. SQLite's plans are fixed by its rules (no statistics are gathered), so they are
/// checked there; PostgreSQL uses the same indexes once it has statistics.
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
        for handle in handles { _ = try await handle.result() }
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
}
