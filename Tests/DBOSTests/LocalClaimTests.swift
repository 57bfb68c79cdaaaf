@testable import DBOS
import DBOSTestSupport
import Foundation
import Synchronization
import Testing

/// An enqueue by a process that serves the queue starts the run at once when a slot is free and
/// no older run waits (`WorkflowInsert.claimsWhenQueueIdle`): one statement instead of an insert
/// and a worker's claim. These tests check the rule in the database and what a program sees.
@Suite(.timeLimit(.minutes(2)))
struct LocalClaimTests {
    @Test(arguments: Backend.allCases)
    func anEnqueueOnAnIdleQueueIsClaimedByItsExecutorInTheSameStatement(backend: Backend) async throws {
        try await withSystemDatabase(backend) { database, now in
            // Runs waiting on another queue do not count.
            _ = try await database.insertWorkflow(queued("elsewhere", on: "other", now: now))
            var insert = claimingWhenIdle("run", now: now)
            insert.timeoutMilliseconds = 5_000
            insert.deadline = now + 5_000
            guard case .claimed = try await database.insertWorkflow(insert) else {
                Issue.record("the run was not claimed")
                return
            }
            let row = try #require(try await database.workflow(id: "run"))
            #expect(row.state == .pending)
            #expect(row.executorID == "local")
            #expect(row.recoveryAttempts == 1)
            #expect(row.startedAt == now)
            #expect(row.deadline == now + 5_000)
            #expect(row.queueName == "local")
            // A worker finds nothing left to claim.
            let claimed = try await database.dequeue(request(queue: "local", now: now))
            #expect(claimed.isEmpty)
        }
    }

    @Test(arguments: Backend.allCases)
    func aRunWaitingOnTheQueueKeepsItsTurnAndTheNewRunIsEnqueued(backend: Backend) async throws {
        try await withSystemDatabase(backend) { database, now in
            _ = try await database.insertWorkflow(queued("older", on: "local", now: now))
            var insert = claimingWhenIdle("newer", now: now + 1)
            insert.deadline = now + 5_000
            guard case .inserted = try await database.insertWorkflow(insert) else {
                Issue.record("the run was claimed ahead of an older one")
                return
            }
            let row = try #require(try await database.workflow(id: "newer"))
            #expect(row.state == .enqueued)
            #expect(row.recoveryAttempts == 0)
            #expect(row.startedAt == nil)
            #expect(row.deadline == nil, "a deadline starts when a worker claims the run")
            // The worker takes them in order.
            let claimed = try await database.dequeue(request(queue: "local", now: now + 2))
            #expect(claimed.map(\.workflowID) == ["older", "newer"])
        }
    }

    @Test(arguments: Backend.allCases)
    func aDelayedRunCountsAsWaitingOnlyOnceItIsDue(backend: Backend) async throws {
        try await withSystemDatabase(backend) { database, now in
            var later = queued("later", on: "local", now: now)
            later.state = .delayed
            later.delayUntil = now + 60_000
            _ = try await database.insertWorkflow(later)
            let first = claimingWhenIdle("first", now: now + 1)
            guard case .claimed = try await database.insertWorkflow(first) else {
                Issue.record("a run delayed for a minute held up a new run")
                return
            }
            var due = queued("due", on: "local", now: now)
            due.state = .delayed
            due.delayUntil = now - 1
            _ = try await database.insertWorkflow(due)
            let second = claimingWhenIdle("second", now: now + 2)
            guard case .inserted = try await database.insertWorkflow(second) else {
                Issue.record("a new run went ahead of a delayed run that is due")
                return
            }
            #expect(try await database.workflow(id: "second")?.state == .enqueued)
        }
    }

