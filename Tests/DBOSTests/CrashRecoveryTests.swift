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

    private func openRuntime(_ url: String) async throws -> DBOSRuntime {
        let runtime = try await DBOSRuntime(configuration: DBOSConfiguration(
            systemDatabaseURL: url, executorID: "observer",
            applicationVersion: "observer", recoversPendingWorkflows: false))
        try await runtime.launch()
        return runtime
    }

    @Test(arguments: Backend.allCases) func killedWorkflowResumesAtFirstUncheckpointedStep(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        let directory = setup.directory
        defer { directory.remove() }
        let databaseURL = setup.url
        _ = FileManager.default.createFile(atPath: directory.file("block"), contents: nil)

        let first = try ChildProcess(
            executable: worker, arguments: ["start", databaseURL, directory.path, "four-steps", "crash-1"],
            outputPath: directory.file("first.out"))
        let reachedStep2 = await eventually { executions(in: directory).contains("step-2") }
        #expect(reachedStep2, "worker never reached step 2: \(first.output)")
        first.kill()
        #expect(await first.waitForExit() != nil)

        let observer = try await openRuntime(databaseURL)
        let killed = try #require(try await observer.workflowStatus(id: "crash-1"))
        #expect(killed.state == .pending)
        #expect(try await observer.listSteps(workflowID: "crash-1").map(\.name) == ["step-0", "step-1"])

        try FileManager.default.removeItem(atPath: directory.file("block"))
        let second = try ChildProcess(
            executable: worker, arguments: ["recover", databaseURL, directory.path],
            outputPath: directory.file("second.out"))
        let status = await second.waitForExit()
        #expect(status == 0, "recovering worker failed: \(second.output)")

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

    @Test(arguments: Backend.allCases) func runsStartedByTheirEnqueueAreRecoveredThroughTheirQueue(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        let directory = setup.directory
        defer { directory.remove() }
        let databaseURL = setup.url
        _ = FileManager.default.createFile(atPath: directory.file("block"), contents: nil)

        // Worker concurrency 2: the first two enqueues start their runs, the third waits.
        let first = try ChildProcess(
            executable: worker, arguments: ["enqueue", databaseURL, directory.path, "q-1", "q-2", "q-3"],
            outputPath: directory.file("first.out"))
        let bothBlocked = await eventually { executions(in: directory).filter { $0.hasSuffix("step-2") }.count == 2 }
        #expect(bothBlocked, "the two runs never reached step 2: \(first.output)")
        first.kill()
        #expect(await first.waitForExit() != nil)

        let observer = try await openRuntime(databaseURL)
        for id in ["q-1", "q-2"] {
            let killed = try #require(try await observer.workflowStatus(id: id))
            #expect(killed.state == .pending)
            #expect(killed.executorID == "crash-worker")
            #expect(killed.recoveryAttempts == 1)
            #expect(try await observer.listSteps(workflowID: id).map(\.name) == ["step-0", "step-1"])
        }
        #expect(try await observer.workflowStatus(id: "q-3")?.state == .enqueued)

        try FileManager.default.removeItem(atPath: directory.file("block"))
        let second = try ChildProcess(
            executable: worker, arguments: ["recover", databaseURL, directory.path],
            outputPath: directory.file("second.out"))
        let status = await second.waitForExit()
        #expect(status == 0, "recovering worker failed: \(second.output)")

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

        let first = try ChildProcess(
            executable: worker, arguments: ["start", databaseURL, directory.path, "sleeper", "sleep-1"],
            outputPath: directory.file("first.out"))
        let observer = try await openRuntime(databaseURL)
        let sleeping = await eventually {
            (try? await observer.listSteps(workflowID: "sleep-1").contains { $0.name == "DBOS.sleep" }) ?? false
        }
        #expect(sleeping, "worker never started its sleep: \(first.output)")
        first.kill()
        #expect(await first.waitForExit() != nil)

        let sleep = try #require(try await observer.listSteps(workflowID: "sleep-1").first { $0.name == "DBOS.sleep" })
        let wakeUp = try #require(sleep.completedAt)
        // Relaunch only once the original wake-up time has passed: a sleep that restarted its
        // clock would take 4 more seconds; a durable one finishes at once.
        while Date() < wakeUp { try await Task.sleep(for: .milliseconds(100)) }
        let relaunchedAt = Date()
        let second = try ChildProcess(
            executable: worker, arguments: ["recover", databaseURL, directory.path],
            outputPath: directory.file("second.out"))
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
