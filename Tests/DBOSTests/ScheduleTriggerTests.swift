import DBOS
import DBOSTestSupport
import Foundation
import Testing

/// A schedule's run started by hand, outside its ticks (DBOS's `TriggerSchedule`).
@Suite(.timeLimit(.minutes(2)))
struct ScheduleTriggerTests {
    @Test(arguments: Backend.allCases)
    func aTriggerRunsTheScheduledWorkflowNowAsARunOfItsOwn(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            _ = try runtime.register("report") { (_: WorkflowContext, input: ScheduledWorkflowInput) -> Double in
                input.scheduledTime.timeIntervalSince1970
            }
            // Fires once a year: no tick during the test.
            try runtime.register(schedule: WorkflowSchedule(
                name: "yearly-report", expression: try ScheduleExpression(parsing: "0 0 0 1 1 *"), workflowName: "report"))
        } test: { runtime, _ in
            let before = Date().timeIntervalSince1970
            let first = try await runtime.triggerSchedule(named: "yearly-report", as: Double.self)
            let second = try await runtime.triggerSchedule(named: "yearly-report", as: Double.self)
            #expect(first.workflowID.hasPrefix("sched-yearly-report-trigger-"), "\(first.workflowID)")
            let time = first.workflowID.dropFirst("sched-yearly-report-trigger-".count)
            #expect(time.count == "2026-12-07T13:14:15.123456789Z".count && time.hasSuffix("Z"), "\(time)")
            #expect(time.dropLast(11).allSatisfy { "0123456789-T:".contains($0) }, "\(time)")
            #expect(first.workflowID != second.workflowID, "each trigger is a run of its own")
            // The input's time is RFC 3339 to the second, as a tick's.
            let scheduledTime = try await first.result()
            #expect(scheduledTime >= before.rounded(.down) && scheduledTime <= Date().timeIntervalSince1970 + 0.2)
            #expect(try await second.result() >= scheduledTime)
            let status = try #require(try await runtime.workflowStatus(id: first.workflowID))
            #expect(status.name == "report")
            #expect(status.queueName == WorkflowQueue.internalQueueName)

            await #expect {
                _ = try await runtime.triggerSchedule(named: "weekly-report")
            } throws: { error in
                "\(error)".contains("no schedule named 'weekly-report' is registered")
            }
        }
    }
}
