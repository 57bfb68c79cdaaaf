@testable import DBOS
import DBOSTestSupport
import Foundation
import Testing

/// The cancellation watchdog asks for the runs stopped elsewhere among those created when this
/// process's running runs were created: a few ranges of creation times, split at the widest gaps,
/// so one long-running run does not make it read every run cancelled since.
@Suite(.timeLimit(.minutes(2)))
struct WatchdogRangeTests {
    @Test func rangesSplitAtTheWidestGapsAndHoldEveryTime() {
        #expect(DBOSRuntime.createdAtRanges([], maximumCount: 8).isEmpty)
        #expect(DBOSRuntime.createdAtRanges([5], maximumCount: 8) == [5...5])
        // A run from a week ago and a burst from the last second: two narrow ranges, not one week.
        let week: EpochMilliseconds = 7 * 24 * 3_600_000
        let now: EpochMilliseconds = 2_000_000_000_000
        let burst = (0..<1_000).map { now - EpochMilliseconds($0) }
        #expect(DBOSRuntime.createdAtRanges(burst + [now - week], maximumCount: 2) == [(now - week)...(now - week), (now - 999)...now])
        // Equal times never split; one range asked for is the whole span.
        #expect(DBOSRuntime.createdAtRanges([3, 3, 3], maximumCount: 8) == [3...3])
        #expect(DBOSRuntime.createdAtRanges([1, 50, 100], maximumCount: 1) == [1...100])
        // Widest gaps first: 1→1,000 (999) and 1,010→5,000 (3,990), not the small ones.
        #expect(DBOSRuntime.createdAtRanges([1, 1_000, 1_005, 1_010, 5_000], maximumCount: 3) == [1...1, 1_000...1_010, 5_000...5_000])

        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let times = (0..<Int.random(in: 1...60, using: &generator)).map { _ in
                EpochMilliseconds.random(in: 0...10_000, using: &generator)
            }
            let maximum = Int.random(in: 1...8, using: &generator)
            let ranges = DBOSRuntime.createdAtRanges(times, maximumCount: maximum)
            #expect(ranges.count <= maximum)
            #expect(ranges.count >= min(maximum, Set(times).count))
            #expect(times.allSatisfy { time in ranges.contains { $0.contains(time) } }, "\(times) \(ranges)")
            // Ordered and apart, each starting and ending at one of the times.
            #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound < $1.lowerBound })
            #expect(ranges.allSatisfy { times.contains($0.lowerBound) && times.contains($0.upperBound) })
        }
    }

    @Test(arguments: Backend.allCases)
    func theDatabaseReturnsOnlyStoppedRunsCreatedInsideTheRanges(backend: Backend) async throws {
        try await withSystemDatabase(backend) { database, now in
            func insert(_ id: String, createdAt: EpochMilliseconds) async throws {
                _ = try await database.insertWorkflow(WorkflowInsert(
                    workflowID: id, state: .pending, name: "work", inputs: "[]", executorID: "local",
                    applicationVersion: "v1", queueName: nil, now: createdAt))
            }
            try await insert("old-running", createdAt: now - 100_000)
            try await insert("old-cancelled", createdAt: now - 100_000)
            try await insert("between-cancelled", createdAt: now - 50_000)
            try await insert("new-cancelled", createdAt: now - 10)
            try await insert("new-running", createdAt: now)
            _ = try await database.cancelWorkflows(
                ids: ["old-cancelled", "between-cancelled", "new-cancelled"], includeDescendants: false, error: nil,
                at: now)
            let stopped = try await database.stoppedWorkflowIDs(createdIn: [(now - 100_000)...(now - 100_000), (now - 10)...now])
            #expect(Set(stopped) == ["old-cancelled", "new-cancelled"])
            #expect(try await database.stoppedWorkflowIDs(createdIn: []).isEmpty)
            #expect(Set(try await database.stoppedWorkflowIDs(createdIn: [(now - 100_000)...now])).count == 3)
        }
    }

    @Test(arguments: Backend.allCases)
    func anOldRunCancelledElsewhereStopsWhileANewOneRunsOn(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        // A run of this executor left PENDING a day ago (recovered at launch) and one started now.
        let seed = try #require(try SystemDatabaseFactory.open(url: setup.url) as? SQLSystemDatabase)
        try await seed.migrate()
        let runtime = try await setup.make(executorID: "local", version: "v1")
        let waitForever = try runtime.register("wait-forever") { (context: WorkflowContext, _: Int) -> Int in
            try await context.sleep(for: .seconds(3_600))
            return 0
        }
        _ = try await seed.insertWorkflow(WorkflowInsert(
            workflowID: "from-yesterday", state: .pending, name: "wait-forever", inputs: "{\"positionalArgs\":[0],\"namedArgs\":{}}",
            executorID: "local", applicationVersion: "v1", queueName: nil,
            now: Date().epochMilliseconds - 86_400_000))
        try await runtime.launch()
        let today = try await runtime.startWorkflow(waitForever, input: 0, options: WorkflowOptions(workflowID: "from-today"))
        let yesterday = runtime.retrieveWorkflow(id: "from-yesterday", as: Int.self)
        try await waitForSteps(of: "from-yesterday", atLeast: 1, in: runtime)
        try await waitForSteps(of: "from-today", atLeast: 1, in: runtime)
        // Cancelled by another process: only the row changes, this process learns it from its
        // watchdog, which asks about yesterday's range while today's run still runs.
        _ = try await seed.cancelWorkflows(
            ids: ["from-yesterday"], includeDescendants: false, error: nil, at: Date().epochMilliseconds)
        let stopped = await eventually(timeout: .seconds(20)) { runtime.localTask(of: "from-yesterday") == nil }
        #expect(stopped, "the run from yesterday kept running after it was cancelled elsewhere")
        if stopped { await #expect(throws: WorkflowError.self) { _ = try await yesterday.result() } }
        #expect(runtime.localTask(of: "from-today") != nil, "the run from today stopped too")
        try await runtime.cancelWorkflow(id: today.workflowID)
        await runtime.shutdown(gracePeriod: .zero)
        await seed.close()
    }
}
