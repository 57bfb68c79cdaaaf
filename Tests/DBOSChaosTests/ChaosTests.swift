import DBOS
import DBOSTestSupport
import Foundation
import Testing

/// The promise of the project, tested by trying hard to break it: two worker processes serve a mixed
/// workload (shell and handler steps, durable sleeps, messages, a map on a limited queue, child runs, a
/// saga designed to fail) while workers are SIGKILLed at random, or while PostgreSQL is restarted.
/// Afterwards every run has its designed outcome, every step body ran exactly once after its checkpoint
/// existed, every message was received exactly once, and no queue limit was exceeded. Docs/Chaos.md has
/// the long form.
@Suite(.serialized, .timeLimit(.minutes(ChaosSettings.timeLimitMinutes)))
struct ChaosTests {
    @Test func killedWorkersLoseNothingOnSQLite() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-chaos")
        try await runChaos("sqlite worker kills", databaseURL: "sqlite:" + directory.file("system.sqlite"), in: directory) {
            random, workers, workload in
            try await killWorkers(random: &random, workers: workers, workload: &workload)
        }
    }

    @Test func killedWorkersLoseNothingOnPostgres() async throws {
        let server = try PostgresServer.start()
        defer { server.stop() }
        let directory = try TemporaryDirectory(prefix: "dbos-chaos")
        try await runChaos("postgres worker kills", databaseURL: server.url(database: "chaos"), in: directory) {
            random, workers, workload in
            try await killWorkers(random: &random, workers: workers, workload: &workload)
        }
    }

    @Test func postgresRestartedFastAndImmediatelyUnderLoadLosesNothing() async throws {
        // Immediate shutdowns are crashes: only commits flushed to the WAL survive them, as in production.
        let server = try PostgresServer.start(settings: ["synchronous_commit": "on"])
        defer { server.stop() }
        let directory = try TemporaryDirectory(prefix: "dbos-chaos")
        try await runChaos("postgres restarts", databaseURL: server.url(database: "chaos"), in: directory) {
            random, workers, workload in
            let modes = (Array(repeating: PostgresServer.ShutdownMode.fast, count: ChaosSettings.restartsPerMode)
                + Array(repeating: .immediate, count: ChaosSettings.restartsPerMode)).shuffled(using: &random)
            for mode in modes {
                try await Task.sleep(for: .milliseconds(Int.random(in: 500...2500, using: &random)))
                try await workers.checkBothRunning()
                if try await workload.unfinishedRuns() < ChaosWorkload.ordersPerWave { try await workload.enqueueWave() }
                try server.restart(mode: mode)
            }
            return "restarts=\(modes.count) (fast \(ChaosSettings.restartsPerMode), immediate \(ChaosSettings.restartsPerMode))"
        }
    }

    /// SIGKILLs a random worker at random moments and restarts it, `ChaosSettings.kills` times, keeping
    /// waves of runs coming.
    private func killWorkers(random: inout SplitMix64, workers: ChaosWorkers, workload: inout ChaosWorkload) async throws -> String {
        for _ in 0..<ChaosSettings.kills {
            try await Task.sleep(for: .milliseconds(Int.random(in: 150...1200, using: &random)))
            try await workers.checkBothRunning()
            if try await workload.unfinishedRuns() < ChaosWorkload.ordersPerWave { try await workload.enqueueWave() }
            try await workers.killAndRestart(Bool.random(using: &random) ? "a" : "b")
        }
        return "kills=\(await workers.killed.count)"
    }

    /// Starts two workers on `databaseURL` and two waves of runs, applies `chaos` (which returns its
    /// counts for the summary), then lets everything finish and verifies. The workers never outlive it.
    private func runChaos(
        _ label: String, databaseURL: String, in directory: TemporaryDirectory,
        chaos: (inout SplitMix64, ChaosWorkers, inout ChaosWorkload) async throws -> String
    ) async throws {
        var random = SplitMix64(seed: ChaosSettings.seed)
        let started = ContinuousClock.now
        let client = try await DBOSClient(systemDatabaseURL: databaseURL, pollingInterval: .milliseconds(100))
        let workers = ChaosWorkers(directory: directory, databaseURL: databaseURL)
        var workload = ChaosWorkload(client: client)
        do {
            try await workers.startBoth()
            try await workload.enqueueWave()
            try await workload.enqueueWave()
            let counts = try await chaos(&random, workers, &workload)
            try await finishAndVerify(label, chaos: counts, workload: workload, workers: workers, started: started)
        } catch {
            await workers.killAll()
            await client.close()
            throw error
        }
        await client.close()
    }

    /// Waits for every run to finish, stops the workers, checks everything and prints one summary line.
    private func finishAndVerify(
        _ label: String, chaos: String, workload: ChaosWorkload, workers: ChaosWorkers, started: ContinuousClock.Instant
    ) async throws {
        let chaosEnded = ContinuousClock.now
        let finished = try await eventually(timeout: ChaosSettings.drainTimeout) {
            try await workers.checkBothRunning()
            return try await workload.unfinishedRuns() == 0
        }
        let stopProblems = await workers.stop()
        #expect(finished, "runs still unfinished \(ChaosSettings.drainTimeout) after the chaos (seed \(ChaosSettings.seed))")
        let (outcomeProblems, messages) = try await workload.checkOutcomes()
        let ledger = try ExecutionLedger(contentsOfFile: workers.logPath)
        let verdict = try await ledger.verify { ExecutionLedger.checkpointTexts(try await workload.client.listSteps(workflowID: $0)) }
        let problems = stopProblems + outcomeProblems + verdict.problems
            + (verdict.checkpoints == workload.expectedCheckpoints ? [] : [
                "\(verdict.checkpoints) step bodies ran, \(workload.expectedCheckpoints) expected"
            ])
        print(
            "chaos \(label): seed=\(ChaosSettings.seed) \(chaos) waves=\(workload.waves) runs=\(workload.runCount) "
                + "step executions=\(ledger.executions.count) checkpoints=\(verdict.checkpoints) "
                + "duplicates explained by kills=\(verdict.duplicatesExplainedByKills) messages=\(messages)/\(workload.orders.count) "
                + "max chaos-items concurrency=\(ledger.mostConcurrentWork)/\(ExecutionLedger.globalLimit) "
                + "(one worker \(ledger.mostConcurrentWorkInOneWorker)/\(ExecutionLedger.workerLimit)) "
                + "chaos \(seconds(chaosEnded - started)) s, drain \(seconds(ContinuousClock.now - chaosEnded)) s "
                + "problems=\(problems.count)")
        #expect(
            problems.isEmpty && finished,
            "seed \(ChaosSettings.seed), worker output and log kept in \(workers.directory.path):\n\(problems.prefix(30).joined(separator: "\n"))")
        // The files are kept for a failure's investigation, removed otherwise.
        if problems.isEmpty && finished { workers.directory.remove() }
    }

    private func seconds(_ duration: Duration) -> String {
        String(format: "%.1f", Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
    }
}
