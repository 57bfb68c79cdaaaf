import DBOSTestSupport
import Foundation
import Testing

/// The chaos tests' checker on hand-written logs: it must flag what it exists to catch.
@Suite struct ExecutionLedgerTests {
    private func verdict(_ lines: [String], checkpoints: [String: String]) async throws -> (ExecutionLedger, ExecutionLedger.Verdict) {
        let directory = try TemporaryDirectory(prefix: "dbos-ledger")
        defer { directory.remove() }
        for line in lines { appendLine(line, toFile: directory.file("log")) }
        let ledger = try ExecutionLedger(contentsOfFile: directory.file("log"))
        let verdict = try await ledger.verify { run in
            checkpoints.filter { $0.key.hasPrefix(run + " ") }.reduce(into: [:]) { $0[String($1.key.dropFirst(run.count + 1))] = $1.value }
        }
        return (ledger, verdict)
    }

    @Test func aRerunAfterItsProcessWasKilledIsAnExplainedDuplicate() async throws {
        let (_, verdict) = try await verdict(
            ["exec a1 r1 prepare a1.10", "kill a1", "exec a2 r1 prepare a2.20"], checkpoints: ["r1 prepare": "a2.20"])
        #expect(verdict.problems.isEmpty)
        #expect(verdict.duplicatesExplainedByKills == 1)
        #expect(verdict.checkpoints == 1)
    }

    @Test func aRerunByAProcessThatWasNotKilledIsAProblem() async throws {
        let (_, verdict) = try await verdict(
            ["exec a1 r1 charge a1.1.1", "exec b1 r1 charge b1.2.1"], checkpoints: ["r1 charge": "a1.1.1"])
        #expect(verdict.problems == [
            "r1 charge: ran again in b1 (log line 2), besides the checkpointed execution in a1 (line 1), and b1 was not killed before it"
        ])
    }

    @Test func aKillAfterTheCheckpointedExecutionStartedExplainsNothing() async throws {
        let (_, verdict) = try await verdict(
            ["exec a1 r1 charge a1.1.1", "exec a2 r1 charge a2.3.1", "kill a1"], checkpoints: ["r1 charge": "a2.3.1"])
        #expect(verdict.problems.count == 1)
        #expect(verdict.duplicatesExplainedByKills == 0)
    }

    @Test func aBodyWithoutCheckpointOrACheckpointOfNoExecutionIsAProblem() async throws {
        let (_, verdict) = try await verdict(
            ["exec a1 r1 pack a1.7", "exec a1 r2 pack a1.8"], checkpoints: ["r2 pack": "step failed: a1.9"])
        #expect(verdict.problems == [
            "r1 pack: its body ran 1 time(s) but no checkpoint exists",
            "r2 pack: the checkpoint 'step failed: a1.9' matches none of its executions [\"a1.8\"]",
        ])
    }

    @Test func workBodiesCountUntilTheirExitOrTheirProcessIsKilled() async throws {
        let (ledger, verdict) = try await verdict(
            [
                "exec a1 w1 work t1", "exec a1 w2 work t2", "kill a1", "exec b1 w3 work t3", "exec b1 w4 work t4",
                "exec a2 w1 work t5", "exec a2 w2 work t6",
            ],
            checkpoints: ["w1 work": "t5", "w2 work": "t6", "w3 work": "t3", "w4 work": "t4"])
        #expect(ledger.mostConcurrentWork == 4)
        #expect(ledger.mostConcurrentWorkInOneWorker == 2)
        #expect(verdict.problems == ["4 chaos-items runs at once, over the global limit of 3"])
    }
}
