@testable import DBOS
import DBOSTestSupport
import Foundation
import Testing

/// Crash tests: a real worker process is SIGKILLed mid-workflow and a new one recovers the run, on both backends.
@Suite(.timeLimit(.minutes(3)))
struct CrashRecoveryTests {
    let worker = builtExecutable(named: "dbos-test-worker")

    private func executions(in directory: TemporaryDirectory) -> [String] {
        let text = (try? String(contentsOfFile: directory.file("executions.log"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }

    /// Starts the test worker with `arguments` after the database URL and the directory.
    private func startWorker(
        _ command: String, _ databaseURL: String, in directory: TemporaryDirectory, _ arguments: String...
    ) throws -> ChildProcess {
        try ChildProcess(
            executable: worker, arguments: [command, databaseURL, directory.path] + arguments,
            outputPath: directory.file(command == "recover" ? "second.out" : "first.out"))
    }

    /// A fresh database of `backend`, in a directory whose `block` file holds the steps that wait while blocked.
    private func blockedSetup(_ backend: Backend) async throws -> TestRuntime {
        let setup = try await TestRuntime(backend)
        _ = FileManager.default.createFile(atPath: setup.directory.file("block"), contents: nil)
        return setup
    }

    /// SIGKILLs a worker and waits until it is gone.
    private func kill(_ process: ChildProcess) async {
        process.kill()
        #expect(await process.waitForExit() != nil)
    }

    /// Lets the blocked steps go on, then runs a worker that recovers the killed one's runs to the end.
    private func unblockAndRecover(_ databaseURL: String, in directory: TemporaryDirectory) async throws {
        try FileManager.default.removeItem(atPath: directory.file("block"))
        let second = try startWorker("recover", databaseURL, in: directory)
        let status = await second.waitForExit()
        #expect(status == 0, "recovering worker failed: \(second.output)")
    }

    private func openRuntime(_ url: String) async throws -> DBOSRuntime {
        let runtime = try await DBOSRuntime(configuration: DBOSConfiguration(
            systemDatabaseURL: url, executorID: "observer",
            applicationVersion: "observer", recoversPendingWorkflows: false))
        try await runtime.launch()
        return runtime
    }

    @Test(arguments: Backend.allCases) func killedWorkflowResumesAtFirstUncheckpointedStep(backend: Backend) async throws {
        let setup = try await blockedSetup(backend)
        let directory = setup.directory
        defer { directory.remove() }
        let databaseURL = setup.url

        let first = try startWorker("start", databaseURL, in: directory, "four-steps", "crash-1")
        let reachedStep2 = await eventually { executions(in: directory).contains("step-2") }
        #expect(reachedStep2, "worker never reached step 2: \(first.output)")
        await kill(first)

        let observer = try await openRuntime(databaseURL)
        let killed = try #require(try await observer.workflowStatus(id: "crash-1"))
        #expect(killed.state == .pending)
        #expect(try await observer.listSteps(workflowID: "crash-1").map(\.name) == ["step-0", "step-1"])

        try await unblockAndRecover(databaseURL, in: directory)

        // Steps 0 and 1 were checkpointed before the kill and never ran again; step 2's body was
        // interrupted before its checkpoint, so it ran once more; step 3 ran once.
        #expect(executions(in: directory) == ["step-0", "step-1", "step-2", "step-2", "step-3"])
        let finished = try #require(try await observer.workflowStatus(id: "crash-1"))
        #expect(finished.state == .success)
        #expect(finished.output == .integer(60))
        #expect(finished.recoveryAttempts == 2)
        #expect(try await observer.listSteps(workflowID: "crash-1").map(\.name) == ["step-0", "step-1", "step-2", "step-3"])
        await observer.shutdown()
    }

    /// A finished step's checkpoint waits for the run's next durable operation; a run that awaits
    /// something else instead (here a file, polled) has it written by the watch within 2 ms, so a
    /// kill during that wait does not run the step again.
    @Test(arguments: Backend.allCases) func aFinishedStepsCheckpointIsStoredWhileItsRunAwaitsSomethingElse(backend: Backend) async throws {
        let setup = try await blockedSetup(backend)
        let directory = setup.directory
        defer { directory.remove() }
        let databaseURL = setup.url

        let first = try startWorker("start", databaseURL, in: directory, "step-then-wait", "wait-1")
        let observer = try await openRuntime(databaseURL)
        let stored = await eventually {
            (try? await observer.listSteps(workflowID: "wait-1").map(\.name)) == ["before"]
        }
        #expect(stored, "the step's checkpoint was not stored while its run waited: \(first.output)")
        await kill(first)

        try await unblockAndRecover(databaseURL, in: directory)
        #expect(executions(in: directory) == ["before", "after"], "the stored step ran again after the kill")
        let finished = try #require(try await observer.workflowStatus(id: "wait-1"))
        #expect(finished.state == .success)
        #expect(finished.output == .string("waited"))
        #expect(try await observer.listSteps(workflowID: "wait-1").map(\.name) == ["before", "after"])
        await observer.shutdown()
    }

    @Test(arguments: Backend.allCases) func runsStartedByTheirEnqueueAreRecoveredThroughTheirQueue(backend: Backend) async throws {
        let setup = try await blockedSetup(backend)
        let directory = setup.directory
        defer { directory.remove() }
        let databaseURL = setup.url

        // Worker concurrency 2: the first two enqueues start their runs, the third waits.
        let first = try startWorker("enqueue", databaseURL, in: directory, "q-1", "q-2", "q-3")
        let bothBlocked = await eventually { executions(in: directory).filter { $0.hasSuffix("step-2") }.count == 2 }
        #expect(bothBlocked, "the two runs never reached step 2: \(first.output)")
        await kill(first)

        let observer = try await openRuntime(databaseURL)
        for id in ["q-1", "q-2"] {
            let killed = try #require(try await observer.workflowStatus(id: id))
            #expect(killed.state == .pending)
            #expect(killed.executorID == "crash-worker")
            #expect(killed.recoveryAttempts == 1)
            #expect(try await observer.listSteps(workflowID: id).map(\.name) == ["step-0", "step-1"])
        }
        #expect(try await observer.workflowStatus(id: "q-3")?.state == .enqueued)

        try await unblockAndRecover(databaseURL, in: directory)

        // Each killed run went back on its queue and resumed after its checkpoints: only step 2,
        // interrupted, ran twice. The waiting run ran once.
        let lines = executions(in: directory)
        for id in ["q-1", "q-2"] {
            #expect(lines.filter { $0.hasPrefix("\(id) ") } == ["step-0", "step-1", "step-2", "step-2", "step-3"].map { "\(id) \($0)" })
            let finished = try #require(try await observer.workflowStatus(id: id))
            #expect(finished.state == .success)
            #expect(finished.output == .integer(60))
            #expect(finished.recoveryAttempts == 2)
        }
        #expect(lines.filter { $0.hasPrefix("q-3 ") } == ["step-0", "step-1", "step-2", "step-3"].map { "q-3 \($0)" })
        #expect(try await observer.workflowStatus(id: "q-3")?.state == .success)
        await observer.shutdown()
    }

    @Test(arguments: Backend.allCases) func killedSleepResumesWithTheRemainingTimeOnly(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        let directory = setup.directory
        defer { directory.remove() }
        let databaseURL = setup.url

        let first = try startWorker("start", databaseURL, in: directory, "sleeper", "sleep-1")
        let observer = try await openRuntime(databaseURL)
        let sleeping = await eventually {
            (try? await observer.listSteps(workflowID: "sleep-1").contains { $0.name == "DBOS.sleep" }) ?? false
        }
        #expect(sleeping, "worker never started its sleep: \(first.output)")
        await kill(first)

        let sleep = try #require(try await observer.listSteps(workflowID: "sleep-1").first { $0.name == "DBOS.sleep" })
        let wakeUp = try #require(sleep.completedAt)
        // Relaunch only once the original wake-up time has passed: a sleep that restarted its
        // clock would take 4 more seconds; a durable one finishes at once.
        while Date() < wakeUp { try await Task.sleep(for: .milliseconds(100)) }
        let relaunchedAt = Date()
        let second = try startWorker("recover", databaseURL, in: directory)
        #expect(await second.waitForExit() == 0, "recovering worker failed: \(second.output)")

        let finished = try #require(try await observer.workflowStatus(id: "sleep-1"))
        #expect(finished.state == .success)
        let completedAt = try #require(finished.completedAt)
        #expect(completedAt >= wakeUp)
        #expect(completedAt.timeIntervalSince(relaunchedAt) < 3.5, "the recovered sleep restarted its clock")
        let steps = try await observer.listSteps(workflowID: "sleep-1")
        #expect(steps.first { $0.name == "DBOS.sleep" }?.completedAt == wakeUp)
        #expect(executions(in: directory) == ["before", "after"])
        await observer.shutdown()
    }
}
