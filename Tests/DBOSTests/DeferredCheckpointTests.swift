@testable import DBOS
import DBOSTestSupport
import Foundation
import Synchronization
import Testing

/// A finished step's checkpoint is written with the run's next durable operation, or with its
/// outcome in one commit, or by the watch once it waited `within`
/// (`DBOSConfiguration.StepCheckpointWrites.beforeNextOperation`). These tests hold a run between
/// operations with a gate its code awaits (not a durable operation) and look at the database.
@Suite(.timeLimit(.minutes(2)))
struct DeferredCheckpointTests {
    /// `withLaunchedRuntime` with checkpoints deferred for up to `within`.
    private func withRuntime<Workflows: Sendable>(
        _ backend: Backend, within: Duration = .seconds(3600),
        register: (DBOSRuntime) throws -> Workflows,
        test: (DBOSRuntime, Workflows) async throws -> Void
    ) async throws {
        try await withLaunchedRuntime(
            backend, pollingInterval: .milliseconds(50),
            configure: { $0.stepCheckpointWrites = .beforeNextOperation(within: within) }, register: register, test: test)
    }

    @Test(arguments: Backend.allCases) func aStepsCheckpointIsStoredBeforeTheNextStepRuns(backend: Backend) async throws {
        let seenBySecond = Mutex<[String]?>(nil)
        try await withRuntime(backend) { runtime in
            try runtime.register("two") { (context: WorkflowContext, _: Int) -> Int in
                let first = try await context.runStep("first") { 1 }
                return try await context.runStep("second") {
                    let stored = try await runtime.listSteps(workflowID: context.workflowID).map(\.name)
                    seenBySecond.withLock { $0 = stored }
                    return first + 1
                }
            }
        } test: { runtime, workflow in
            let handle = try await runtime.startWorkflow(workflow, input: 0, options: WorkflowOptions(workflowID: "two-1"))
            #expect(try await handle.result() == 2)
            #expect(seenBySecond.withLock { $0 } == ["first"], "the second step ran before the first one's checkpoint was stored")
            #expect(try await runtime.listSteps(workflowID: "two-1").map(\.name) == ["first", "second"])
        }
    }

    @Test(arguments: Backend.allCases) func aRunsLastCheckpointIsStoredWithItsOutcome(backend: Backend) async throws {
        let gate = Gate()
        let ran = Mutex(0)
        try await withRuntime(backend) { runtime in
            try runtime.register("last") { (context: WorkflowContext, _: Int) -> Int in
                let value = try await context.runStep("only") {
                    ran.withLock { $0 += 1 }
                    return 7
                }
                await gate.wait()
                return value
            }
        } test: { runtime, workflow in
            let handle = try await runtime.startWorkflow(workflow, input: 0, options: WorkflowOptions(workflowID: "last-1"))
            #expect(await eventually(timeout: .seconds(20)) { ran.withLock { $0 } == 1 })
            try await Task.sleep(for: .milliseconds(200))
            // Held between its step and its end, the run has not stored the step yet (the watch waits an hour).
            #expect(try await runtime.listSteps(workflowID: "last-1").isEmpty)
            gate.open()
            #expect(try await handle.result() == 7)
            #expect(try await handle.status().state == .success)
            let steps = try await runtime.listSteps(workflowID: "last-1")
            #expect(steps.map(\.name) == ["only"])
            #expect(steps.first?.output == 7)
            #expect(ran.withLock { $0 } == 1)
            #expect(runtime.deferredCheckpoints?.watchedCount == 0, "the watch still holds a finished run")
        }
    }

    @Test(arguments: Backend.allCases) func aCheckpointWaitingLongerThanItsDelayIsStoredWhileTheRunWaits(backend: Backend) async throws {
        let gate = Gate()
        try await withRuntime(backend, within: .milliseconds(50)) { runtime in
            try runtime.register("waits") { (context: WorkflowContext, _: Int) -> String in
                let value = try await context.runStep("before") { "stored" }
                await gate.wait()
                return value
            }
        } test: { runtime, workflow in
            let handle = try await runtime.startWorkflow(workflow, input: 0, options: WorkflowOptions(workflowID: "waits-1"))
            let stored = try await eventually(timeout: .seconds(20)) {
                try await runtime.listSteps(workflowID: "waits-1").map(\.name) == ["before"]
            }
            #expect(stored, "the watch never stored the checkpoint of a run waiting for something else")
            #expect(try await handle.status().state == .pending)
            gate.open()
            #expect(try await handle.result() == "stored")
            #expect(try await runtime.listSteps(workflowID: "waits-1").map(\.name) == ["before"])
        }
    }

