import Foundation
import Testing

/// A run executes the spec text stored with it even when the file's queue declarations changed since:
/// the queues in effect are the worker's.
@Suite(.timeLimit(.minutes(2)))
struct StoredSpecQueueTests {
    @Test func runsEnqueuedBeforeTheQueueDeclarationChangedStillRun() async throws {
        try await CLIWorkspace.with { workspace in
            workspace.write("specs/job.yaml", """
                name: job
                queues:
                  - name: jobs
                    worker_concurrency: 2
                steps:
                  - id: work
                    run: echo done
                """)
            for id in ["job-1", "job-2"] {
                // A relative path, as a user types it; the worker names the directory differently.
                let enqueued = try await workspace.run("enqueue", "specs/job.yaml", "--queue", "jobs", "--id", id)
                #expect(enqueued.exitCode == 0, "\(enqueued)")
            }
            workspace.write("specs/job.yaml", """
                name: job
                queues:
                  - name: jobs
                steps:
                  - id: work
                    run: echo done
                """)
            let worker = try workspace.start("worker", "./specs")
            defer { worker.signal(SIGKILL) }
            var finished: [String: String] = [:]
            for _ in 0..<400 where finished.count < 2 {
                for id in ["job-1", "job-2"] where finished[id] == nil {
                    let state = try await workspace.workflow(id)?["status"] as? String
                    if let state, state != "ENQUEUED", state != "PENDING" { finished[id] = state }
                }
                if finished.count < 2 { try await Task.sleep(for: .milliseconds(25)) }
            }
            #expect(finished == ["job-1": "SUCCESS", "job-2": "SUCCESS"], "\(worker.errorOutput)")
            worker.signal(SIGTERM)
            #expect(await worker.waitForExit(timeout: .seconds(30)) == 0)
        }
    }
}
