import DBOS
import DBOSTestSupport
import Foundation
import Testing

/// The client works from a process with no workflow code: enqueue by name with JSON input and
/// options, wait for results, send, read events and manage runs.
@Suite(.timeLimit(.minutes(2)))
struct ClientTests {
    @Test(arguments: Backend.allCases) func aClientEnqueuesByNameSendsAndReadsEvents(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let worker = try await setup.make(executorID: "worker")
        struct Order: Codable, Sendable { var id: String; var amount: Int }
        try worker.register(queue: WorkflowQueue(name: "orders", workerConcurrency: 2, priorityEnabled: true))
        _ = try worker.register("checkout") { (context: WorkflowContext, order: Order) -> String in
            try await context.setEvent(key: "status", value: "waiting for approval")
            let approval = try await context.recv(String.self, topic: "approval", timeout: .seconds(30)) ?? "none"
            try await context.setEvent(key: "status", value: "done")
            return "\(order.id):\(order.amount):\(approval)"
        }
        try await worker.launch()

        let client = try await DBOSClient(systemDatabaseURL: setup.url, pollingInterval: .milliseconds(50))
        let handle = try await client.enqueue(
            workflowName: "checkout", queueName: "orders", input: ["id": "o-1", "amount": 42] as JSONValue,
            options: WorkflowOptions(
                workflowID: "client-1", timeout: .seconds(60), priority: 3, deduplicationID: "order-o-1"))
        #expect(handle.workflowID == "client-1")
        await #expect(throws: WorkflowError.self) {
            _ = try await client.enqueue(
                workflowName: "checkout", queueName: "orders", input: ["id": "o-1", "amount": 42] as JSONValue,
                options: WorkflowOptions(deduplicationID: "order-o-1"))
        }
        #expect(try await client.getEvent(workflowID: "client-1", key: "status", as: String.self, timeout: .seconds(20))
            == "waiting for approval")
        try await client.send(to: "client-1", topic: "approval", message: "approved")
        #expect(try await handle.result() == .string("o-1:42:approved"))
        #expect(try await client.retrieveWorkflow(id: "client-1", as: String.self).result() == "o-1:42:approved")
        #expect(try await client.getEvent(workflowID: "client-1", key: "status", as: String.self) == "done")

        let status = try #require(try await client.workflowStatus(id: "client-1"))
        #expect(status.queueName == "orders")
        #expect(status.timeout == .seconds(60))
        #expect(status.deadline != nil, "the timeout's clock starts at dequeue")
        #expect(status.applicationVersion == "v1", "the worker that dequeued it stamps its version")
        #expect(try await client.listWorkflows(WorkflowFilter(queueName: "orders")).map(\.workflowID) == ["client-1"])
        #expect(try await client.listSteps(workflowID: "client-1").map(\.name).contains("DBOS.recv"))
        await client.close()
        await worker.shutdown()
    }

    @Test(arguments: Backend.allCases) func aClientCancelsResumesAndForksRuns(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let worker = try await setup.make(executorID: "worker")
        let runs = Counter()
        _ = try worker.register("two-steps") { (context: WorkflowContext, _: JSONValue) -> Int in
            _ = try await context.runStep("first") { runs.increment() }
            _ = try await context.recv(String.self, topic: "go", timeout: .seconds(30))
            return try await context.runStep("second") { runs.increment() }
        }
        try worker.register(queue: WorkflowQueue(name: "work"))
        try await worker.launch()
        let client = try await DBOSClient(systemDatabaseURL: setup.url, pollingInterval: .milliseconds(50))
        _ = try await client.enqueue(
            workflowName: "two-steps", queueName: "work", input: JSONValue.null, options: WorkflowOptions(workflowID: "c1"))
        #expect(await eventually { runs.count == 1 })
        try await client.cancelWorkflow(id: "c1")
        #expect(await eventually { (try? await client.workflowStatus(id: "c1"))??.state == .cancelled })
        try await client.resumeWorkflow(id: "c1")
        try await client.send(to: "c1", topic: "go", message: "now")
        #expect(try await client.retrieveWorkflow(id: "c1", as: Int.self).result() == 2)
        #expect(runs.count == 2, "the first step was not run again")

        let fork = try await client.forkWorkflow(id: "c1", fromStep: 3, newWorkflowID: "c1-fork")
        #expect(try await fork.result() == .integer(3))
        #expect(runs.count == 3, "only the step after the fork point ran again")
        await client.close()
        await worker.shutdown()
    }

    /// A run cancelled and resumed before the worker noticed the cancellation (its watchdog looks once
    /// a minute here) is claimed again while its execution waits: the claim stops that execution and
    /// the run continues from its checkpoints, each step run once.
    @Test(arguments: Backend.allCases)
    func aRunResumedBeforeItsWorkerNoticedTheCancellationContinuesFromItsCheckpoints(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let worker = try await DBOSRuntime(configuration: DBOSConfiguration(
            systemDatabaseURL: setup.url, executorID: "worker", applicationVersion: "v1",
            pollingInterval: .milliseconds(50), cancellationCheckInterval: .seconds(60)))
        let (executions, first, second) = (Counter(), Counter(), Counter())
        _ = try worker.register("two-steps") { (context: WorkflowContext, _: JSONValue) -> Int in
            executions.increment()
            _ = try await context.runStep("first") { first.increment() }
            _ = try await context.recv(String.self, topic: "go", timeout: .seconds(60))
            return try await context.runStep("second") { second.increment() }
        }
        try worker.register(queue: WorkflowQueue(name: "work"))
        try await worker.launch()
        let client = try await DBOSClient(systemDatabaseURL: setup.url, pollingInterval: .milliseconds(50))
        _ = try await client.enqueue(
            workflowName: "two-steps", queueName: "work", input: JSONValue.null, options: WorkflowOptions(workflowID: "r1"))
        try #require(await eventually { (try? await client.listSteps(workflowID: "r1"))?.map(\.name) == ["first", "DBOS.sleep"] })
        try await client.cancelWorkflow(id: "r1")
        try await client.resumeWorkflow(id: "r1")
        // Claimed again while that execution still waits in its recv.
        try #require(await eventually {
            let state = (try? await client.workflowStatus(id: "r1"))??.state
            return state == .pending
        })
        try await client.send(to: "r1", topic: "go", message: "now")
        #expect(try await client.retrieveWorkflow(id: "r1", as: Int.self).result() == 1)
        #expect(executions.count == 2, "the claim replaced the execution under way")
        #expect(first.count == 1, "the first step is not run again")
        #expect(second.count == 1)
        await client.close()
        await worker.shutdown()
    }

    /// A run cancelled and resumed while the worker's execution of it is still under way (stopped
    /// by the cancellation, but in a step's body that does not check for it) is claimed again
    /// before that execution ends: it is finished from the checkpoints that execution leaves.
    @Test(arguments: Backend.allCases)
    func aRunClaimedAgainWhileItsStoppedExecutionIsStillUnderWayFinishesOnce(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let worker = try await setup.make(executorID: "worker")
        let (first, second, third) = (Counter(), Counter(), Counter())
        let (entered, release, stopped) = (Gate(), Gate(), Gate())
        _ = try worker.register("gated") { (context: WorkflowContext, _: JSONValue) -> Int in
            _ = try await context.runStep("first") { first.increment() }
            _ = try await context.runStep("second") {
                entered.open()
                await withTaskCancellationHandler { await release.wait() } onCancel: { stopped.open() }
                return second.increment()
            }
            return try await context.runStep("third") { third.increment() }
        }
        try worker.register(queue: WorkflowQueue(name: "work"))
        try await worker.launch()
        let client = try await DBOSClient(systemDatabaseURL: setup.url, pollingInterval: .milliseconds(50))
        _ = try await client.enqueue(
            workflowName: "gated", queueName: "work", input: JSONValue.null, options: WorkflowOptions(workflowID: "g1"))
        try #require(await eventually { entered.isOpen })
        try await client.cancelWorkflow(id: "g1")
        try #require(await eventually { stopped.isOpen }, "the worker's watchdog stops its execution")
        try await client.resumeWorkflow(id: "g1")
        #expect(await eventually { (try? await client.workflowStatus(id: "g1"))??.state == .pending },
            "the worker claims the run again while that execution is in the second step")
        release.open()
        try #require(await eventually(timeout: .seconds(20)) { (try? await client.workflowStatus(id: "g1"))??.state == .success })
        #expect(try await client.retrieveWorkflow(id: "g1", as: Int.self).result() == 1)
        #expect(first.count == 1)
        #expect(second.count == 1, "the step the stopped execution finished is not run again")
        #expect(third.count == 1)
        await client.close()
        await worker.shutdown()
    }
}
