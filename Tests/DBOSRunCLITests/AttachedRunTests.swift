import DBOSTestSupport
import Foundation
import Testing

/// `workflows resume` and `workflows fork` without `--detach`, usage errors, and the payments example.
@Suite(.timeLimit(.minutes(3)))
struct AttachedRunTests {
    /// A run whose second step fails until the file `gate` exists; its first step counts its executions.
    static func gatedSpec(in workspace: CLIWorkspace) -> String {
        workspace.write("gated.yaml", """
            name: gated
            steps:
              - id: count
                env: {LOG: "\(workspace.file("count.log"))"}
                run: echo ran >> "$LOG"; echo counted
              - id: gate
                env: {GATE: "\(workspace.file("gate"))", BEFORE: "${{ steps.count.output }}"}
                run: test -f "$GATE" && echo "$BEFORE, open"
            """)
    }

    @Test func resumeContinuesAFailedRunInThisProcessFromItsLastCheckpoint() async throws {
        try await CLIWorkspace.with { workspace in
            let spec = Self.gatedSpec(in: workspace)
            let failed = try await workspace.run(spec, "--id", "gated-1")
            #expect(failed.exitCode == 1)
            #expect(failed.standardError.hasSuffix("dbos-run: error: step 'gate' (\(spec):6:5) failed: exit code 1\n"))
            workspace.write("gate", "")
            // The file changes: the resumed run still executes the text stored with it.
            workspace.write("gated.yaml", "name: gated\nsteps:\n  - {id: other, run: echo changed}\n")
            let resumed = try await workspace.run("workflows", "resume", "gated-1")
            #expect(resumed.exitCode == 0, "\(resumed)")
            #expect(resumed.standardOutput == "counted, open\n")
            #expect(resumed.standardError.contains("count: already done (checkpoint at slot 0), not run again"))
            #expect(resumed.standardError.contains("gate: done in "))
            #expect(workspace.lines(of: "count.log") == ["ran"])
        }
    }

    @Test func forkReExecutesFromTheGivenStepInThisProcess() async throws {
        try await CLIWorkspace.with { workspace in
            let spec = Self.gatedSpec(in: workspace)
            workspace.write("gate", "")
            let first = try await workspace.run(spec, "--id", "gated-2")
            #expect(first.exitCode == 0, "\(first)")
            let fromGate = try await workspace.run("workflows", "fork", "gated-2", "--from-step", "1", "--id", "fork-1")
            #expect(fromGate.exitCode == 0, "\(fromGate)")
            #expect(fromGate.standardOutput == "counted, open\n")
            #expect(workspace.lines(of: "count.log") == ["ran"])
            let fromStart = try await workspace.run("workflows", "fork", "gated-2", "--from-step", "0", "--id", "fork-2", "--json")
            #expect(fromStart.exitCode == 0, "\(fromStart)")
            #expect(fromStart.standardOutput == "\"counted, open\"\n")
            #expect(workspace.lines(of: "count.log") == ["ran", "ran"])
        }
    }

    @Test func resumeAndForkOfAnUnknownIDExitWith4() async throws {
        try await CLIWorkspace.with { workspace in
            let resume = try await workspace.run("workflows", "resume", "nobody")
            #expect(resume.exitCode == 4)
            #expect(resume.standardError == "dbos-run: error: no workflow with ID 'nobody'\n")
            let fork = try await workspace.run("workflows", "fork", "nobody", "--from-step", "0")
            #expect(fork.exitCode == 4)
            #expect(fork.standardError == "dbos-run: error: no workflow with ID 'nobody'\n")
        }
    }