    @Test(arguments: Backend.allCases) func aRunCancelledHereStoresItsWaitingCheckpoint(backend: Backend) async throws {
        try await withRuntime(backend) { runtime in
            try runtime.register("cancelled") { (context: WorkflowContext, _: Int) -> Int in
                let value = try await context.runStep("done-before") { 3 }
                try await Task.sleep(for: .seconds(60))
                return value
            }
        } test: { runtime, workflow in
            let handle = try await runtime.startWorkflow(
                workflow, input: 0, options: WorkflowOptions(workflowID: "cancelled-1"))
            #expect(await eventually(timeout: .seconds(20)) { runtime.localTask(of: "cancelled-1") != nil })
            try await Task.sleep(for: .milliseconds(200))
            try await runtime.cancelWorkflow(id: "cancelled-1")
            let error = await #expect(throws: WorkflowError.self) { _ = try await handle.result() }
            #expect(error?.isCancellation == true, "ended with \(String(describing: error))")
            // A resume must not run the finished step again.
            #expect(try await runtime.listSteps(workflowID: "cancelled-1").map(\.name) == ["done-before"])
        }
    }

    @Test(arguments: Backend.allCases) func aRunCancelledElsewhereBeforeItsOutcomeEndsCancelled(backend: Backend) async throws {
        let gate = Gate()
        let ran = Mutex(false)
        try await withRuntime(backend) { runtime in
            try runtime.register("outrun") { (context: WorkflowContext, _: Int) -> Int in
                let value = try await context.runStep("only") {
                    ran.withLock { $0 = true }
                    return 5
                }
                await gate.wait()
                return value
            }
        } test: { runtime, workflow in
            let handle = try await runtime.startWorkflow(workflow, input: 0, options: WorkflowOptions(workflowID: "outrun-1"))
            #expect(await eventually(timeout: .seconds(20)) { ran.withLock { $0 } })
            // As another process's cancel does: in the database only, the local run is not told.
            let cancelled = try await runtime.database.cancelWorkflows(
                ids: ["outrun-1"], includeDescendants: false, error: nil, at: Date().epochMilliseconds)
            #expect(cancelled == ["outrun-1"])
            gate.open()
            let error = await #expect(throws: WorkflowError.self) { _ = try await handle.result() }
            #expect(error?.isCancellation == true, "ended with \(String(describing: error))")
            #expect(try await handle.status().state == .cancelled)
            #expect(try await runtime.listSteps(workflowID: "outrun-1").map(\.name) == ["only"])
        }
    }