    @Test(arguments: Backend.allCases)
    func onlyWaitingRunsThisExecutorCouldClaimKeepTheirTurn(backend: Backend) async throws {
        try await withSystemDatabase(backend) { database, now in
            // Runs of another application version wait for their own workers: they hold nothing up.
            var otherVersion = queued("other-version", on: "local", now: now)
            otherVersion.applicationVersion = "v0"
            _ = try await database.insertWorkflow(otherVersion)
            var otherVersionDue = queued("other-version-due", on: "local", now: now)
            otherVersionDue.applicationVersion = "v0"
            otherVersionDue.state = .delayed
            otherVersionDue.delayUntil = now - 1
            _ = try await database.insertWorkflow(otherVersionDue)
            let first = claimingWhenIdle("first", now: now + 1)
            guard case .claimed = try await database.insertWorkflow(first) else {
                Issue.record("runs of another application version held up a new run")
                return
            }
            // A run enqueued without a version (by a client) is this executor's to claim: it keeps its turn.
            var unversioned = queued("unversioned", on: "local", now: now + 2)
            unversioned.applicationVersion = nil
            _ = try await database.insertWorkflow(unversioned)
            let second = claimingWhenIdle("second", now: now + 3)
            guard case .inserted = try await database.insertWorkflow(second) else {
                Issue.record("a new run went ahead of a waiting run without a version")
                return
            }
            #expect(try await database.workflow(id: "second")?.state == .enqueued)
        }
    }

    @Test(arguments: Backend.allCases)
    func aRepeatedInsertKnowsItsOwnClaimAndAnotherInsertGetsTheExistingRow(backend: Backend) async throws {
        try await withSystemDatabase(backend) { database, now in
            let insert = claimingWhenIdle("run", now: now)
            _ = try await database.insertWorkflow(insert)
            // The same insert again, as after a lost acknowledgement: still this executor's claim.
            guard case .claimed = try await database.insertWorkflow(insert) else {
                Issue.record("a retried insert did not recognise its own claim")
                return
            }
            let other = claimingWhenIdle("run", now: now)
            guard case .existing(let record) = try await database.insertWorkflow(other) else {
                Issue.record("a second insert of a taken ID did not get the existing row")
                return
            }
            #expect(record.state == .pending)
        }
    }

