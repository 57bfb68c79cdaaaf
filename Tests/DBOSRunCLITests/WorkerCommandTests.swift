import DBOSTestSupport
import Foundation
import Testing

/// `dbos-run worker` and `dbos-run enqueue`, run as the built binaries.
@Suite(.timeLimit(.minutes(3)))
struct WorkerCommandTests {
    @Test func cronTicksRunOnceAcrossTwoWorkersAndSIGTERMStopsThemWithExit0() async throws {
        try await CLIWorkspace.with { workspace in
            workspace.write("specs/every-second.yaml", """
                name: every-second
                schedule: "* * * * * *"
                steps:
                  - id: tick
                    env: {AT: "${{ input.scheduled_time }}", LOG: "\(workspace.file("ticks.log"))"}
                    run: echo "$AT" >> "$LOG"
                """)
            let first = try workspace.start("worker", "specs", "--executor-id", "worker-a")
            let second = try workspace.start("worker", "specs", "--executor-id", "worker-b")
            #expect(await eventually(timeout: .seconds(30)) { workspace.lines(of: "ticks.log").count >= 3 })
            first.signal(SIGTERM)
            second.signal(SIGTERM)
            #expect(await first.waitForExit(timeout: .seconds(20)) == 0, "\(first.errorOutput)")
            #expect(await second.waitForExit(timeout: .seconds(20)) == 0, "\(second.errorOutput)")
            #expect(first.errorOutput.contains("dbos-run worker worker-a: serving every-second; queues: none; schedules: every-second"))
            #expect(first.errorOutput.hasSuffix("dbos-run worker: stopped\n"))
            let ticks = workspace.lines(of: "ticks.log")
            #expect(ticks.count == Set(ticks).count, "a tick ran twice: \(ticks)")
        }
    }

    @Test func scheduledReferenceSpecLoadsInAWorker() async throws {
        try await CLIWorkspace.with { workspace in
            let worker = try workspace.start("worker", CLIWorkspace.referenceSpec("scheduled.yaml"))
            #expect(await worker.waitForError(containing: "schedules: scheduled"))
            worker.signal(SIGINT)
            #expect(await worker.waitForExit(timeout: .seconds(20)) == 0, "\(worker.errorOutput)")
        }
    }

