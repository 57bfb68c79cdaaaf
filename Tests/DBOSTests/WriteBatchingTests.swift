@testable import DBOS
import DBOSTestSupport
import Foundation
import Synchronization
import Testing

/// Starts, step checkpoints and completions of concurrent workflows share statements on
/// PostgreSQL (`WriteBatcher`); these tests check that sharing changes nothing a workflow sees.
@Suite struct WriteBatchingTests {
    @Test func callsMadeWhileABatchRunsShareTheNextOneAndEachGetsItsOwnOutcome() async throws {
        let gate = Gate()
        let batches = Locked<[[Int]]>([])
        let batcher = WriteBatcher<Int, Int>(maximumBatchSize: 100, concurrentBatches: 1) { items in
            batches.withLock { $0.append(items) }
            if items == [0] { await gate.wait() }
            // Odd items fail on their own; the others get their item times ten.
            return items.map { $0.isMultiple(of: 2) ? .success($0 * 10) : .failure(WorkflowError.notLaunched) }
        }
        let outcomes = Locked<[Int: Result<Int, any Error>]>([:])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                let output = await outcome { try await batcher.submit(0) }
                outcomes.withLock { $0[0] = output }
            }
            #expect(await eventually { batches.withLock { $0.count } == 1 })
            for item in 1...20 {
                group.addTask {
                    let output = await outcome { try await batcher.submit(item) }
                    outcomes.withLock { $0[item] = output }
                }
            }
            // All 20 are queued behind the first batch before it may finish.
            #expect(await eventually { batcher.waitingCount == 20 })
            gate.open()
            try await group.waitForAll()
        }
        let sizes = batches.withLock { $0.map(\.count) }
        #expect(sizes.first == 1)
        #expect(sizes.dropFirst().reduce(0, +) == 20)
        #expect(sizes.count < 21, "the queued calls never shared a batch: \(sizes)")
        for item in 0...20 {
            let outcome = try #require(outcomes.withLock { $0[item] })
            if item.isMultiple(of: 2) {
                #expect(try outcome.get() == item * 10)
            } else {
                #expect(throws: WorkflowError.self) { try outcome.get() }
            }
        }
    }

    @Test func aCancelledLeaderDoesNotFailTheOtherItemsOfItsBatch() async throws {
        // A batch runs in the task of the call that leads it; another workflow's cancellation must
        // not reach the rows it carries for others.
        let gate = Gate()
        let batcher = WriteBatcher<Int, Int>(maximumBatchSize: 100, concurrentBatches: 1) { items in
            if items == [0] { await gate.wait() }
            if Task.isCancelled { return items.map { _ in .failure(CancellationError()) } }
            return items.map { .success($0) }
        }
        let first = Task { try await batcher.submit(0) }
        #expect(await eventually { gate.waiterCount == 1 })
        let leader = Task { try await batcher.submit(1) }
        #expect(await eventually { batcher.waitingCount == 1 })
        let others = (2...5).map { item in Task { try await batcher.submit(item) } }
        #expect(await eventually { batcher.waitingCount == 5 })
        leader.cancel()
        gate.open()
        #expect(try await first.value == 0)
        for (index, other) in others.enumerated() {
            #expect(try await other.value == index + 2)
        }
        _ = await leader.result
    }

    @Test(arguments: Backend.allCases)
    func aBatchOfCheckpointsReportsEachSlotAndStateOnItsOwn(backend: Backend) async throws {
        try await withSystemDatabase(backend) { database, now in
            for id in ["running", "cancelled"] { _ = try await database.insertWorkflow(newRun(id, now: now)) }
            _ = try await database.cancelWorkflows(ids: ["cancelled"], includeDescendants: false, error: nil, at: now)
            let earlier = step("running", 0, output: "\"earlier\"")
            _ = try await database.recordOperation(earlier)

            let records = [
                step("running", 0, output: "\"later\""), step("running", 1, output: "1"),
                step("cancelled", 0, output: "2"), step("missing", 0, output: "3"),
            ]
            let outcomes = try await SQLSystemDatabase.recordOperations(records, backend: database.backend)
            #expect(outcomes[0].existing == earlier, "a slot written before keeps its checkpoint")
            #expect(outcomes[0].state == .pending)
            #expect(outcomes[1].existing == nil && outcomes[1].state == .pending)
            #expect(outcomes[2].existing == nil && outcomes[2].state == .cancelled)
            #expect(outcomes[3].existing == nil && outcomes[3].state == nil, "a run that does not exist gets no row")
            #expect(try await database.operations(workflowID: "running").map(\.output) == ["\"earlier\"", "1"])
            #expect(try await database.operations(workflowID: "missing").isEmpty)
        }
    }

    @Test(arguments: Backend.allCases)
    func theCheckpointsOfManyRunsAreReadTogetherEachUnderItsOwnID(backend: Backend) async throws {
        // What a queue reads for the runs one claim took: more IDs than one statement binds.
        try await withSystemDatabase(backend) { database, now in
            let ids = (0..<1_203).map { "run-\($0)" } + ["it's %_\\ 'quoted'", "ünï\r\ncode"]
            for id in ids { _ = try await database.insertWorkflow(newRun(id, now: now)) }
            for (index, id) in ids.enumerated() {
                for slot in 0..<(index % 3) { _ = try await database.recordOperation(step(id, slot, output: "\(index)")) }
            }
            let read = try await database.operations(workflowIDs: ids + ["missing"])
            for (index, id) in ids.enumerated() {
                let checkpoints = read[id] ?? []
                #expect(checkpoints.map(\.functionID) == Array(0..<(index % 3)), "run \(id)")
                #expect(checkpoints.allSatisfy { $0.workflowID == id && $0.output == "\(index)" }, "run \(id)")
            }
            #expect(read["missing"] == nil)
            #expect(read.count == ids.indices.filter { $0 % 3 != 0 }.count)
            #expect(try await database.operations(workflowIDs: []).isEmpty)
        }
    }

    @Test func aBatchOfStartsInsertsNewIDsOnceAndLeavesTakenOnesAlone() async throws {
        try await withSystemDatabase(.postgres) { database, now in
            let existing = newRun("taken", now: now)
            _ = try await database.insertWorkflow(existing)
            let batch = [newRun("new-1", now: now), newRun("taken", now: now), newRun("new-2", now: now), newRun("new-1", now: now)]
            let inserted = try await SQLSystemDatabase.insertNewWorkflows(batch, backend: database.backend)
            #expect(inserted == [true, false, true, false], "an ID given twice in one batch is new only once")
            #expect(try await database.workflow(id: "taken")?.ownerID == existing.ownerID)
            #expect(try await database.workflow(id: "new-1")?.ownerID == batch[0].ownerID)
            // The checked path then tells the later start of "new-1" that the run exists.
            guard case .existing(let record) = try await database.insertWorkflow(batch[3]) else {
                Issue.record("a second start of the same ID inserted a run")
                return
            }
            #expect(record.ownerID == batch[0].ownerID)
        }
    }

    @Test func aBatchOfCompletionsWritesOnlyRunsThatAreStillPending() async throws {
        try await withSystemDatabase(.postgres) { database, now in
            for id in ["a", "b", "cancelled"] { _ = try await database.insertWorkflow(newRun(id, now: now)) }
            _ = try await database.cancelWorkflows(ids: ["cancelled"], includeDescendants: false, error: nil, at: now)
            let completed = try await SQLSystemDatabase.completeWorkflows([
                .init(id: "a", state: .success, output: "1", error: nil, now: now),
                .init(id: "cancelled", state: .success, output: "2", error: nil, now: now),
                .init(id: "b", state: .error, output: nil, error: "{\"message\":\"no\"}", now: now),
                .init(id: "missing", state: .success, output: "3", error: nil, now: now),
            ], backend: database.backend)
            #expect(completed == [true, false, true, false])
            #expect(try await database.workflow(id: "a").map { [$0.state.rawValue, $0.output] } == ["SUCCESS", "1"])
            #expect(try await database.workflow(id: "b").map { [$0.state.rawValue, $0.error] } == ["ERROR", "{\"message\":\"no\"}"])
            #expect(try await database.workflow(id: "cancelled")?.state == .cancelled)
        }
    }

    @Test func aRowThatFailsABatchFailsOnlyItsOwnWorkflow() async throws {
        try await withSystemDatabase(.postgres) { database, now in
            _ = try await database.insertWorkflow(newRun("run", now: now))
            // PostgreSQL text cannot hold NUL: this checkpoint fails the shared statement.
            let records = [step("run", 0, output: "0"), step("run", 1, output: "\"a\u{0}b\""), step("run", 2, output: "2")]
            let outcomes = await SQLSystemDatabase.outcomes(of: records) {
                try await SQLSystemDatabase.recordOperations($0, backend: database.backend)
            }
            #expect(throws: SystemDatabaseError.self) { try outcomes[1].get() }
            #expect(try outcomes[0].get().existing == nil)
            #expect(try outcomes[2].get().existing == nil)
            #expect(try await database.operations(workflowID: "run").map(\.functionID) == [0, 2])
        }
    }

    @Test func aRepeatedOneStatementClaimReturnsWhatItClaimedAndClaimsNoMore() async throws {
        // A retry after a lost acknowledgement runs the claim again with the same token.
        try await withSystemDatabase(.postgres) { database, now in
            for index in 0..<5 {
                var run = newRun("queued-\(index)", now: now + Int64(index))
                run.state = .enqueued
                run.queueName = "claims"
                _ = try await database.insertWorkflow(run)
            }
            let request = DequeueRequest(
                queue: WorkflowQueue(name: "claims", workerConcurrency: 2), executorID: "local",
                applicationVersion: "v1", workflowNames: ["batched"], localRunning: [:], now: now + 10)
            let first = try await database.claimInOneStatement(request, token: "claim-token")
            #expect(first.map(\.workflowID) == ["queued-0", "queued-1"])
            #expect(first.allSatisfy { $0.state == .pending && $0.recoveryAttempts == 1 && $0.inputs == "[]" })
            let again = try await database.claimInOneStatement(request, token: "claim-token")
            #expect(again.map(\.workflowID) == ["queued-0", "queued-1"])
            var stillEnqueued = 0
            for index in 0..<5 where try await database.workflow(id: "queued-\(index)")?.state == .enqueued {
                stillEnqueued += 1
            }
            #expect(stillEnqueued == 3)
        }
    }

    @Test func aTransactionChosenAsADeadlockVictimIsRunAgain() async throws {
        // Two transactions lock the same two rows in opposite orders, each waiting (on its first
        // attempt) until the other holds its first row: PostgreSQL aborts one of them.
        try await withSystemDatabase(.postgres) { database, _ in
            let backend = database.backend
            try await backend.transaction("preparing") { runner in
                try runner.execute("CREATE TABLE deadlocked (id integer PRIMARY KEY, hits integer NOT NULL)")
                try runner.execute("INSERT INTO deadlocked VALUES (1, 0), (2, 0)")
            }
            let holding = [DispatchSemaphore(value: 0), DispatchSemaphore(value: 0)]
            let attempts = Locked<[Int: Int]>([:])
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (first, second) in [(1, 2), (2, 1)] {
                    group.addTask {
                        try await backend.transaction("locking \(first) then \(second)") { runner in
                            let attempt = attempts.withLock { $0[first, default: 0] += 1; return $0[first]! }
                            try runner.execute("UPDATE deadlocked SET hits = hits + 1 WHERE id = \(first)")
                            if attempt == 1 {
                                holding[first - 1].signal()
                                _ = holding[second - 1].wait(timeout: .now() + 10)
                            }
                            try runner.execute("UPDATE deadlocked SET hits = hits + 1 WHERE id = \(second)")
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(attempts.withLock { $0.values.reduce(0, +) } == 3, "exactly one transaction ran twice")
            let hits = try await backend.autocommit("reading") { runner in
                try runner.query("SELECT hits FROM deadlocked ORDER BY id").map { $0.int("hits") }
            }
            #expect(hits == [2, 2], "both transactions committed, each once")
        }
    }

    @Test func concurrentWorkflowsFinishOnceWhileBatchConnectionsAreKilled() async throws {
        // Many workflows at once make starts, checkpoints and completions share statements; every
        // connection of the database is terminated every 100 ms meanwhile. A batch whose
        // acknowledgement was lost is retried: nothing may be lost, doubled or mixed up.
        let setup = try await TestRuntime(.postgres)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        let executions = Locked<[String: Int]>([:])
        let stepper = try runtime.register("batched") { (context: WorkflowContext, run: Int) -> Int in
            var total = 0
            for index in 0..<3 {
                total += try await context.runStep("step-\(index)") {
                    executions.withLock { $0["\(run)-\(index)", default: 0] += 1 }
                    return run * 10 + index
                }
            }
            return total
        }
        try await runtime.launch()
        let killer = try connectionKiller(of: setup.url)
        let runs = 300
        try await withThrowingTaskGroup(of: Void.self) { group in
            for run in 0..<runs {
                group.addTask {
                    let output = try await runtime.runWorkflow(
                        stepper, input: run, options: WorkflowOptions(workflowID: "batched-\(run)"))
                    #expect(output == run * 30 + 3)
                }
            }
            try await group.waitForAll()
        }
        killer.cancel()
        #expect(try await killer.value > 0, "no connection was killed: the test tested nothing")
        #expect(executions.withLock { $0.count } == runs * 3)
        #expect(executions.withLock { $0.values.allSatisfy { $0 == 1 } }, "every step body ran exactly once")
        for run in stride(from: 0, to: runs, by: 37) {
            let steps = try await runtime.listSteps(workflowID: "batched-\(run)")
            #expect(steps.map(\.name) == ["step-0", "step-1", "step-2"])
            #expect(try await runtime.retrieveWorkflow(id: "batched-\(run)", as: Int.self).status().state == .success)
        }
        await runtime.shutdown(gracePeriod: .zero)
    }
}

private func outcome<T>(_ body: () async throws -> T) async -> Result<T, any Error> {
    do {
        return .success(try await body())
    } catch {
        return .failure(error)
    }
}

/// A new PENDING run with its own owner token.
private func newRun(_ id: String, now: EpochMilliseconds) -> WorkflowInsert {
    WorkflowInsert(workflowID: id, state: .pending, name: "batched", inputs: "[]", executorID: "local", now: now)
}

private func step(_ workflowID: String, _ functionID: Int, output: String) -> OperationRecord {
    OperationRecord(
        workflowID: workflowID, functionID: functionID, functionName: "step-\(functionID)", output: output, error: nil,
        childWorkflowID: nil, startedAt: 1, completedAt: 2)
}

/// Runs `body` on a migrated system database of `backend`, closed afterwards.
func withSystemDatabase(
    _ backend: Backend, _ body: (SQLSystemDatabase, EpochMilliseconds) async throws -> Void
) async throws {
    let setup = try await TestRuntime(backend)
    defer { setup.directory.remove() }
    let database = try #require(try SystemDatabaseFactory.open(url: setup.url) as? SQLSystemDatabase)
    try await database.migrate()
    do {
        try await body(database, Date().epochMilliseconds)
    } catch {
        await database.close()
        throw error
    }
    await database.close()
}

/// A value shared by tasks.
private final class Locked<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func withLock<T>(_ body: (inout sending Value) -> sending T) -> sending T { value.withLock(body) }
}