    enum NextOperation: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case step
        case outcome
        var testDescription: String { rawValue }
    }

    /// Another execution of the run (recovered elsewhere while this one was slow) records a
    /// different result at the step this execution already used: this one stops without acting on
    /// its result, and the run's handle reports the other execution's outcome.
    @Test(arguments: Backend.allCases, NextOperation.allCases)
    func anotherExecutionsDifferentResultSupersedesThisOne(backend: Backend, next: NextOperation) async throws {
        let gate = Gate()
        let picked = Mutex(false)
        let usedMine = Mutex(false)
        try await withRuntime(backend) { runtime in
            try runtime.register("racer") { (context: WorkflowContext, _: Int) -> String in
                let pick = try await context.runStep("pick") {
                    picked.withLock { $0 = true }
                    return "mine"
                }
                await gate.wait()
                if next == .outcome { return pick }
                return try await context.runStep("use") {
                    usedMine.withLock { $0 = true }
                    return pick
                }
            }
        } test: { runtime, workflow in
            let id = "racer-\(next)"
            let handle = try await runtime.startWorkflow(workflow, input: 0, options: WorkflowOptions(workflowID: id))
            #expect(await eventually(timeout: .seconds(20)) { picked.withLock { $0 } })
            let theirs = OperationRecord(
                workflowID: id, functionID: 0, functionName: "pick", output: "\"theirs\"", error: nil, childWorkflowID: nil,
                startedAt: Date().epochMilliseconds, completedAt: Date().epochMilliseconds)
            #expect(try await runtime.database.recordOperation(theirs).existing == nil)
            gate.open()
            #expect(await eventually(timeout: .seconds(20)) { runtime.localTask(of: id) == nil })
            #expect(!usedMine.withLock { $0 }, "the superseded execution acted on its own result")
            #expect(try await handle.status().state == .pending, "the superseded execution recorded an outcome")
            #expect(try await runtime.listSteps(workflowID: id).map(\.output) == ["theirs"])
            // The other execution finishes the run: the handle reports its outcome.
            let result = Task { try await handle.result() }
            let finished = try await runtime.database.completeWorkflow(
                id: id, state: .success, output: "\"theirs, used\"", error: nil, checkpoint: nil, at: Date().epochMilliseconds,
                mayLinger: { false })
            #expect(finished)
            #expect(try await result.value == "theirs, used")
        }
    }

    /// PostgreSQL writes the outcomes of concurrent runs in one statement: a row without a
    /// checkpoint, one with a checkpoint for a free slot and one whose slot is taken each get their
    /// own answer, and the taken slot keeps its checkpoint and its run PENDING.
    @Test func outcomesWithAndWithoutCheckpointsShareOneStatementOnPostgreSQL() async throws {
        try await withSystemDatabase(.postgres) { database, now in
            for id in ["plain", "carried", "taken"] {
                _ = try await database.insertWorkflow(WorkflowInsert(
                    workflowID: id, state: .pending, name: "work", inputs: "[]", executorID: "local",
                    applicationVersion: "v1", queueName: nil, now: now))
            }
            func checkpoint(_ id: String, _ output: String) -> OperationRecord {
                OperationRecord(
                    workflowID: id, functionID: 0, functionName: "step", output: output, error: nil, childWorkflowID: nil,
                    startedAt: now, completedAt: now)
            }
            #expect(try await database.recordOperation(checkpoint("taken", "\"first\"")).existing == nil)
            let completed = try await SQLSystemDatabase.completeWorkflows(
                [
                    .init(id: "plain", state: .success, output: "1", error: nil, checkpoint: nil, now: now),
                    .init(id: "carried", state: .success, output: "2", error: nil, checkpoint: checkpoint("carried", "\"two\""), now: now),
                    .init(id: "taken", state: .success, output: "3", error: nil, checkpoint: checkpoint("taken", "\"second\""), now: now),
                ], backend: database.backend)
            #expect(completed == [true, true, false])
            #expect(try await database.workflow(id: "plain")?.state == .success)
            #expect(try await database.workflow(id: "carried")?.state == .success)
            #expect(try await database.workflow(id: "taken")?.state == .pending)
            #expect(try await database.operations(workflowID: "plain").isEmpty)
            #expect(try await database.operations(workflowID: "carried").map(\.output) == ["\"two\""])
            #expect(try await database.operations(workflowID: "taken").map(\.output) == ["\"first\""])
        }
    }

    @Test(arguments: Backend.allCases) func stepsThatWriteBeforeReturningLeaveNothingWaiting(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        var configuration = DBOSConfiguration(systemDatabaseURL: setup.url, applicationVersion: "test")
        configuration.stepCheckpointWrites = .beforeReturning
        let runtime = try await DBOSRuntime(configuration: configuration)
        let gate = Gate()
        let workflow = try runtime.register("eager") { (context: WorkflowContext, _: Int) -> Int in
            let value = try await context.runStep("only") { 4 }
            await gate.wait()
            return value
        }
        try await runtime.launch()
        #expect(runtime.deferredCheckpoints == nil)
        let handle = try await runtime.startWorkflow(workflow, input: 0, options: WorkflowOptions(workflowID: "eager-1"))
        let stored = try await eventually(timeout: .seconds(20)) {
            try await runtime.listSteps(workflowID: "eager-1").map(\.name) == ["only"]
        }
        #expect(stored)
        gate.open()
        #expect(try await handle.result() == 4)
        await runtime.shutdown(gracePeriod: .zero)
    }
}
