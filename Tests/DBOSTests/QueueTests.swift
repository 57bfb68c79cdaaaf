@testable import DBOS
import DBOSTestSupport
import Foundation
import Synchronization
import Testing

/// Start and end instants of runs, recorded inside the workflows themselves.
final class IntervalLog: Sendable {
    struct Interval: Sendable { var id: String; var start: Date; var end: Date }
    private let intervals = Mutex<[Interval]>([])
    private let order = Mutex<[String]>([])

    func run(_ id: String, for duration: Duration) async throws {
        let start = Date()
        order.withLock { $0.append(id) }
        try await Task.sleep(for: duration)
        intervals.withLock { $0.append(Interval(id: id, start: start, end: Date())) }
    }

    var startOrder: [String] { order.withLock { $0 } }
    var all: [Interval] { intervals.withLock { $0 } }

    /// The largest number of intervals that overlap at any instant.
    var maximumOverlap: Int { Self.maximumOverlap(all.map { ($0.start, $0.end) }) }

    static func maximumOverlap(_ intervals: [(Date, Date)]) -> Int {
        // Ends sort before starts at the same instant: touching intervals do not overlap.
        var events: [(at: Date, change: Int)] = []
        for (start, end) in intervals {
            events.append((start, 1))
            events.append((end, -1))
        }
        events.sort { left, right in left.at == right.at ? left.change < right.change : left.at < right.at }
        var current = 0
        var maximum = 0
        for event in events {
            current += event.change
            maximum = max(maximum, current)
        }
        return maximum
    }
}

@Suite(.timeLimit(.minutes(2)))
struct QueueTests {
    @Test(arguments: Backend.allCases) func workerConcurrencyIsNeverExceeded(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        let log = IntervalLog()
        try runtime.register(queue: WorkflowQueue(name: "limited", workerConcurrency: 3))
        let work = try runtime.register("work") { (context: WorkflowContext, _: Int) -> Int in
            try await context.runStep("work") { try await log.run(context.workflowID, for: .milliseconds(40)) }
            return 1
        }
        try await runtime.launch()
        var handles: [WorkflowHandle<Int>] = []
        for index in 0..<20 {
            handles.append(try await runtime.startWorkflow(
                work, input: index, options: WorkflowOptions(workflowID: "w\(index)", queueName: "limited")))
        }
        var total = 0
        for handle in handles { total += try await handle.result() }
        #expect(total == 20)
        #expect(log.all.count == 20)
        #expect(log.maximumOverlap <= 3)
        #expect(log.maximumOverlap >= 2, "the queue never ran runs concurrently")
        await runtime.shutdown()
    }

    @Test(arguments: Backend.allCases) func runsStartInFIFOOrderWithinAPriorityAndLowerPrioritiesFirst(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let log = IntervalLog()
        // Enqueue everything before any worker runs, so the order is decided by the queue alone:
        // this runtime does not serve the queue.
        let enqueuer = try await setup.make(executorID: "enqueuer")
        let reference = try enqueuer.register("ordered") { (_: WorkflowContext, _: Int) -> Int in 0 }
        try await enqueuer.launch()
        let plan: [(String, Int?)] = [("a", nil), ("b", 5), ("c", nil), ("d", 1), ("e", 5), ("f", 1)]
        for (id, priority) in plan {
            _ = try await enqueuer.startWorkflow(
                reference, input: 0, options: WorkflowOptions(workflowID: id, queueName: "ordered", priority: priority))
        }
        await enqueuer.shutdown()

        let worker = try await setup.make(executorID: "worker")
        try worker.register(queue: WorkflowQueue(name: "ordered", workerConcurrency: 1, priorityEnabled: true))
        let work = try worker.register("ordered") { (context: WorkflowContext, _: Int) -> Int in
            try await log.run(context.workflowID, for: .milliseconds(1))
            return 0
        }
        try await worker.launch()
        for (id, _) in plan { _ = try await worker.retrieveWorkflow(id: id, as: Int.self).result() }
        _ = work
        #expect(log.startOrder == ["a", "c", "d", "f", "b", "e"])
        await worker.shutdown()
    }

