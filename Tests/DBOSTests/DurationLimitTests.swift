@testable import DBOS
import DBOSTestSupport
import Foundation
import Testing

/// Sleeps, timeouts and delays of centuries mean "practically never": they are stored as 100 years, so
/// adding one to the current time (in Swift or in SQL) never overflows.
@Suite(.timeLimit(.minutes(2)))
struct DurationLimitTests {
    @Test func millisecondsAreClampedToAHundredYears() {
        #expect(Duration.seconds(Int64.max).milliseconds == Duration.longestMilliseconds)
        #expect(Duration.seconds(Int64.min).milliseconds == -Duration.longestMilliseconds)
        #expect(Duration.milliseconds(1500).milliseconds == 1500)
        #expect(Duration.milliseconds(-1500).milliseconds == -1500)
    }

    @Test func aRetryBackoffOfCenturiesIsClampedInsteadOfTrapping() {
        let policy = StepRetryPolicy(maxAttempts: 3, baseInterval: .seconds(Int64.max / 2), backoffFactor: 2, maxInterval: .seconds(Int64.max))
        #expect(policy.interval(afterAttempt: 2).milliseconds == Duration.longestMilliseconds)
    }

    @Test func aQueueThatWouldPollWithoutPauseIsRefused() {
        #expect(WorkflowQueue(name: "q", pollingInterval: .zero).configurationProblems == ["the polling interval must be positive"])
        #expect(WorkflowQueue(name: "q").configurationProblems.isEmpty)
    }

    @Test(arguments: Backend.allCases) func aSleepAndATimeoutOfCenturiesWaitInsteadOfCrashing(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        let sleeper = try runtime.register("forever") { (context: WorkflowContext, _: String) -> String in
            try await context.sleep(for: .seconds(Int64.max))
            return "woke"
        }
        try runtime.register(queue: WorkflowQueue(name: "slow"))
        try await runtime.launch()
        let handle = try await runtime.startWorkflow(
            sleeper, input: "", options: WorkflowOptions(workflowID: "centuries", timeout: .seconds(Int64.max), queueName: "slow"))
        #expect(await eventually { (try? await runtime.listSteps(workflowID: "centuries"))?.first?.name == "DBOS.sleep" })
        let wakeUp = try #require(try await runtime.listSteps(workflowID: "centuries").first?.completedAt)
        let years = wakeUp.timeIntervalSinceNow / (365 * 86_400)
        #expect(years > 99 && years < 101, "the wake-up time is 100 years away: \(years)")
        let status = try #require(try await runtime.workflowStatus(id: "centuries"))
        #expect(status.state == .pending)
        #expect(status.deadline.map { $0.timeIntervalSinceNow / (365 * 86_400) } ?? 0 > 99)
        try await runtime.cancelWorkflow(id: "centuries")
        await #expect(throws: WorkflowError.self) { try await handle.result() }
        await runtime.shutdown()
    }
}
