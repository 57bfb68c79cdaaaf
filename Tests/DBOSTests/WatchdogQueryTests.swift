@testable import DBOS
import DBOSTestSupport
import Foundation
import Testing

/// The cancellation watchdog's read (`stoppedWorkflowIDs`): after its first look it asks only for
/// runs stopped since, so its answer does not grow with every run cancelled over a long time.
@Suite struct WatchdogQueryTests {
    @Test(arguments: Backend.allCases)
    func aLookSinceAnInstantReadsOnlyRunsStoppedFromThenOn(backend: Backend) async throws {
        try await withSystemDatabase(backend) { database, now in
            for id in ["stopped-long-ago", "stopped-just-now", "still-running"] {
                _ = try await database.insertWorkflow(WorkflowInsert(
                    workflowID: id, state: .pending, name: "work", inputs: "[]", executorID: "local", now: now))
            }
            _ = try await database.cancelWorkflows(
                ids: ["stopped-long-ago"], includeDescendants: false, error: nil, at: now + 1_000)
            _ = try await database.cancelWorkflows(
                ids: ["stopped-just-now"], includeDescendants: false, error: nil, at: now + 600_000)

            let all = try await database.stoppedWorkflowIDs(createdAtOrAfter: now, updatedAtOrAfter: nil)
            #expect(Set(all) == ["stopped-long-ago", "stopped-just-now"])
            let recent = try await database.stoppedWorkflowIDs(createdAtOrAfter: now, updatedAtOrAfter: now + 300_000)
            #expect(recent == ["stopped-just-now"])
            let younger = try await database.stoppedWorkflowIDs(createdAtOrAfter: now + 1, updatedAtOrAfter: nil)
            #expect(younger.isEmpty, "runs created before the oldest running one are not read")
        }
    }
}