    @Test(arguments: Backend.allCases) func aSecondEnqueueWithTheSameDeduplicationIDIsRejectedWhileTheFirstWaits(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        try runtime.register(queue: WorkflowQueue(name: "dedup"))
        let waits = try runtime.register("waits") { (context: WorkflowContext, value: Int) -> Int in
            _ = try await context.recv(String.self, topic: "go", timeout: .seconds(30))
            return value
        }
        try await runtime.launch()
        let first = try await runtime.startWorkflow(
            waits, input: 1, options: WorkflowOptions(workflowID: "d1", queueName: "dedup", deduplicationID: "order-7"))
        await #expect {
            try await runtime.startWorkflow(
                waits, input: 2, options: WorkflowOptions(workflowID: "d2", queueName: "dedup", deduplicationID: "order-7"))
        } throws: { error in
            guard case WorkflowError.queueDeduplicated(let queue, let id, let holder) = error else { return false }
            return queue == "dedup" && id == "order-7" && holder == "d1"
        }
        let existing = try await runtime.startWorkflow(
            waits, input: 3,
            options: WorkflowOptions(queueName: "dedup", deduplicationID: "order-7", deduplicationPolicy: .returnExisting))
        #expect(existing.workflowID == "d1")
        try await runtime.send(to: "d1", topic: "go", message: "now")
        #expect(try await first.result() == 1)
        // Once the holder finished, the ID is free again.
        let again = try await runtime.startWorkflow(
            waits, input: 4, options: WorkflowOptions(workflowID: "d3", queueName: "dedup", deduplicationID: "order-7"))
        try await runtime.send(to: "d3", topic: "go", message: "now")
        #expect(try await again.result() == 4)
        #expect(try await runtime.workflowStatus(id: "d2") == nil)
        await runtime.shutdown()
    }

    @Test(arguments: Backend.allCases) func aRateLimitBoundsStartsPerWindow(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        let log = IntervalLog()
        try runtime.register(queue: WorkflowQueue(name: "rated", rateLimit: .init(limit: 3, period: .milliseconds(600))))
        let quick = try runtime.register("quick") { (context: WorkflowContext, _: Int) -> Int in
            try await log.run(context.workflowID, for: .milliseconds(1))
            return 0
        }
        try await runtime.launch()
        var handles: [WorkflowHandle<Int>] = []
        for index in 0..<9 {
            handles.append(try await runtime.startWorkflow(quick, input: index, options: WorkflowOptions(queueName: "rated")))
        }
        for handle in handles { _ = try await handle.result() }
        #expect(log.all.count == 9)
        // A start is the dequeue that claims the run (its `started_at`), not when its code gets a thread.
        var starts: [Date] = []
        for handle in handles { starts.append(try #require(try await handle.status().startedAt)) }
        starts.sort()
        // In any window of the period, at most `limit` runs started.
        for (index, start) in starts.enumerated() {
            let inWindow = starts[index...].prefix { $0.timeIntervalSince(start) < 0.6 }
            #expect(inWindow.count <= 3, "\(inWindow.count) starts within one period")
        }
        await runtime.shutdown()
    }

    @Test(arguments: Backend.allCases) func aDelayedRunWaitsForItsTime(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        try runtime.register(queue: WorkflowQueue(name: "later"))
        let stamp = try runtime.register("stamp") { (context: WorkflowContext, _: Int) -> Double in
            try await context.runStep("now") { Date().timeIntervalSince1970 }
        }
        try await runtime.launch()
        let enqueuedAt = Date().timeIntervalSince1970
        let handle = try await runtime.startWorkflow(
            stamp, input: 0, options: WorkflowOptions(workflowID: "late", queueName: "later", delay: .milliseconds(500)))
        #expect(try await handle.status().state == .delayed)
        let ranAt = try await handle.result()
        #expect(ranAt - enqueuedAt >= 0.5)
        await runtime.shutdown()
    }

    @Test(arguments: Backend.allCases) func partitionsHaveTheirOwnLimits(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        // Each run counts itself as running in its partition, then waits (up to 10 s) to see the
        // other partition running too: that proves partitions run side by side without timing.
        let running = Mutex<[Int: Int]>([:])
        let peaks = Mutex<[Int: Int]>([:])
        let sawOtherPartition = Counter()
        try runtime.register(queue: WorkflowQueue(name: "tenants", workerConcurrency: 1, partitioned: true))
        let perTenant = try runtime.register("per-tenant") { (context: WorkflowContext, tenant: Int) -> Int in
            let now = running.withLock { state -> Int in
                state[tenant, default: 0] += 1
                return state[tenant]!
            }
            peaks.withLock { $0[tenant] = max($0[tenant] ?? 0, now) }
            let overlapped = await eventually(timeout: .seconds(10)) {
                running.withLock { ($0[1 - tenant] ?? 0) > 0 }
            }
            if overlapped { sawOtherPartition.increment() }
            try await Task.sleep(for: .milliseconds(20))
            running.withLock { $0[tenant, default: 1] -= 1 }
            return tenant
        }
        try await runtime.launch()
        var handles: [WorkflowHandle<Int>] = []
        for index in 0..<8 {
            let tenant = index % 2
            handles.append(try await runtime.startWorkflow(
                perTenant, input: tenant, options: WorkflowOptions(queueName: "tenants", partitionKey: "tenant-\(tenant)")))
        }
        for handle in handles { _ = try await handle.result() }
        #expect(peaks.withLock { $0 } == [0: 1, 1: 1], "a partition ran two runs at once")
        #expect(sawOtherPartition.count >= 2, "partitions never ran side by side")
        await runtime.shutdown()
    }

    @Test(arguments: Backend.allCases) func forkReRunsOnlyTheStepsFromItsStartStep(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        let runs = Mutex<[String: Int]>([:])
        let pipeline = try runtime.register("pipeline") { (context: WorkflowContext, input: String) -> String in
            var parts: [String] = []
            for name in ["extract", "transform", "load"] {
                parts.append(try await context.runStep(name) {
                    runs.withLock { $0[name, default: 0] += 1 }
                    return "\(name)(\(input))"
                })
            }
            return parts.joined(separator: " ")
        }
        try await runtime.launch()
        let original = try await runtime.runWorkflow(pipeline, input: "x", options: WorkflowOptions(workflowID: "orig"))
        let fork = try await runtime.forkWorkflow(id: "orig", fromStep: 2, newWorkflowID: "forked", as: String.self)
        #expect(try await fork.result() == original)
        #expect(runs.withLock { $0 } == ["extract": 1, "transform": 1, "load": 2])
        let status = try #require(try await runtime.workflowStatus(id: "forked"))
        #expect(status.forkedFrom == "orig")
        #expect(try await runtime.listSteps(workflowID: "forked").map(\.name) == ["extract", "transform", "load"])
        await runtime.shutdown()
    }

    @Test(arguments: Backend.allCases) func aCancelledRunResumesFromItsLastCheckpoint(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        let firstRuns = Counter()
        let resumable = try runtime.register("resumable") { (context: WorkflowContext, _: String) -> String in
            _ = try await context.runStep("first") { firstRuns.increment() }
            let message = try await context.recv(String.self, topic: "go", timeout: .seconds(30))
            return message ?? "none"
        }
        try await runtime.launch()
        let handle = try await runtime.startWorkflow(resumable, input: "", options: WorkflowOptions(workflowID: "rc"))
        #expect(await eventually { firstRuns.count == 1 })
        try await runtime.cancelWorkflow(id: "rc")
        await #expect(throws: WorkflowError.self) { try await handle.result() }
        #expect(try await runtime.workflowStatus(id: "rc")?.state == .cancelled)

        try await runtime.resumeWorkflow(id: "rc")
        try await runtime.send(to: "rc", topic: "go", message: "resumed")
        #expect(try await runtime.retrieveWorkflow(id: "rc", as: String.self).result() == "resumed")
        #expect(firstRuns.count == 1)
        await #expect(throws: WorkflowError.self) { try await runtime.resumeWorkflow(id: "rc") }
        await runtime.shutdown()
    }

    @Test(arguments: Backend.allCases) func resumingACancelledRunResumesItsCancelledDescendants(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        let grandchildStarts = Counter()
        let grandchild = try runtime.register("grandchild") { (context: WorkflowContext, _: String) -> String in
            _ = try await context.runStep("start") { grandchildStarts.increment() }
            return try await context.recv(String.self, topic: "go", timeout: .seconds(60)) ?? "timed out"
        }
        let child = try runtime.register("child") { (context: WorkflowContext, _: String) -> String in
            "child of " + (try await context.runChildWorkflow(grandchild, input: ""))
        }
        let done = try runtime.register("done") { (_: WorkflowContext, _: String) -> String in "done" }
        let parent = try runtime.register("parent") { (context: WorkflowContext, _: String) -> String in
            let finished = try await context.runChildWorkflow(done, input: "")
            return finished + ", " + (try await context.runChildWorkflow(child, input: ""))
        }
        try await runtime.launch()
        _ = try await runtime.startWorkflow(parent, input: "", options: WorkflowOptions(workflowID: "tree"))
        #expect(await eventually { grandchildStarts.count == 1 })
        try await runtime.cancelWorkflow(id: "tree")
        // "tree-0" finished before the cancel; "tree-1" (child) and "tree-1-0" (grandchild) were cancelled with "tree".
        for id in ["tree", "tree-1", "tree-1-0"] {
            #expect(await eventually { (try? await runtime.workflowStatus(id: id))?.state == .cancelled }, "\(id)")
        }

        try await runtime.resumeWorkflow(id: "tree")
        for id in ["tree", "tree-1", "tree-1-0"] {
            #expect(try await runtime.workflowStatus(id: id)?.state.isTerminal == false, "\(id) is back on a queue")
        }
        #expect(try await runtime.workflowStatus(id: "tree-0")?.state == .success)
        try await runtime.send(to: "tree-1-0", topic: "go", message: "go")
        #expect(try await runtime.retrieveWorkflow(id: "tree", as: String.self).result() == "done, child of go")
        #expect(grandchildStarts.count == 1, "the grandchild continued from its checkpoint")
        await runtime.shutdown()
    }

    @Test(arguments: Backend.allCases) func resumingARunLeavesADescendantCancelledOnItsOwnCancelled(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        let waiter = try runtime.register("waiter") { (context: WorkflowContext, _: String) -> String in
            try await context.recv(String.self, topic: "go", timeout: .seconds(60)) ?? "timed out"
        }
        let parent = try runtime.register("parent") { (context: WorkflowContext, _: String) -> String in
            let childOutcome: String
            do {
                childOutcome = try await context.runChildWorkflow(waiter, input: "")
            } catch {
                childOutcome = "child cancelled"
            }
            let message = try await context.recv(String.self, topic: "go", timeout: .seconds(60)) ?? "timed out"
            return childOutcome + ", " + message
        }
        try await runtime.launch()
        _ = try await runtime.startWorkflow(parent, input: "", options: WorkflowOptions(workflowID: "solo"))
        #expect(await eventually { (try? await runtime.workflowStatus(id: "solo-0"))?.state == .pending })
        try await runtime.cancelWorkflow(id: "solo-0")
        // The parent saw the child's cancellation and went on; now it is cancelled itself, later.
        try await Task.sleep(for: .milliseconds(20))
        try await runtime.cancelWorkflow(id: "solo")
        #expect(await eventually { (try? await runtime.workflowStatus(id: "solo"))?.state == .cancelled })

        try await runtime.resumeWorkflow(id: "solo")
        #expect(try await runtime.workflowStatus(id: "solo-0")?.state == .cancelled, "cancelled on its own: left so")
        try await runtime.send(to: "solo", topic: "go", message: "go")
        #expect(try await runtime.retrieveWorkflow(id: "solo", as: String.self).result() == "child cancelled, go")
        await runtime.shutdown()
    }

    @Test(arguments: Backend.allCases) func runsHeldByAGlobalLimitStartWhenTheSlotFreesNotAtTheNotificationFallback(
        backend: Backend
    ) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        // Two processes serving the queue; their notification fallback is longer than the test may take, so
        // only prompt wake-ups (the outcome written here, polling while the limit holds runs) finish in time.
        var runtimes: [DBOSRuntime] = []
        for executor in ["a", "b"] {
            let configuration = DBOSConfiguration(
                systemDatabaseURL: setup.url, executorID: executor, applicationVersion: "test",
                notificationFallbackInterval: .seconds(120))
            let runtime = try await DBOSRuntime(configuration: configuration)
            _ = try runtime.register("brief") { (context: WorkflowContext, index: Int) -> Int in
                // A step last: its checkpoint goes with the outcome, which waits to share a commit.
                try await context.runStep("work") { () async throws -> Int in
                    try await Task.sleep(for: .milliseconds(50))
                    return index
                }
            }
            try runtime.register(queue: WorkflowQueue(name: "one-at-a-time", globalConcurrency: 1))
            try await runtime.launch()
            runtimes.append(runtime)
        }
        let client = try await DBOSClient(systemDatabaseURL: setup.url)
        for index in 0..<6 {
            _ = try await client.enqueue(
                workflowName: "brief", queueName: "one-at-a-time", input: index, options: WorkflowOptions(workflowID: "g\(index)"))
        }
        let deadline = ContinuousClock.now + .seconds(40)
        var finished = 0
        while finished < 6, ContinuousClock.now < deadline {
            finished = try await client.listWorkflows(WorkflowFilter(states: [.success])).count
            if finished < 6 { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(finished == 6, "runs held by the global limit waited for the 120 s fallback")
        await client.close()
        for runtime in runtimes { await runtime.shutdown(gracePeriod: .zero) }
    }

    @Test(arguments: Backend.allCases) func aTimedOutTreeIsCancelledTogetherAndResumesTogether(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        let child = try runtime.register("slow-child") { (context: WorkflowContext, _: String) -> String in
            try await context.sleep(for: .seconds(30))
            return "slept"
        }
        let parent = try runtime.register("timed-parent") { (context: WorkflowContext, _: String) -> String in
            try await context.runChildWorkflow(child, input: "")
        }
        try await runtime.launch()
        // The child inherits the parent's deadline, so both have a timer for the same instant; whichever fires
        // first, the tree is cancelled in one statement. Several trees, as the order of the timers varies.
        let ids = (0..<6).map { "timed-\($0)" }
        for id in ids {
            _ = try await runtime.startWorkflow(parent, input: "", options: WorkflowOptions(workflowID: id, timeout: .milliseconds(300)))
        }
        for id in ids {
            #expect(await eventually { (try? await runtime.workflowStatus(id: id))?.state.isTerminal == true })
            #expect(await eventually { (try? await runtime.workflowStatus(id: id + "-0"))?.state.isTerminal == true })
            let parentStatus = try #require(try await runtime.workflowStatus(id: id))
            let childStatus = try #require(try await runtime.workflowStatus(id: id + "-0"))
            #expect(parentStatus.state == .cancelled, "\(id): \(parentStatus.state) \(parentStatus.error?.message ?? "")")
            #expect(childStatus.state == .cancelled)
            #expect(parentStatus.completedAt == childStatus.completedAt, "\(id): cancelled in one statement")
        }
        try await runtime.resumeWorkflow(id: ids[0])
        #expect(try await runtime.workflowStatus(id: ids[0] + "-0")?.state.isTerminal == false, "the child goes back with it")
        try await runtime.cancelWorkflow(id: ids[0])
        await runtime.shutdown()
    }

    @Test(arguments: Backend.allCases) func aFailedRunResumesAndRetriesItsFailedStep(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        let attempts = Counter()
        struct Flaky: Error {}
        let flaky = try runtime.register("flaky") { (context: WorkflowContext, _: String) -> Int in
            try await context.runStep("flaky") {
                if attempts.increment() == 1 { throw Flaky() }
                return 42
            }
        }
        try await runtime.launch()
        await #expect(throws: Flaky.self) {
            try await runtime.runWorkflow(flaky, input: "", options: WorkflowOptions(workflowID: "fl"))
        }
        let resumed = try await runtime.resumeWorkflow(id: "fl", as: Int.self)
        #expect(try await resumed.result() == 42)
        #expect(attempts.count == 2)
        await runtime.shutdown()
    }

    @Test(arguments: Backend.allCases) func streamsAreReadInOrderUntilClosed(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        let producer = try runtime.register("producer") { (context: WorkflowContext, count: Int) -> Int in
            for index in 0..<count {
                try await context.writeStream(key: "numbers", value: index)
                try await context.sleep(for: .milliseconds(5))
            }
            try await context.closeStream(key: "numbers")
            await #expect(throws: SystemDatabaseError.self) { try await context.writeStream(key: "numbers", value: -1) }
            return count
        }
        try await runtime.launch()
        _ = try await runtime.startWorkflow(producer, input: 5, options: WorkflowOptions(workflowID: "stream"))
        var values: [Int] = []
        for try await value in runtime.readStream(workflowID: "stream", key: "numbers", as: Int.self) {
            values.append(value)
        }
        #expect(values == [0, 1, 2, 3, 4])
        var fromThree: [Int] = []
        for try await value in runtime.readStream(workflowID: "stream", key: "numbers", as: Int.self, from: 3) {
            fromThree.append(value)
        }
        #expect(fromThree == [3, 4])
        await runtime.shutdown()
    }

    @Test(arguments: Backend.allCases) func aStreamSnapshotReturnsTheValuesSoFarWithoutWaiting(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register("writer") { (context: WorkflowContext, _: String) -> String in
                try await context.writeStream(key: "log", value: "one")
                try await context.writeStream(key: "log", value: "two")
                try await context.setEvent(key: "written", value: true)
                _ = try await context.recv(String.self, topic: "close", timeout: .seconds(60))
                try await context.closeStream(key: "log")
                return "done"
            }
        } test: { runtime, writer in
            let handle = try await runtime.startWorkflow(writer, input: "", options: WorkflowOptions(workflowID: "writer-1"))
            #expect(try await runtime.getEvent(workflowID: "writer-1", key: "written", as: Bool.self, timeout: .seconds(30)) == true)
            // The run is waiting with its stream open: the snapshot does not wait for it.
            let open = try await runtime.readStreamSnapshot(workflowID: "writer-1", key: "log", as: String.self)
            #expect(open.values == ["one", "two"])
            #expect(!open.ended)
            #expect(try await runtime.readStreamSnapshot(workflowID: "writer-1", key: "log", as: String.self, from: 1).values
                == ["two"])

            try await runtime.send(to: "writer-1", topic: "close", message: "now")
            _ = try await handle.result()
            let closed = try await runtime.readStreamSnapshot(workflowID: "writer-1", key: "log", as: String.self)
            #expect(closed.values == ["one", "two"])
            #expect(closed.ended)
            #expect(try await runtime.readStreamSnapshot(workflowID: "writer-1", key: "never-written", as: String.self) == ([], true))
        }
    }

    @Test(arguments: Backend.allCases) func aProcessScopedToItsOwnEnqueuesLeavesOtherRunsToWorkers(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        var configuration = DBOSConfiguration(
            systemDatabaseURL: setup.url, executorID: "one-off", applicationVersion: "v1",
            pollingInterval: .milliseconds(50))
        configuration.queueClaimScope = .enqueuedByThisExecutor(alsoWorkflowIDs: ["listed"])
        let oneOff = try await DBOSRuntime(configuration: configuration)
        try oneOff.register(queue: WorkflowQueue(name: "jobs"))
        let job = try oneOff.register("job") { (_: WorkflowContext, value: Int) -> Int in value }
        try await oneOff.launch()

        let client = try await DBOSClient(systemDatabaseURL: setup.url, pollingInterval: .milliseconds(50))
        let foreign = try await client.enqueue(
            workflowName: "job", queueName: "jobs", input: 1, options: WorkflowOptions(workflowID: "foreign"))
        let listed = try await client.enqueue(
            workflowName: "job", queueName: "jobs", input: 2, options: WorkflowOptions(workflowID: "listed"))
        let own = try await oneOff.startWorkflow(job, input: 3, options: WorkflowOptions(queueName: "jobs"))
        #expect(try await own.result() == 3)
        #expect(try await listed.result() == .integer(2))
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await foreign.status().state == .enqueued, "a run another process enqueued was claimed")
        await oneOff.shutdown()

        let worker = try await setup.make(executorID: "worker")
        try worker.register(queue: WorkflowQueue(name: "jobs"))
        _ = try worker.register("job") { (_: WorkflowContext, value: Int) -> Int in value }
        try await worker.launch()
        #expect(try await foreign.result() == .integer(1))
        await worker.shutdown()
        await client.close()
    }
}
