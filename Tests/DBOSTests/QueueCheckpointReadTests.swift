@testable import DBOS
import DBOSTestSupport
import Foundation
import Synchronization
import Testing

/// A queue runner reads the checkpoints of the runs it claimed before it starts them. The claimed
/// runs are already this process's, so a failed read is tried again (backing off from 50 ms)
/// instead of leaving them PENDING until the next launch.
@Suite(.timeLimit(.minutes(2)))
struct QueueCheckpointReadTests {
    @Test func aClaimedRunWhoseCheckpointsCannotBeReadAtFirstStartsOnceTheReadWorks() async throws {
        let setup = try await TestRuntime(.postgres)
        defer { setup.directory.remove() }
        let runtime = try await DBOSRuntime(configuration: DBOSConfiguration(
            systemDatabaseURL: setup.url, executorID: "worker", applicationVersion: "v1",
            pollingInterval: .milliseconds(20)))
        _ = try runtime.register("double") { (context: WorkflowContext, value: Int) -> Int in
            try await context.runStep("double") { value * 2 }
        }
        try runtime.register(queue: WorkflowQueue(name: "work", workerConcurrency: 1, pollingInterval: .milliseconds(20)))
        try await runtime.launch()
        let admin = try await PostgresConnection.connect(PostgresURL(setup.url))
        defer { admin.close() }
        let client = try await DBOSClient(systemDatabaseURL: setup.url)
        do {
            // The table the read needs is away (another session holds nothing on it meanwhile).
            try await admin.execute("ALTER TABLE dbos.operation_outputs RENAME TO operation_outputs_away")
            let handle = try await client.enqueue(workflowName: "double", queueName: "work", input: 21)
            let claimed = try await eventually(timeout: .seconds(20)) {
                try await runtime.workflowStatus(id: handle.workflowID)?.state == .pending
            }
            #expect(claimed, "the worker did not claim the run")
            // The read right after the claim fails; it is tried again after 50, 100, 200 and 400 ms.
            let failed = await eventually(timeout: .seconds(20)) {
                runtime.state.withLock { $0.checkpointReadFailures } > 0
            }
            #expect(failed, "the checkpoint read never failed, so its retry was not exercised")
            try await admin.execute("ALTER TABLE dbos.operation_outputs_away RENAME TO operation_outputs")
            let finished = try await eventually(timeout: .seconds(20)) {
                try await runtime.workflowStatus(id: handle.workflowID)?.state == .success
            }
            try #require(finished, "the claimed run did not start once its checkpoints could be read")
            #expect(try await handle.result() == .integer(42))
            #expect(try await runtime.listSteps(workflowID: handle.workflowID).map(\.name) == ["double"])
            #expect(try await runtime.workflowStatus(id: handle.workflowID)?.recoveryAttempts == 1)
        } catch {
            _ = try? await admin.execute("ALTER TABLE dbos.operation_outputs_away RENAME TO operation_outputs")
            await client.close()
            await runtime.shutdown(gracePeriod: .zero)
            throw error
        }
        await client.close()
        await runtime.shutdown(gracePeriod: .zero)
    }
}
