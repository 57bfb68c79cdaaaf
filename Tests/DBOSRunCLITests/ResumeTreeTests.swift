import Foundation
import Testing

/// `workflows cancel` stops a run and its children; `workflows resume` continues all of them.
@Suite(.timeLimit(.minutes(3)))
struct ResumeTreeTests {
    @Test func aCancelledRunWithChildAndMapStepsResumesToItsEnd() async throws {
        try await CLIWorkspace.with { workspace in
            workspace.write("kid.yaml", """
                name: kid
                steps:
                  - id: rest
                    sleep: 100ms
                  - id: speak
                    run: echo kid
                """)
            let spec = workspace.write("tree.yaml", """
                name: tree
                steps:
                  - id: call
                    workflow: kid
                  - id: each
                    map: [1, 2]
                    steps:
                      - id: hold
                        recv: {topic: go}
                      - id: twice
                        env: {N: "${{ item }}"}
                        run: echo $((N * 2))
                        output: json
                  - id: sum
                    env: {A: "${{ steps.call.output }}", B: "${{ toJSON(steps.each.output) }}"}
                    run: echo "$A $B"
                """)
            let background = try workspace.start(spec, "--id", "tree-1")
            defer { background.signal(SIGKILL) }
            // Wait until both map items wait for their message (the child step is done by then), then
            // cancel the tree.
            var itemsWait = false
            for _ in 0..<400 where !itemsWait {
                var waiting = 0
                for id in ["tree-1-1-0", "tree-1-1-1"] where try await workspace.workflow(id)?["status"] as? String == "PENDING" {
                    waiting += 1
                }
                itemsWait = waiting == 2
                if !itemsWait { try await Task.sleep(for: .milliseconds(25)) }
            }
            #expect(itemsWait)
            let cancel = try await workspace.run("workflows", "cancel", "tree-1")
            #expect(cancel.exitCode == 0, "\(cancel)")
            #expect(await background.waitForExit(timeout: .seconds(30)) == 3)
            for id in ["tree-1-1", "tree-1-1-0", "tree-1-1-1"] {
                #expect(try await workspace.workflow(id)?["status"] as? String == "CANCELLED", "\(id)")
            }

            // The messages wait for the items, which receive them once resumed.
            for id in ["tree-1-1-0", "tree-1-1-1"] {
                let sent = try await workspace.run("send", id, "--topic", "go", "--message", "1")
                #expect(sent.exitCode == 0, "\(sent)")
            }
            let resumed = try await workspace.run("workflows", "resume", "tree-1")
            #expect(resumed.exitCode == 0, "\(resumed)")
            #expect(resumed.standardOutput == "kid [2,4]\n")
            for id in ["tree-1", "tree-1-0", "tree-1-1", "tree-1-1-0", "tree-1-1-1"] {
                #expect(try await workspace.workflow(id)?["status"] as? String == "SUCCESS", "\(id)")
            }
        }
    }

    @Test func aTreeAWorkerRanIsResumedByAnAttachedResumeAfterTheWorkerStopped() async throws {
        try await CLIWorkspace.with { workspace in
            workspace.write("specs/kid.yaml", """
                name: kid
                steps:
                  - id: rest
                    sleep: 30s
                  - id: speak
                    run: echo kid
                """)
            let spec = workspace.write("specs/top.yaml", """
                name: top
                queues:
                  - name: jobs
                steps:
                  - id: call
                    workflow: kid
                """)
            let enqueued = try await workspace.run("enqueue", spec, "--queue", "jobs", "--id", "top-1")
            #expect(enqueued.exitCode == 0, "\(enqueued)")
            let worker = try workspace.start("worker", workspace.file("specs"), "--executor-id", "worker-a")
            defer { worker.signal(SIGKILL) }
            var childSleeps = false
            for _ in 0..<400 where !childSleeps {
                let steps = try await workspace.run("workflows", "steps", "top-1-0", "--json")
                childSleeps = steps.exitCode == 0 && steps.standardOutput.contains("\"rest\"")
                if !childSleeps { try await Task.sleep(for: .milliseconds(25)) }
            }
            #expect(childSleeps)
            #expect(try await workspace.run("workflows", "cancel", "top-1").exitCode == 0)
            worker.signal(SIGTERM)
            #expect(await worker.waitForExit(timeout: .seconds(30)) == 0)

            // The child was the worker's; the resuming process claims it all the same, and its
            // durable sleep is what is left of the 30 s: the resume is cut short by cancelling again.
            let resume = try workspace.start("workflows", "resume", "top-1")
            defer { resume.signal(SIGKILL) }
            var childRunsAgain = false
            for _ in 0..<400 where !childRunsAgain {
                let child = try await workspace.workflow("top-1-0")
                childRunsAgain = child?["status"] as? String == "PENDING" && child?["executor_id"] as? String == "dbos-run:top-1"
                if !childRunsAgain { try await Task.sleep(for: .milliseconds(25)) }
            }
            #expect(childRunsAgain, "the resumed child was claimed by the resuming process")
            #expect(try await workspace.run("workflows", "cancel", "top-1").exitCode == 0)
            #expect(await resume.waitForExit(timeout: .seconds(30)) == 3)
        }
    }

    @Test func runsLeftEnqueuedForAWorkerAreNotExecutedByAnotherCommandsProcess() async throws {
        try await CLIWorkspace.with { workspace in
            let spec = workspace.write("two.yaml", """
                name: two
                steps:
                  - id: one
                    run: echo one
                  - id: two
                    run: echo two
                """)
            #expect(try await workspace.run(spec, "--id", "k1").exitCode == 0)
            let detachedFork = try await workspace.run("workflows", "fork", "k1", "--from-step", "1", "--detach")
            #expect(detachedFork.exitCode == 0, "\(detachedFork)")
            let forkID = detachedFork.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try await workspace.run(spec, "--id", "k2").exitCode == 0)
            #expect(try await workspace.run(spec, "--id", "k3").exitCode == 0)
            #expect(try await workspace.run("workflows", "resume", "k2", "--detach").exitCode == 2, "k2 succeeded")

            // Attached commands of other runs: a fork, a resume, a run.
            #expect(try await workspace.run("workflows", "fork", "k1", "--from-step", "1", "--id", "k1-again").exitCode == 0)
            #expect(try await workspace.run(spec, "--id", "k4").exitCode == 0)
            #expect(try await workspace.workflow(forkID)?["status"] as? String == "ENQUEUED")

            // Its own attached command does run it.
            let resumed = try await workspace.run("workflows", "resume", forkID)
            #expect(resumed.exitCode == 0, "\(resumed)")
            #expect(resumed.standardOutput == "two\n")
            // The engine's internal queue, where forks and resumes wait, is not shown as the run's queue.
            let fields = try #require(try await workspace.workflow(forkID))
            #expect(fields["queue"] is NSNull, "\(fields)")
            let listed = try await workspace.run("workflows", "list")
            #expect(!listed.standardOutput.contains("_dbos_internal_queue"), "\(listed)")
        }
    }
}