    @Test(arguments: Backend.allCases)
    func enqueuedRunsStartAtOnceWithinTheWorkerLimitAndTheRestWaitTheirTurn(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        try runtime.register(queue: WorkflowQueue(name: "local", workerConcurrency: 2))
        let held = try runtime.register("held") { (context: WorkflowContext, _: Int) -> String in
            try await context.recv(String.self, topic: "go", timeout: .seconds(30)) ?? "timed out"
        }
        try await runtime.launch()
        var handles: [WorkflowHandle<String>] = []
        for index in 0..<4 {
            handles.append(try await runtime.startWorkflow(
                held, input: index, options: WorkflowOptions(workflowID: "held-\(index)", queueName: "local")))
        }
        // The first two were started by their enqueue; the other two wait for a free slot.
        for index in 0..<2 {
            let status = try #require(try await runtime.workflowStatus(id: "held-\(index)"))
            #expect(status.state == .pending)
            #expect(status.startedAt != nil)
        }
        for index in 2..<4 {
            #expect(try await runtime.workflowStatus(id: "held-\(index)")?.state == .enqueued)
        }
        for index in 0..<4 { try await runtime.send(to: "held-\(index)", topic: "go", message: "go") }
        for handle in handles { #expect(try await handle.result() == "go") }
        // Every slot is free again: two new enqueues start at once.
        for index in 4..<6 {
            handles.append(try await runtime.startWorkflow(
                held, input: index, options: WorkflowOptions(workflowID: "held-\(index)", queueName: "local")))
            #expect(try await runtime.workflowStatus(id: "held-\(index)")?.state == .pending)
        }
        for index in 4..<6 { try await runtime.send(to: "held-\(index)", topic: "go", message: "go") }
        for handle in handles[4...] { #expect(try await handle.result() == "go") }
        await runtime.shutdown()
    }

    @Test(arguments: Backend.allCases)
    func enqueuesAndTheQueueRunnerTogetherNeverExceedTheWorkerLimit(backend: Backend) async throws {
        // Enqueues that start their runs race with the runner's claims as runs finish all the time.
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        let log = IntervalLog()
        try runtime.register(queue: WorkflowQueue(name: "local", workerConcurrency: 2))
        let work = try runtime.register("work") { (context: WorkflowContext, index: Int) -> Int in
            try await context.runStep("work") { try await log.run(context.workflowID, for: .milliseconds(3)) }
            return index
        }
        try await runtime.launch()
        var handles: [WorkflowHandle<Int>] = []
        for index in 0..<120 {
            handles.append(try await runtime.startWorkflow(
                work, input: index, options: WorkflowOptions(workflowID: "run-\(index)", queueName: "local")))
            if index % 3 == 0 { try await Task.sleep(for: .milliseconds(2)) }
        }
        for (index, handle) in handles.enumerated() { #expect(try await handle.result() == index) }
        #expect(log.all.count == 120)
        #expect(log.maximumOverlap <= 2, "worker concurrency exceeded")
        await runtime.shutdown()
    }

    @Test(arguments: Backend.allCases)
    func aRecoveryDuringEnqueuesPutsBackNoRunThatIsStarting(backend: Backend) async throws {
        // Recovery puts this executor's PENDING queued runs that are not running here back on their
        // queue. A run its enqueue just claimed is PENDING before it runs: put back, a worker of
        // another process would run it a second time.
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let executions = Mutex<[String: Int]>([:])
        func make(_ executorID: String) async throws -> DBOSRuntime {
            let runtime = try await setup.make(executorID: executorID)
            try runtime.register(queue: WorkflowQueue(name: "local", workerConcurrency: 4))
            _ = try runtime.register("counted") { (context: WorkflowContext, index: Int) -> Int in
                executions.withLock { $0[context.workflowID, default: 0] += 1 }
                return try await context.runStep("echo") { index }
            }
            try await runtime.launch()
            return runtime
        }
        let enqueuer = try await make("enqueuer")
        let other = try await make("other")
        let recoveries = Task {
            var count = 0
            while !Task.isCancelled {
                _ = try? await enqueuer.recoverPendingWorkflows()
                count += 1
                try? await Task.sleep(for: .milliseconds(1))
            }
            return count
        }
        var ids: [String] = []
        for index in 0..<150 {
            let handle = try await enqueuer.startWorkflow(
                named: "counted", input: .integer(Int64(index)),
                options: WorkflowOptions(workflowID: "counted-\(index)", queueName: "local"))
            ids.append(handle.workflowID)
        }
        for id in ids { _ = try await enqueuer.retrieveWorkflow(id: id).result() }
        recoveries.cancel()
        #expect(await recoveries.value > 10, "recovery did not run alongside the enqueues")
        let counts = executions.withLock { $0 }
        #expect(ids.allSatisfy { counts[$0] == 1 }, "runs executed more than once: \(counts.filter { $0.value > 1 })")
        await other.shutdown()
        await enqueuer.shutdown()
    }

    @Test(arguments: Backend.allCases)
    func aRunStartedByItsEnqueueKeepsTheQueuesTimeout(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        try runtime.register(queue: WorkflowQueue(name: "local", workerConcurrency: 1))
        let held = try runtime.register("held") { (context: WorkflowContext, _: Int) -> String in
            try await context.recv(String.self, topic: "go", timeout: .seconds(30)) ?? "timed out"
        }
        try await runtime.launch()
        let handle = try await runtime.startWorkflow(
            held, input: 0, options: WorkflowOptions(workflowID: "slow", timeout: .milliseconds(300), queueName: "local"))
        let status = try #require(try await runtime.workflowStatus(id: "slow"))
        #expect(status.state == .pending)
        #expect(status.deadline != nil)
        await #expect(throws: WorkflowError.self) { _ = try await handle.result() }
        #expect(try await runtime.workflowStatus(id: "slow")?.state == .cancelled)
        await runtime.shutdown()
    }
}

/// An ENQUEUED run of `queue`, inserted by executor "local".
private func queued(_ id: String, on queue: String, now: EpochMilliseconds) -> WorkflowInsert {
    WorkflowInsert(
        workflowID: id, state: .enqueued, name: "work", inputs: "[]", executorID: "local",
        applicationVersion: "v1", queueName: queue, now: now)
}

/// An enqueue on queue "local" by a worker that serves it: claimed at insert when the queue is idle.
private func claimingWhenIdle(_ id: String, now: EpochMilliseconds) -> WorkflowInsert {
    var insert = queued(id, on: "local", now: now)
    insert.claimsWhenQueueIdle = true
    return insert
}

/// What a worker of executor "local" asks of `queue` with nothing running.
private func request(queue: String, now: EpochMilliseconds) -> DequeueRequest {
    DequeueRequest(
        queue: WorkflowQueue(name: queue, workerConcurrency: 10), executorID: "local", applicationVersion: "v1",
        workflowNames: ["work"], localRunning: [:], onlyEnqueuedBy: nil, now: now)
}
