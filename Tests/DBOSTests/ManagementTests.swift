import DBOS
import DBOSTestSupport
import Foundation
import Testing

/// The management calls DBOS Go offers (`ListWorkflows` with its filters, `DeleteWorkflows`), on
/// both backends.
@Suite(.timeLimit(.minutes(2)))
struct ManagementTests {
    @Test(arguments: Backend.allCases) func listFiltersSelectByIDExecutorVersionForkAndCompletionAndPage(
        backend: Backend
    ) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make(executorID: "executor-a", version: "v1")
        let echo = try runtime.register("echo") { (_: WorkflowContext, text: String) -> String in text }
        try await runtime.launch()
        for index in 1...4 {
            _ = try await runtime.runWorkflow(echo, input: "\(index)", options: WorkflowOptions(workflowID: "run-\(index)"))
        }
        // Times are stored in whole milliseconds: keep the boundary clear of both sides.
        try await Task.sleep(for: .milliseconds(5))
        let afterTheFirstFour = Date()
        try await Task.sleep(for: .milliseconds(5))
        _ = try await runtime.forkWorkflow(id: "run-2", fromStep: 0, newWorkflowID: "fork-of-2").result()
        // Left ENQUEUED: no worker of version v2 runs.
        try await runtime.forkWorkflow(id: "run-1", fromStep: 0, newWorkflowID: "fork-of-1", applicationVersion: "v2")