    @Test func usageErrorsExitWith2OnOneLineAndHelpStillWorks() async throws {
        try await CLIWorkspace.with { workspace in
            let unknownFlag = try await workspace.run("workflows", "list", "--bogus")
            #expect(unknownFlag.exitCode == 2)
            #expect(unknownFlag.standardError == "dbos-run: error: Unknown option '--bogus'\n")
            let missing = try await workspace.run("validate")
            #expect(missing.exitCode == 2)
            #expect(missing.standardError == "dbos-run: error: Missing expected argument '<files> ...'\n")
            let noQueue = try await workspace.run("enqueue", CLIWorkspace.referenceSpec("hello.yaml"))
            #expect(noQueue.exitCode == 2)
            #expect(noQueue.standardError == "dbos-run: error: Missing expected argument '--queue <queue>'\n")
            let help = try await workspace.run("--help")
            #expect(help.exitCode == 0)
            #expect(help.standardOutput.contains("run (default)"))
            #expect(help.standardOutput.contains("worker"))
            let runHelp = try await workspace.run("run", "--help")
            #expect(runHelp.exitCode == 0)
            #expect(runHelp.standardOutput.contains("--input <json|@file>"))
        }
    }

    @Test func paymentsExampleRunsItsSagaWithTypedHandlersAndRefundsOnFailure() async throws {
        try await CLIWorkspace.with { workspace in
            let spec = CLIWorkspace.repositoryRoot + "/Examples/Payments/Specs/payments.yaml"
            let environment = ["PAYMENTS_LEDGER": workspace.file("ledger.log")]
            let valid = try await workspace.run("validate", spec, executable: "dbos-example-payments")
            #expect(valid.exitCode == 0, "\(valid)")
            let plain = try await workspace.run("validate", spec)
            #expect(plain.exitCode == 2)
            #expect(plain.standardError.contains("unknown handler 'payments.charge'"))

            let paid = try await workspace.run(
                spec, "--id", "order-1", "--input", #"{"order_id": "A1", "amount": 25}"#,
                executable: "dbos-example-payments", environment: environment)
            #expect(paid.exitCode == 0, "\(paid)")
            #expect(paid.standardOutput == #"{"charge":"ch_order-1_0","shipping":"shipped A1"}"# + "\n")

            let refunded = try await workspace.run(
                spec, "--id", "order-2", "--input", #"{"order_id": "A2", "amount": 30, "ship_fails": true}"#,
                executable: "dbos-example-payments", environment: environment)
            #expect(refunded.exitCode == 1)
            #expect(refunded.standardError.hasSuffix("dbos-run: error: step 'ship' (\(spec):24:5) failed: exit code 1: no carrier for A2\n"))
            #expect(refunded.standardError.contains("charge: compensated"))

            let declined = try await workspace.run(
                spec, "--id", "order-3", "--input", #"{"order_id": "A3", "amount": 5000}"#,
                executable: "dbos-example-payments", environment: environment)
            #expect(declined.exitCode == 1)
            #expect(declined.standardError.contains("charge: attempt 2 after error: card declined: amount 5000.0 is over the limit"))

            #expect(workspace.lines(of: "ledger.log") == [
                "charge ch_order-1_0 A1 25.0", "charge ch_order-2_0 A2 30.0", "refund ch_order-2_0 30.0",
            ])
            let badInput = try await workspace.run(
                spec, "--input", #"{"order_id": "A4"}"#, executable: "dbos-example-payments")
            #expect(badInput.exitCode == 2)
            #expect(badInput.standardError == spec + ":7:24: error: invalid input: input.amount is required\n")
        }
    }

    @Test func handlerReferenceSpecRunsThroughTheExampleProgram() async throws {
        try await CLIWorkspace.with { workspace in
            let result = try await workspace.run(
                CLIWorkspace.referenceSpec("handler.yaml"), "--id", "h-1", "--input", #"{"order_id": "B7", "amount": 2.5}"#,
                executable: "dbos-example-payments")
            #expect(result.exitCode == 0, "\(result)")
            #expect(result.standardOutput == #"{"cents":"250","note":"order B7","order":"B7"}"# + "\n")
        }
    }
}