    @Test func mapOnAQueueThroughAWorkerNeverRunsMoreItemsAtOnceThanWorkerConcurrency() async throws {
        try await CLIWorkspace.with { workspace in
            let spec = workspace.write("fan.yaml", """
                name: fan
                queues:
                  - name: jobs
                  - name: fanout
                    worker_concurrency: 2
                steps:
                  - id: each
                    map: ${{ input.items }}
                    queue: fanout
                    steps:
                      - id: work
                        env: {LOG: "\(workspace.file("fan.log"))", N: "${{ item }}"}
                        run: echo "+ $N" >> "$LOG"; sleep 0.4; echo "- $N" >> "$LOG"; echo $N
                """)
            let enqueued = try await workspace.run("enqueue", spec, "--queue", "jobs", "--id", "fan-1", "--input", #"{"items": [1, 2, 3, 4, 5]}"#)
            #expect(enqueued.exitCode == 0, "\(enqueued)")
            #expect(enqueued.standardOutput == "fan-1\n")
            let worker = try workspace.start("worker", spec)
            let finished = await eventually(timeout: .seconds(60)) {
                (try? await workspace.run("workflows", "get", "fan-1", "--json").standardOutput.contains(#""status":"SUCCESS""#)) ?? false
            }
            worker.signal(SIGTERM)
            #expect(await worker.waitForExit(timeout: .seconds(20)) == 0)
            #expect(finished, "\(worker.errorOutput)")
            var running = 0
            var most = 0
            for line in workspace.lines(of: "fan.log") {
                running += line.hasPrefix("+") ? 1 : -1
                most = max(most, running)
            }
            #expect(workspace.lines(of: "fan.log").count == 10)
            #expect(most == 2, "at most 2 items at once, and the limit reached: \(workspace.lines(of: "fan.log"))")
            #expect(worker.errorOutput.contains("[fan-1] each: waiting for 5 child runs"))
        }
    }

    @Test func enqueueRefusesAnUnknownQueueADedupConflictAndABadInputWithExit2() async throws {
        try await CLIWorkspace.with { workspace in
            let child = CLIWorkspace.referenceSpec("child.yaml")
            let unknown = try await workspace.run("enqueue", child, "--queue", "nope")
            #expect(unknown.exitCode == 2)
            #expect(unknown.standardError == "dbos-run: error: unknown queue 'nope': \(child) and the specs next to it declare shipping\n")
            let first = try await workspace.run("enqueue", child, "--queue", "shipping", "--dedup-id", "once", "--priority", "3")
            #expect(first.exitCode == 0, "\(first)")
            let holder = first.standardOutput.trimmingCharacters(in: .newlines)
            let second = try await workspace.run("enqueue", child, "--queue", "shipping", "--dedup-id", "once")
            #expect(second.exitCode == 2)
            #expect(second.standardError == "dbos-run: error: workflow '\(holder)' already holds deduplication ID 'once' on queue 'shipping'\n")
            let status = try await workspace.run("workflows", "get", holder, "--json")
            #expect(status.standardOutput.contains(#""status":"ENQUEUED""#), "\(status)")
            let badInput = try await workspace.run("enqueue", CLIWorkspace.referenceSpec("conditions.yaml"), "--queue", "shipping", "--input", #"{"mode": 1}"#)
            #expect(badInput.exitCode == 2)
            #expect(badInput.standardError.hasPrefix(CLIWorkspace.referenceSpec("conditions.yaml") + ":6:18: error: invalid input: input.mode"))
        }
    }

    @Test func workerRefusesInvalidSpecsWithEveryProblemAndExit2() async throws {
        try await CLIWorkspace.with { workspace in
            workspace.write("specs/bad.yaml", "name: bad\nsteps:\n  - id: a\n    sleep: forever\n")
            let result = try await workspace.run("worker", "specs")
            #expect(result.exitCode == 2)
            #expect(result.standardError.hasPrefix("specs/bad.yaml:4:12: error: "), "\(result)")
            let empty = try await workspace.run("worker", "nowhere")
            #expect(empty.exitCode == 2)
            #expect(empty.standardError == "dbos-run: error: no such file or directory: nowhere\n")
        }
    }

    @Test func workerRecoversItsExecutorsUnfinishedRuns() async throws {
        try await CLIWorkspace.with { workspace in
            let spec = workspace.write("jobs.yaml", """
                name: jobs
                queues: [{name: work}]
                steps:
                  - id: first
                    env: {LOG: "\(workspace.file("jobs.log"))"}
                    run: echo first >> "$LOG"
                  - id: pause
                    run: sleep 4
                  - id: last
                    run: echo finished
                """)
            _ = try await workspace.run("enqueue", spec, "--queue", "work", "--id", "job-1")
            let doomed = try workspace.start("worker", spec, "--executor-id", "w1")
            #expect(await doomed.waitForError(containing: "[job-1] pause: started"))
            doomed.signal(SIGKILL)
            _ = await doomed.waitForExit()
            let successor = try workspace.start("worker", spec, "--executor-id", "w1")
            let finished = await eventually(timeout: .seconds(60)) {
                (try? await workspace.run("workflows", "get", "job-1", "--json").standardOutput.contains(#""status":"SUCCESS""#)) ?? false
            }
            successor.signal(SIGTERM)
            #expect(await successor.waitForExit(timeout: .seconds(20)) == 0)
            #expect(finished, "\(successor.errorOutput)")
            #expect(workspace.lines(of: "jobs.log") == ["first"])
        }
    }

    @Test func workerStoppedBySIGTERMMidStepExits0AndItsNextStartFinishesTheRun() async throws {
        try await CLIWorkspace.with { workspace in
            let spec = workspace.write("long.yaml", """
                name: long
                queues: [{name: work}]
                steps:
                  - id: first
                    env: {LOG: "\(workspace.file("long.log"))"}
                    run: echo first >> "$LOG"
                  - id: pause
                    run: sleep 5
                  - id: last
                    run: echo finished
                """)
            _ = try await workspace.run("enqueue", spec, "--queue", "work", "--id", "long-1")
            let stopped = try workspace.start("worker", spec, "--grace-period", "200ms")
            #expect(await stopped.waitForError(containing: "[long-1] pause: started"))
            stopped.signal(SIGTERM)
            #expect(await stopped.waitForExit(timeout: .seconds(10)) == 0, "\(stopped.errorOutput)")
            let status = try await workspace.run("workflows", "get", "long-1", "--json")
            #expect(status.standardOutput.contains(#""status":"PENDING""#), "\(status)")

            let successor = try workspace.start("worker", spec)
            let finished = await eventually(timeout: .seconds(60)) {
                (try? await workspace.run("workflows", "get", "long-1", "--json").standardOutput.contains(#""status":"SUCCESS""#)) ?? false
            }
            successor.signal(SIGTERM)
            #expect(await successor.waitForExit(timeout: .seconds(20)) == 0)
            #expect(finished, "\(successor.errorOutput)")
            #expect(successor.errorOutput.contains("[long-1] first: already done (checkpoint at slot 0), not run again"))
            #expect(workspace.lines(of: "long.log") == ["first"])
        }
    }
}
