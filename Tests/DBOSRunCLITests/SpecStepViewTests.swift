import Foundation
import Testing

/// `dbos-run workflows steps` of a spec run shows the spec's steps (SpecStepView), and `--raw`
/// shows the engine's rows as recorded.
@Suite(.timeLimit(.minutes(3)))
struct SpecStepViewTests {
    private static let mixed = """
        name: mixed
        steps:
          - id: first
            run: echo one
          - id: never
            if: ${{ 1 == 2 }}
            run: echo never
          - id: nap
            sleep: 50ms
          - id: answer
            recv: {topic: replies, timeout: 100ms, default: 7}
          - id: kid
            workflow: child
            with: {n: 2}
          - id: detached
            workflow: child
            with: {n: 3}
            wait: false
          - id: both
            parallel:
              - steps:
                  - id: left
                    run: echo L
              - steps:
                  - id: right
                    run: echo R
        """
    private static let child = """
        name: child
        steps:
          - id: twice
            env: {N: "${{ input.n }}"}
            run: echo $((N * 2))
            output: json
        """

    private static func steps(_ result: CLIResult) throws -> [[String: Any]] {
        try #require(try result.outputJSON() as? [[String: Any]], "\(result)")
    }

    @Test func aSpecRunsStepsAreNamedByTheirIdsWithTheOutputsTheRunSaw() async throws {
        try await CLIWorkspace.with { workspace in
            workspace.write("child.yaml", Self.child)
            let spec = workspace.write("mixed.yaml", Self.mixed)
            let run = try await workspace.run(spec, "--id", "mix-1")
            #expect(run.exitCode == 0, "\(run)")

            let steps = try Self.steps(try await workspace.run("workflows", "steps", "mix-1", "--json"))
            #expect(steps.map { $0["name"] as? String } == ["first", "never", "nap", "answer", "kid", "detached", "both"])
            #expect(steps.map { $0["step"] as? Int } == [0, 1, 2, 3, 4, 5, 6], "no timeout slot (1000000 + slot) is listed")
            #expect(steps[0]["output"] as? String == "one")
            #expect(steps[1]["status"] as? String == "SUCCESS", "JSON keeps the contract's statuses")
            #expect(steps[1]["output"] is NSNull)
            let table = try await workspace.run("workflows", "steps", "mix-1")
            let neverLine = table.standardOutput.split(separator: "\n").first { $0.hasPrefix("1 ") }
            #expect(neverLine?.split(separator: " ").prefix(3) == ["1", "never", "SKIPPED"], "\(table)")
            #expect(steps[2]["status"] as? String == "SUCCESS")
            #expect(steps[2]["output"] is NSNull, "a sleep's output is null, not its wake-up time")
            #expect(steps[3]["output"] as? Int == 7, "a recv that timed out has its default as output")
            #expect(steps[4]["output"] as? Int == 4, "a child step's output is the child's")
            #expect((steps[5]["output"] as? [String: Any])?["workflow_id"] as? String == "mix-1-5")
            #expect(steps[6]["output"] as? [String] == ["L", "R"])
            for step in steps { #expect(step["status"] as? String == "SUCCESS", "\(step)") }

            // A parallel branch (a fragment run) is shown with the ids of its nested list.
            let coordinator = try Self.steps(try await workspace.run("workflows", "steps", "mix-1-6", "--json"))
            #expect(coordinator.map { $0["output"] as? String } == ["L", "R"])
            let branch = try Self.steps(try await workspace.run("workflows", "steps", "mix-1-6-1", "--json"))
            #expect(branch.map { $0["name"] as? String } == ["right"])

            // The engine's own rows stay available.
            let raw = try Self.steps(try await workspace.run("workflows", "steps", "mix-1", "--raw", "--json"))
            #expect(raw.contains { $0["name"] as? String == "DBOS.sleep" && $0["step"] as? Int == 2 })
            #expect(raw.contains { $0["step"] as? Int == 1_000_003 })
            #expect(raw.first { $0["step"] as? Int == 1 }?["output"] as? [String: Bool] == ["dbos_run_skipped": true])
        }
    }

    @Test func aSleepingStepIsPendingAndACancelledOneDidNotComplete() async throws {
        try await CLIWorkspace.with { workspace in
            let spec = workspace.write("nap.yaml", """
                name: nap
                steps:
                  - id: rest
                    sleep: 1h
                """)
            let background = try workspace.start(spec, "--id", "nap-1")
            defer { background.signal(SIGKILL) }
            var sleeping: [String: Any]?
            for _ in 0..<400 where sleeping == nil {
                // Exit 4 until the run exists.
                let listed = try await workspace.run("workflows", "steps", "nap-1", "--json")
                if listed.exitCode == 0 { sleeping = try Self.steps(listed).first }
                if sleeping == nil { try await Task.sleep(for: .milliseconds(25)) }
            }
            let step = try #require(sleeping, "the sleep's checkpoint was never written")
            #expect(step["name"] as? String == "rest")
            #expect(step["status"] as? String == "PENDING")
            #expect(step["completed_at"] is NSNull, "the wake-up time an hour away is not shown as a completion")
            #expect(step["output"] is NSNull)

            #expect(try await workspace.run("workflows", "cancel", "nap-1").exitCode == 0)
            #expect(await background.waitForExit(timeout: .seconds(30)) == 3)
            let cancelled = try Self.steps(try await workspace.run("workflows", "steps", "nap-1", "--json"))
            #expect(cancelled.first?["status"] as? String == "CANCELLED", "\(cancelled)")
            #expect(cancelled.first?["completed_at"] is NSNull)
        }
    }

    @Test func aRecvOrGetEventThatTimedOutWithoutDefaultIsAFailedStep() async throws {
        try await CLIWorkspace.with { workspace in
            let spec = workspace.write("waits.yaml", """
                name: waits
                steps:
                  - id: event
                    continue_on_error: true
                    get_event: {from: nobody, key: k, timeout: 100ms}
                  - id: message
                    recv: {topic: t, timeout: 100ms}
                """)
            #expect(try await workspace.run(spec, "--id", "w-1").exitCode == 1)
            let steps = try Self.steps(try await workspace.run("workflows", "steps", "w-1", "--json"))
            #expect(steps.map { $0["status"] as? String } == ["ERROR", "ERROR"])
            #expect(steps.map { $0["output"] is NSNull } == [true, true])
            #expect(steps[0]["error"] as? String == "no event 'k' from run 'nobody' within its timeout")
            #expect(steps[1]["error"] as? String == "no message on topic 't' within its timeout")
        }
    }

    @Test func aRunNotStartedFromASpecIsShownAsRecorded() async throws {
        try await PopulatedDatabase.with { database in
            let spec = try Self.steps(try await database.run("workflows", "steps", "run-success", "--json"))
            let raw = try Self.steps(try await database.run("workflows", "steps", "run-success", "--raw", "--json"))
            #expect(spec.map { $0["name"] as? String } == ["shout"])
            #expect(raw.map { $0["name"] as? String } == ["shout"])
            #expect(spec.first?["output"] as? String == raw.first?["output"] as? String)
        }
    }
}