        func ids(_ filter: WorkflowFilter) async throws -> [String] {
            try await runtime.listWorkflows(filter).map(\.workflowID)
        }
        #expect(try await ids(WorkflowFilter(workflowIDs: ["run-3", "run-1", "missing"], newestFirst: false))
            == ["run-1", "run-3"])
        #expect(try await ids(WorkflowFilter(workflowIDs: [])) == [])
        #expect(try await ids(WorkflowFilter(executorIDs: ["executor-a"])).count == 5)
        #expect(try await ids(WorkflowFilter(executorIDs: ["executor-b"])) == [])
        #expect(try await ids(WorkflowFilter(applicationVersion: "v2")) == ["fork-of-1"])
        #expect(try await ids(WorkflowFilter(forkedFrom: "run-2")) == ["fork-of-2"])
        #expect(try await ids(WorkflowFilter(completedAfter: afterTheFirstFour)) == ["fork-of-2"])
        #expect(try await ids(WorkflowFilter(completedBefore: afterTheFirstFour, newestFirst: false))
            == ["run-1", "run-2", "run-3", "run-4"])
        #expect(try await ids(WorkflowFilter(limit: 2, offset: 1, newestFirst: false)) == ["run-2", "run-3"])
        #expect(try await ids(WorkflowFilter(offset: 3, newestFirst: false)) == ["run-4", "fork-of-2", "fork-of-1"])
        await runtime.shutdown()
    }

    @Test(arguments: Backend.allCases) func listFiltersSelectQueuedDeduplicatedForkedAndChildRuns(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        let echo = try runtime.register("echo") { (_: WorkflowContext, text: String) -> String in text }
        let parent = try runtime.register("parent") { (context: WorkflowContext, text: String) -> String in
            try await context.runChildWorkflow(echo, input: text, options: WorkflowOptions(workflowID: "child"))
        }
        try await runtime.launch()
        _ = try await runtime.runWorkflow(parent, input: "x", options: WorkflowOptions(workflowID: "top"))
        _ = try await runtime.forkWorkflow(id: "top", fromStep: 1, newWorkflowID: "top-fork").result()
        // Left waiting: no process serves this queue.
        let client = try await DBOSClient(systemDatabaseURL: setup.url)
        _ = try await client.enqueue(
            workflowName: "echo", queueName: "unserved", input: JSONValue.string("y"),
            options: WorkflowOptions(workflowID: "waiting", deduplicationID: "once"))
        await client.close()

        func ids(_ filter: WorkflowFilter) async throws -> [String] {
            try await runtime.listWorkflows(filter).map(\.workflowID).sorted()
        }
        // The fork waited on the internal queue.
        #expect(try await ids(WorkflowFilter(queuesOnly: true)) == ["top-fork", "waiting"])
        #expect(try await ids(WorkflowFilter(queuesOnly: false)) == ["child", "top"])
        #expect(try await ids(WorkflowFilter(deduplicationID: "once")) == ["waiting"])
        #expect(try await ids(WorkflowFilter(deduplicationID: "twice")) == [])
        #expect(try await ids(WorkflowFilter(wasForkedFrom: true)) == ["top"])
        #expect(try await ids(WorkflowFilter(wasForkedFrom: false)) == ["child", "top-fork", "waiting"])
        #expect(try await ids(WorkflowFilter(hasParent: true)) == ["child"])
        #expect(try await ids(WorkflowFilter(hasParent: false)) == ["top", "top-fork", "waiting"])
        await runtime.shutdown()
    }

    @Test(arguments: Backend.allCases) func deletingARunRemovesEverythingRecordedForItAndFreesItsID(
        backend: Backend
    ) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            let leaf = try runtime.register("leaf") { (_: WorkflowContext, text: String) -> String in text.uppercased() }
            return try runtime.register("family") { (context: WorkflowContext, text: String) -> String in
                let noted = try await context.runStep("note") { text }
                try await context.setEvent(key: "seen", value: noted)
                try await context.writeStream(key: "log", value: noted)
                try await context.closeStream(key: "log")
                return try await noted + context.runChildWorkflow(leaf, input: noted)
            }
        } test: { runtime, family in
            #expect(try await runtime.runWorkflow(family, input: "a", options: WorkflowOptions(workflowID: "f")) == "aA")
            let childID = try #require(try await runtime.listWorkflows(WorkflowFilter(parentWorkflowID: "f")).first?.workflowID)
            try await runtime.send(to: "f", topic: "unread", message: "left over")

            #expect(try await runtime.deleteWorkflows(ids: ["f", "no-such-run"], includeChildren: true).sorted()
                == [childID, "f"].sorted())
            #expect(try await runtime.workflowStatus(id: "f") == nil)
            #expect(try await runtime.workflowStatus(id: childID) == nil)
            await #expect(throws: WorkflowError.nonexistentWorkflow("f")) {
                _ = try await runtime.retrieveWorkflow(id: "f", as: String.self).result()
            }

            // The ID is free again, and nothing of the deleted run shows through.
            #expect(try await runtime.runWorkflow(family, input: "b", options: WorkflowOptions(workflowID: "f")) == "bB")
            #expect(try await runtime.getEvent(workflowID: "f", key: "seen", as: String.self, timeout: .zero) == "b")
            var logged: [String] = []
            for try await value in runtime.readStream(workflowID: "f", key: "log", as: String.self) { logged.append(value) }
            #expect(logged == ["b"])
            #expect(try await runtime.listSteps(workflowID: "f").count == 5)

            // Without includeChildren the child stays.
            #expect(try await runtime.deleteWorkflows(ids: ["f"]) == ["f"])
            #expect(try await runtime.workflowStatus(id: childID)?.state == .success)
        }
    }

    @Test(arguments: Backend.allCases) func aStatusShowsTheQueueOptionsARunWasEnqueuedWith(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        // No worker serves the queue: the runs stay as enqueued.
        let client = try await DBOSClient(systemDatabaseURL: setup.url)
        let beforeEnqueue = Date()
        _ = try await client.enqueue(
            workflowName: "report", queueName: "reports", input: JSONValue.null,
            options: WorkflowOptions(workflowID: "delayed", priority: 3, deduplicationID: "daily", delay: .seconds(3600)))
        _ = try await client.enqueue(
            workflowName: "report", queueName: "reports", input: JSONValue.null,
            options: WorkflowOptions(workflowID: "partitioned", partitionKey: "tenant-7"))

        let delayed = try #require(try await client.workflowStatus(id: "delayed"))
        #expect(delayed.state == .delayed)
        #expect(delayed.priority == 3)
        #expect(delayed.deduplicationID == "daily")
        #expect(delayed.partitionKey == nil)
        let delayUntil = try #require(delayed.delayUntil)
        #expect(delayUntil >= beforeEnqueue.addingTimeInterval(3599))
        #expect(delayed.serialization == "portable_json")
        let partitioned = try #require(try await client.workflowStatus(id: "partitioned"))
        #expect(partitioned.priority == 0)
        #expect(partitioned.partitionKey == "tenant-7")
        #expect(partitioned.delayUntil == nil)
        await client.close()
    }

    @Test(arguments: Backend.allCases) func aDelayedRunCanBeGivenAnotherDelayWhileItWaits(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let worker = try await setup.make(executorID: "worker")
        let stamp = try worker.register("stamp") { (_: WorkflowContext, value: Int) -> Int in value }
        try worker.register(queue: WorkflowQueue(name: "later"))
        try await worker.launch()
        let client = try await DBOSClient(systemDatabaseURL: setup.url, pollingInterval: .milliseconds(50))

        // An hour's delay moved to now: the run starts.
        _ = try await worker.startWorkflow(
            stamp, input: 1, options: WorkflowOptions(workflowID: "hourly", queueName: "later", delay: .seconds(3600)))
        #expect(try await client.workflowStatus(id: "hourly")?.state == .delayed)
        try await client.setWorkflowDelay(id: "hourly", until: Date())
        #expect(try await worker.retrieveWorkflow(id: "hourly", as: Int.self).result() == 1)

        // A short delay moved an hour on: the run is still waiting after its first start time.
        _ = try await worker.startWorkflow(
            stamp, input: 2, options: WorkflowOptions(workflowID: "postponed", queueName: "later", delay: .seconds(2)))
        let before = Date()
        try await worker.setWorkflowDelay(id: "postponed", delay: .seconds(3600))
        let postponed = try #require(try await client.workflowStatus(id: "postponed"))
        #expect(postponed.delayUntil.map { $0 >= before.addingTimeInterval(3599) } == true)
        try await Task.sleep(for: .seconds(3))
        #expect(try await client.workflowStatus(id: "postponed")?.state == .delayed)

        // Only a run still waiting for its delay.
        await #expect { try await client.setWorkflowDelay(id: "hourly", delay: .zero) } throws: { error in
            "\(error)".contains("run 'hourly' is SUCCESS, not DELAYED")
        }
        await #expect { try await client.setWorkflowDelay(id: "nobody", delay: .zero) } throws: { error in
            if case WorkflowError.nonexistentWorkflow("nobody") = error { true } else { false }
        }
        await #expect { try await client.setWorkflowDelay(id: "postponed", delay: .seconds(-1)) } throws: { error in
            "\(error)".contains("a delay cannot be negative")
        }
        await client.close()
        await worker.shutdown(gracePeriod: .zero)
    }

    @Test(arguments: Backend.allCases) func aForkWaitsOnTheQueueAndPartitionItIsGiven(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register(queue: WorkflowQueue(name: "tenants", workerConcurrency: 1, partitioned: true))
            return try runtime.register("double") { (ctx: WorkflowContext, value: Int) -> Int in
                try await ctx.runStep("double") { value * 2 }
            }
        } test: { runtime, double in
            #expect(try await runtime.runWorkflow(double, input: 21, options: WorkflowOptions(workflowID: "original")) == 42)
            let fork = try await runtime.forkWorkflow(
                id: "original", fromStep: 0, newWorkflowID: "forked", queueName: "tenants", partitionKey: "tenant-1",
                as: Int.self)
            #expect(try await fork.result() == 42)
            let status = try await fork.status()
            #expect(status.queueName == "tenants")
            #expect(status.partitionKey == "tenant-1")
            #expect(status.forkedFrom == "original")
            await #expect(throws: WorkflowError.self) {
                try await runtime.forkWorkflow(id: "original", fromStep: 0, partitionKey: "tenant-1")
            }
        }
    }
}
