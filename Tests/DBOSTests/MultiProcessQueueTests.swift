import DBOS
import DBOSTestSupport
import Foundation
import Testing

/// Two worker processes share one queue and one schedule through the same system database, on both backends.
@Suite(.timeLimit(.minutes(3)))
struct MultiProcessQueueTests {
    let worker = builtExecutable(named: "dbos-test-worker")

    private func lines(in directory: TemporaryDirectory) -> [[String]] {
        let text = (try? String(contentsOfFile: directory.file("executions.log"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
    }

    @Test(arguments: Backend.allCases) func twoWorkersShareAQueueWithinItsGlobalLimitAndRunEachRunOnce(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        let directory = setup.directory
        defer { directory.remove() }
        let databaseURL = setup.url
        let client = try await DBOSClient(systemDatabaseURL: databaseURL, pollingInterval: .milliseconds(50))
        // Create the schema before the workers race to.
        var handles: [WorkflowHandle<JSONValue>] = []
        for index in 0..<24 {
            handles.append(try await client.enqueue(
                workflowName: "tracked", queueName: "shared", input: index, options: WorkflowOptions(workflowID: "q\(index)")))
        }
        let workers = try ["worker-a", "worker-b"].map { executor in
            try ChildProcess(
                executable: worker, arguments: ["serve", databaseURL, directory.path, executor],
                outputPath: directory.file("\(executor).out"))
        }
        for handle in handles { #expect(try await handle.result() == .integer(1)) }
        _ = FileManager.default.createFile(atPath: directory.file("stop"), contents: nil)
        for process in workers { #expect(await process.waitForExit() == 0, "\(process.output)") }

        let runs = lines(in: directory).filter { $0.count == 4 && $0[0].hasPrefix("q") }
        let ids = runs.map { $0[0] }
        #expect(ids.count == 24, "every run executed")
        #expect(Set(ids).count == 24, "no run executed twice")
        let intervals = runs.map {
            (Date(timeIntervalSince1970: Double($0[2])! / 1000), Date(timeIntervalSince1970: Double($0[3])! / 1000))
        }
        #expect(IntervalLog.maximumOverlap(intervals) <= 3, "global concurrency exceeded")
        for executor in ["worker-a", "worker-b"] {
            let own = runs.filter { $0[1] == executor }.map {
                (Date(timeIntervalSince1970: Double($0[2])! / 1000), Date(timeIntervalSince1970: Double($0[3])! / 1000))
            }
            #expect(IntervalLog.maximumOverlap(own) <= 2, "worker concurrency of \(executor) exceeded")
        }
        #expect(Set(runs.map { $0[1] }).count == 2, "both workers took part")
        await client.close()
    }

    @Test(arguments: Backend.allCases) func cronTicksRunOnceAcrossTwoWorkers(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        let directory = setup.directory
        defer { directory.remove() }
        let databaseURL = setup.url
        let client = try await DBOSClient(systemDatabaseURL: databaseURL)
        let workers = try ["cron-a", "cron-b"].map { executor in
            try ChildProcess(
                executable: worker, arguments: ["serve", databaseURL, directory.path, executor],
                outputPath: directory.file("\(executor).out"))
        }
        let ticked = await eventually(timeout: .seconds(20)) {
            self.lines(in: directory).filter { $0.first == "tick" }.count >= 4
        }
        #expect(ticked)
        _ = FileManager.default.createFile(atPath: directory.file("stop"), contents: nil)
        for process in workers { #expect(await process.waitForExit() == 0, "\(process.output)") }

        let ticks = lines(in: directory).filter { $0.first == "tick" }.map { $0[1] }
        #expect(ticks.count == Set(ticks).count, "a tick ran twice: \(ticks)")
        #expect(ticks.allSatisfy { $0.hasPrefix("sched-every-second-") })
        let stored = try await client.listWorkflows(WorkflowFilter(name: "ticked"))
        #expect(Set(stored.map(\.workflowID)).count == stored.count)
        #expect(stored.count >= ticks.count)
        await client.close()
    }
}
