import DBOSTestSupport
import Foundation
import Testing

/// `dbos-run FILE`: the default command, run as the built binary.
@Suite(.timeLimit(.minutes(3)))
struct RunCommandTests {
    @Test func helloPrintsItsOutputBareAndStreamsProgressToStandardError() async throws {
        try await CLIWorkspace.with { workspace in
            let result = try await workspace.run(CLIWorkspace.referenceSpec("hello.yaml"), "--id", "hello-1")
            #expect(result.exitCode == 0, "\(result)")
            #expect(result.standardOutput == "HELLO WORLD\n")
            #expect(result.standardError.contains("dbos-run: run hello-1 of 'hello' started\n"))
            #expect(result.standardError.contains("greet: started (run, slot 0)\n"))
            #expect(result.standardError.contains("greet: done in "))
            let json = try await workspace.run(CLIWorkspace.referenceSpec("hello.yaml"), "--json")
            #expect(json.standardOutput == "\"HELLO WORLD\"\n")
        }
    }

    /// The reference specs that need nothing but their file and an input.
    static let selfContainedSpecs: [(file: String, input: String?, output: String)] = [
        ("conditions.yaml", nil, "skipped fast"),
        ("conditions.yaml", #"{"mode": "slow"}"#, "success none"),
        ("errors.yaml", nil, "error"),
        ("expressions.yaml", nil, #"{"big":true,"names":["ada","grace"],"text":"limit is 3"}"#),
        ("needs.yaml", nil, "bc"),
        ("parallel.yaml", nil, "left+right!"),
        ("run-outputs.yaml", nil, "got plain text, 3 values, first file a.txt"),
        ("map.yaml", #"{"items": [5, 6]}"#, #"["item 10","item 12"]"#),
        ("map-workflow.yaml", nil, #"["HELLO WORLD","HELLO WORLD"]"#),
    ]

    @Test(arguments: 0..<selfContainedSpecs.count)
    func referenceSpecRunsToItsOutput(index: Int) async throws {
        let (file, input, output) = Self.selfContainedSpecs[index]
        try await CLIWorkspace.with { workspace in
            let arguments = [CLIWorkspace.referenceSpec(file)] + (input.map { ["--input", $0] } ?? [])
            let result = try await runCLI(
                arguments, in: workspace.directory, environment: ["DBOS_SYSTEM_DATABASE_URL": workspace.databaseURL])
            #expect(result.exitCode == 0, "\(file): \(result)")
            #expect(result.standardOutput == output + "\n", "\(file): \(result)")
        }
    }

    @Test func childSpecRunsItsChildrenAndReportsTheirProgress() async throws {
        try await CLIWorkspace.with { workspace in
            let result = try await workspace.run(CLIWorkspace.referenceSpec("child.yaml"), "--id", "parent")
            #expect(result.exitCode == 0, "\(result)")
            #expect(result.standardOutput == #"{"result":"HELLO WORLD","started":"parent-1"}"# + "\n")
            #expect(result.standardError.contains("[0] greet: done in "))
        }
    }

    @Test func failingSagaExitsWith1NamingTheStepAfterItsCompensations() async throws {
        try await CLIWorkspace.with { workspace in
            let saga = CLIWorkspace.referenceSpec("saga.yaml")
            let result = try await workspace.run(saga, "--id", "saga-1")
            #expect(result.exitCode == 1, "\(result)")
            #expect(result.standardOutput == "")
            #expect(result.standardError.hasSuffix("dbos-run: error: step 'ship' (\(saga):13:5) failed: exit code 1\n"))
            #expect(result.standardError.contains("charge: compensated\n"))
            #expect(result.standardError.contains("reserve: compensated\n"))
            // The recorded failure again, without running anything.
            let again = try await workspace.run(saga, "--id", "saga-1")
            #expect(again.exitCode == 1)
            #expect(!again.standardError.contains("compensat"))
            #expect(again.standardError.hasSuffix("dbos-run: error: step 'ship' (\(saga):13:5) failed: exit code 1\n"))
        }
    }

    @Test func handlerSpecNeedsAProgramThatRegistersItsHandler() async throws {
        try await CLIWorkspace.with { workspace in
            let file = CLIWorkspace.referenceSpec("handler.yaml")
            let result = try await workspace.run(file, "--input", #"{"order_id": "A1"}"#)
            #expect(result.exitCode == 2)
            #expect(result.standardError == "\(file):11:5: error: unknown handler 'charge_card'; no handlers are registered (handlers are Swift functions registered by a program that embeds dbos-run)\n")
        }
    }

    @Test func runWaitingForAMessageFinishesWhenAnotherProcessSendsIt() async throws {
        try await CLIWorkspace.with { workspace in
            let waiting = try workspace.start(CLIWorkspace.referenceSpec("messaging.yaml"), "--id", "asker")
            #expect(await waiting.waitForError(containing: "approval: waiting for"))
            let sent = try await workspace.run("send", "asker", "--topic", "approvals", "--message", #"{"approved": true}"#)
            #expect(sent.exitCode == 0, "\(sent)")
            #expect(await waiting.waitForExit() == 0, "\(waiting.errorOutput)")
            #expect(waiting.output == #"{"approved":true}"# + "\n")
        }
    }

    @Test func twoRunsExchangeEventsAcrossProcessesAndGetEventReadsThem() async throws {
        try await CLIWorkspace.with { workspace in
            let events = CLIWorkspace.referenceSpec("events.yaml")
            let left = try workspace.start(events, "--id", "left", "--input", #"{"other_run": "right"}"#)
            let right = try workspace.start(events, "--id", "right", "--input", #"{"other_run": "left"}"#)
            #expect(await left.waitForExit() == 0, "\(left.errorOutput)")
            #expect(await right.waitForExit() == 0, "\(right.errorOutput)")
            #expect(left.output == "null\n")
            let value = try await workspace.run("get-event", "left", "progress")
            #expect(value.exitCode == 0, "\(value)")
            #expect(value.standardOutput == "100\n")
        }
    }

    @Test func sleepingRunStoppedBySIGTERMStaysPendingAndResumesWithoutRepeatingSteps() async throws {
        try await CLIWorkspace.with { workspace in
            let sleep = CLIWorkspace.referenceSpec("sleep.yaml")
            let first = try workspace.start(sleep, "--id", "napper")
            #expect(await first.waitForError(containing: "nap: waiting for"))
            first.signal(SIGTERM)
            #expect(await first.waitForExit(timeout: .seconds(10)) == 143)
            #expect(first.errorOutput.contains("run napper stopped and left PENDING; continue it with: dbos-run \(sleep) --id napper"))
            let status = try await workspace.run("workflows", "get", "napper", "--json")
            #expect(status.standardOutput.contains(#""status":"PENDING""#), "\(status)")

            let second = try workspace.start(sleep, "--id", "napper")
            #expect(await second.waitForError(containing: "nap: waiting for"))
            #expect(second.errorOutput.contains("before: already done (checkpoint at slot 0), not run again"))
            second.signal(SIGINT)
            #expect(await second.waitForExit(timeout: .seconds(10)) == 130)
        }
    }

    @Test func killedRunResumesFromItsLastCheckpointAndNoCheckpointedStepRunsTwice() async throws {
        try await CLIWorkspace.with { workspace in
            let spec = workspace.write("steps.yaml", """
                name: steps
                steps:
                  - id: first
                    env: {LOG: "${{ input.log }}"}
                    run: echo first >> "$LOG"; echo one
                  - id: second
                    env: {LOG: "${{ input.log }}"}
                    run: echo second >> "$LOG"; echo two
                  - id: pause
                    env: {GATE: "${{ input.gate }}"}
                    run: while [ ! -f "$GATE" ]; do sleep 0.05; done
                  - id: third
                    env: {LOG: "${{ input.log }}", BEFORE: "${{ steps.second.output }}"}
                    run: echo third >> "$LOG"; echo "$BEFORE three"
                """)
            // The pause waits for a gate file that only appears after the kill: the kill always
            // lands mid-run, however slow the machine.
            let gate = workspace.file("gate")
            let input = #"{"log": "\#(workspace.file("effects.log"))", "gate": "\#(gate)"}"#
            let doomed = try workspace.start(spec, "--id", "crashy", "--input", input)
            #expect(await doomed.waitForError(containing: "pause: started"))
            doomed.signal(SIGKILL)
            #expect(await doomed.waitForExit() == 137)
            #expect(workspace.lines(of: "effects.log") == ["first", "second"])
            _ = FileManager.default.createFile(atPath: gate, contents: nil)

            let resumed = try await workspace.run(spec, "--id", "crashy")
            #expect(resumed.exitCode == 0, "\(resumed)")
            #expect(resumed.standardOutput == "two three\n")
            #expect(resumed.standardError.contains("resuming it from its last checkpoint"))
            #expect(resumed.standardError.contains("second: already done (checkpoint at slot 1), not run again"))
            #expect(workspace.lines(of: "effects.log") == ["first", "second", "third"])

            let finished = try await workspace.run(spec, "--id", "crashy")
            #expect(finished.exitCode == 0)
            #expect(finished.standardOutput == "two three\n")
            #expect(finished.standardError == "dbos-run: run crashy already finished (SUCCESS); its recorded outcome follows\n")
            #expect(workspace.lines(of: "effects.log") == ["first", "second", "third"])
        }
    }

    @Test func aShellStepLeftRunningByAKilledWorkerIsStoppedBeforeTheStepRunsAgain() async throws {
        try await CLIWorkspace.with { workspace in
            let spec = workspace.write("long.yaml", """
                name: long
                steps:
                  - id: work
                    env: {PIDS: "${{ input.pids }}", LOG: "${{ input.log }}", GATE: "${{ input.gate }}"}
                    run: |
                      echo started >> "$LOG"
                      sleep 300 &
                      echo "$$ $!" >> "$PIDS"
                      while [ ! -f "$GATE" ]; do sleep 0.05; done
                      echo finished >> "$LOG"
                """)
            let pids = workspace.file("pids")
            let gate = workspace.file("gate")
            let input = #"{"pids": "\#(pids)", "log": "\#(workspace.file("effects.log"))", "gate": "\#(gate)"}"#
            func stepProcesses() -> [[pid_t]] {
                ((try? String(contentsOfFile: pids, encoding: .utf8)) ?? "").split(separator: "\n")
                    .map { $0.split(separator: " ").compactMap { pid_t($0) } }
            }
            let doomed = try workspace.start(spec, "--id", "long-1", "--input", input)
            #expect(await eventually { stepProcesses().count == 1 }, "\(doomed.errorOutput)")
            let first = stepProcesses().first ?? []
            #expect(first.count == 2)
            // The worker records the command just after starting it (a kill before that leaves nothing to find).
            let registry = FileManager.default.temporaryDirectory.appendingPathComponent("dbos-step-processes-\(getuid())").path
            #expect(await eventually {
                ((try? FileManager.default.contentsOfDirectory(atPath: registry)) ?? []).contains { $0.contains("-\(first.first ?? 0)-") }
            }, "the command was not recorded")
            doomed.signal(SIGKILL)
            #expect(await doomed.waitForExit() == 137)
            // The command has a session of its own: the kernel leaves it running without its worker.
            try await Task.sleep(for: .milliseconds(300))
            #expect(first.allSatisfy(isAlive), "the step's processes did not outlive their worker")

            let resumed = try workspace.start(spec, "--id", "long-1", "--input", input)
            #expect(await eventually { stepProcesses().count == 2 }, "\(resumed.errorOutput)")
            // By the time the step runs again, the old group (shell and background job) is gone.
            #expect(!first.contains(where: isAlive), "old step processes still run: \(first.filter(isAlive))")
            _ = FileManager.default.createFile(atPath: gate, contents: nil)
            #expect(await resumed.waitForExit() == 0, "\(resumed.errorOutput)")
            #expect(workspace.lines(of: "effects.log") == ["started", "started", "finished"])
            // The new command's background job is its own business once the step is over.
            for pid in stepProcesses().joined() where isAlive(pid) { kill(pid, SIGKILL) }
        }
    }

    @Test func cancellingARunMakesTheProcessRunningItExitWith3() async throws {
        try await CLIWorkspace.with { workspace in
            let spec = workspace.write("slow.yaml", """
                name: slow
                steps:
                  - id: wait
                    run: sleep 30
                  - id: after
                    run: echo never
                """)
            let running = try workspace.start(spec, "--id", "doomed")
            #expect(await running.waitForError(containing: "wait: started"))
            let cancel = try await workspace.run("workflows", "cancel", "doomed")
            #expect(cancel.exitCode == 0, "\(cancel)")
            #expect(await running.waitForExit() == 3, "\(running.errorOutput)")
            #expect(running.output == "")
            #expect(running.errorOutput.hasSuffix("dbos-run: error: workflow 'doomed' was cancelled\n"), "\(running.errorOutput)")
            #expect(!running.errorOutput.contains("after: started"))
        }
    }

    @Test func invalidSpecPrintsEveryProblemWithItsLocationAndExitsWith2() async throws {
        try await CLIWorkspace.with { workspace in
            workspace.write("bad.yaml", """
                name: bad
                steps:
                  - id: a
                    run: echo ${{ input.x }}
                  - id: b
                    runn: echo hi
                """)
            let result = try await workspace.run("bad.yaml")
            #expect(result.exitCode == 2)
            #expect(result.standardOutput == "")
            #expect(result.standardError == """
                bad.yaml:4:15: error: a template in 'run:' cannot be used; pass values through 'env:'
                bad.yaml:5:5: error: step 'b' has no action; add one of run, handler, sleep, recv, send, set_event, get_event, workflow, map, parallel
                bad.yaml:6:5: error: unknown field 'runn' in step 'b' (did you mean 'run'?)

                """)
            #expect(!FileManager.default.fileExists(atPath: workspace.file("system.sqlite")))
            let missing = try await workspace.run("missing.yaml")
            #expect(missing.exitCode == 2)
            #expect(missing.standardError == "missing.yaml:1:1: error: no such file\n")
        }
    }

    @Test func inputThatFailsTheSchemaOrIsNotJSONExitsWith2NamingTheProblem() async throws {
        try await CLIWorkspace.with { workspace in
            let conditions = try await workspace.run(CLIWorkspace.referenceSpec("conditions.yaml"), "--input", #"{"mode": "bad"}"#)
            #expect(conditions.exitCode == 2)
            #expect(conditions.standardError == CLIWorkspace.referenceSpec("conditions.yaml") + #":6:32: error: invalid input: input.mode must be one of "fast", "slow", not "bad""# + "\n")
            let events = try await workspace.run(CLIWorkspace.referenceSpec("events.yaml"), "--input", "{}")
            #expect(events.exitCode == 2)
            #expect(events.standardError == CLIWorkspace.referenceSpec("events.yaml") + ":5:14: error: invalid input: input.other_run is required\n")
            let notJSON = try await workspace.run(CLIWorkspace.referenceSpec("hello.yaml"), "--input", "{bad")
            #expect(notJSON.exitCode == 2)
            #expect(notJSON.standardError.hasPrefix("dbos-run: error: invalid JSON in --input: "))
            #expect(!FileManager.default.fileExists(atPath: workspace.file("system.sqlite")), "a refused run leaves no database")
            let noFile = try await workspace.run(CLIWorkspace.referenceSpec("hello.yaml"), "--input", "@nope.json")
            #expect(noFile.exitCode == 2)
            #expect(noFile.standardError == "dbos-run: error: cannot read the input file 'nope.json' given to --input\n")
        }
    }

    @Test func inputIsReadFromAFileWithAtSign() async throws {
        try await CLIWorkspace.with { workspace in
            workspace.write("input.json", #"{"mode": "slow"}"#)
            let result = try await workspace.run(CLIWorkspace.referenceSpec("conditions.yaml"), "--input", "@input.json")
            #expect(result.exitCode == 0, "\(result)")
            #expect(result.standardOutput == "success none\n")
        }
    }

    @Test func runOnADeclaredQueueIsServedByThisProcessAndAnUnknownQueueExitsWith2() async throws {
        try await CLIWorkspace.with { workspace in
            let child = CLIWorkspace.referenceSpec("child.yaml")
            let queued = try await workspace.run(child, "--queue", "shipping", "--id", "queued")
            #expect(queued.exitCode == 0, "\(queued)")
            #expect(queued.standardError.contains("dbos-run: run queued of 'child' enqueued on queue 'shipping'"))
            let status = try await workspace.run("workflows", "get", "queued", "--json")
            #expect(status.standardOutput.contains(#""queue":"shipping""#), "\(status)")
            let unknown = try await workspace.run(child, "--queue", "nope")
            #expect(unknown.exitCode == 2)
            #expect(unknown.standardError == "dbos-run: error: unknown queue 'nope': \(child) and the specs next to it declare shipping\n")
        }
    }

    @Test func anUnknownQueueNamesTheInvalidSpecNextToTheFileThatDeclaresIt() async throws {
        try await CLIWorkspace.with { workspace in
            let main = workspace.write("main.yaml", "name: main\nsteps:\n  - id: a\n    run: echo hi\n")
            let broken = workspace.write("queues.yaml", """
                name: queues
                queues:
                  shipping: {worker_concurrency: 2}
                steps:
                  - id: a
                    run: echo ${{ input.x }}
                """)
            let result = try await workspace.run(main, "--queue", "shipping")
            #expect(result.exitCode == 2)
            #expect(result.standardError == "dbos-run: error: unknown queue 'shipping': \(main) and the specs next to it "
                + "declare no queues; 'shipping' is declared in \(broken), which is not a valid spec (dbos-run validate shows why)\n")
            let enqueued = try await workspace.run("enqueue", main, "--queue", "shipping")
            #expect(enqueued.exitCode == 2)
            #expect(enqueued.standardError.hasSuffix("'shipping' is declared in \(broken), which is not a valid spec (dbos-run validate shows why)\n"))
            // An invalid file that does not declare the queue is not named.
            let other = try await workspace.run(main, "--queue", "nope")
            #expect(other.standardError == "dbos-run: error: unknown queue 'nope': \(main) and the specs next to it declare no queues\n")
            #expect(!FileManager.default.fileExists(atPath: workspace.file("system.sqlite")))
        }
    }

    @Test func anIDUsedByAnotherSpecIsRefusedWithExit2() async throws {
        try await CLIWorkspace.with { workspace in
            _ = try await workspace.run(CLIWorkspace.referenceSpec("hello.yaml"), "--id", "taken")
            let result = try await workspace.run(CLIWorkspace.referenceSpec("needs.yaml"), "--id", "taken")
            #expect(result.exitCode == 2)
            #expect(result.standardError == "dbos-run: error: workflow ID 'taken' is already used by a run of 'hello', not 'needs'\n")
        }
    }

    @Test func withoutDBTheRunUsesTheEmbeddedDefaultInTheWorkingDirectory() async throws {
        try await CLIWorkspace.with { workspace in
            let result = try await runCLI([CLIWorkspace.referenceSpec("hello.yaml"), "--id", "default-db"], in: workspace.directory)
            #expect(result.exitCode == 0, "\(result)")
            #expect(result.standardOutput == "HELLO WORLD\n")
            #expect(FileManager.default.fileExists(atPath: workspace.file(".dbos/system.sqlite")))
            let listed = try await runCLI(["workflows", "get", "default-db", "--json"], in: workspace.directory)
            #expect(listed.standardOutput.contains(#""executor_id":"dbos-run:default-db""#), "\(listed)")
        }
    }

    @Test func killedMapRunResumesWithItsItemsCheckpointsAndQueueDeclaredNextToIt() async throws {
        try await CLIWorkspace.with { workspace in
            // map.yaml names the queue 'shipping', which only the specs next to it declare.
            for name in ["map.yaml", "child.yaml", "hello.yaml"] {
                try FileManager.default.copyItem(atPath: CLIWorkspace.referenceSpec(name), toPath: workspace.file(name))
            }
            workspace.write("map.yaml", """
                name: map
                steps:
                  - id: each
                    map: [1, 2]
                    queue: shipping
                    steps:
                      - id: work
                        env: {N: "${{ item }}", LOG: "\(workspace.file("map.log"))"}
                        run: |
                          echo "$N" >> "$LOG"
                          if [ "$N" = 2 ]; then while [ ! -f "$LOG.gate" ]; do sleep 0.05; done; fi
                          echo "item $N"
                """)
            let doomed = try workspace.start("map.yaml", "--id", "fan")
            #expect(await eventually { workspace.lines(of: "map.log").count == 2 })
            // Item 1 must be checkpointed before the kill; item 2 waits for a gate that opens after it.
            #expect(await eventually {
                (try? await workspace.run("workflows", "steps", "fan-0-0", "--json"))?.standardOutput.contains("work") == true
            })
            doomed.signal(SIGKILL)
            _ = await doomed.waitForExit()
            _ = FileManager.default.createFile(atPath: workspace.file("map.log") + ".gate", contents: nil)
            let resumed = try await workspace.run("map.yaml", "--id", "fan")
            #expect(resumed.exitCode == 0, "\(resumed)")
            #expect(resumed.standardOutput == #"["item 1","item 2"]"# + "\n")
            #expect(workspace.lines(of: "map.log").sorted() == ["1", "2", "2"], "item 1 was checkpointed, item 2 was not")
        }
    }

    @Test func runPastItsSpecTimeoutExitsWith3SayingSo() async throws {
        try await CLIWorkspace.with { workspace in
            let spec = workspace.write("late.yaml", """
                name: late
                timeout: 1s
                steps:
                  - id: slow
                    run: sleep 20
                  - id: after
                    run: echo never
                """)
            let result = try await workspace.run(spec, "--id", "late-1")
            #expect(result.exitCode == 3, "\(result)")
            #expect(result.standardOutput == "")
            #expect(result.standardError.hasSuffix("dbos-run: error: workflow 'late-1' timed out after 1.0 seconds\n"))
            let again = try await workspace.run(spec, "--id", "late-1")
            #expect(again.exitCode == 3)
            #expect(again.standardError.hasSuffix("dbos-run: error: workflow 'late-1' timed out after 1.0 seconds\n"))
        }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/script")))
    func onATerminalProgressHasColouredMarkersAndALiveStatusLineThatIsClearedBeforeEachLine() async throws {
        try await CLIWorkspace.with { workspace in
            let spec = workspace.write("two.yaml", "name: two\nsteps:\n  - {id: pause, run: sleep 1}\n  - {id: done, run: echo finished}\n")
            let command = "\(builtExecutable(named: "dbos-run")) \(spec) --db \(workspace.databaseURL)"
            // `script` gives the command a pseudo-terminal; its stdout and stderr arrive together.
            let result = try await runCLI(["-qec", command, "/dev/null"], in: workspace.directory, environment: ["TERM": "xterm", "NO_COLOR": ""], executable: "/usr/bin/script")
            #expect(result.exitCode == 0, "\(result)")
            #expect(result.standardOutput.contains("\u{1B}[32m✓\u{1B}[0m pause: done in "))
            #expect(result.standardOutput.contains("running: pause "))
            #expect(result.standardOutput.contains("\r\u{1B}[K\u{1B}[32m✓\u{1B}[0m done: done in "), "the status line is cleared first")
            #expect(result.standardOutput.hasSuffix("finished\r\n"))
        }
    }
}

/// Whether a process is still running (a zombie waiting for its parent counts as gone).
private func isAlive(_ pid: pid_t) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return false }
    let state = stat[stat.index(after: close)...].split(separator: " ").first
    return state != "Z" && state != "X"
}
