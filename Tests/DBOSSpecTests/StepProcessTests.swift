@testable import DBOSSpec
import DBOSTestSupport
import Foundation
import Testing

/// The files that record running `run:` commands, and what a worker stops of them: only a
/// command whose worker is gone, only while the process is the one recorded.
@Suite(.timeLimit(.minutes(1)), .enabled(if: FileManager.default.fileExists(atPath: "/proc/self/stat")))
struct StepProcessTests {
    /// A registry in a directory of its own, for runs of a made-up database.
    static func registry(in directory: TemporaryDirectory) throws -> StepProcessRegistry {
        try #require(StepProcessRegistry(
            databaseURL: "sqlite:\(directory.file("system.sqlite"))", directory: directory.file("processes")))
    }

    /// A recorded `sleep 300` running as step `slot` of run "wf" (this process its worker).
    struct RecordedSleep {
        let registry: StepProcessRegistry
        let path: String
        let recorded: StepProcessRegistry.Entry
        let task: Task<ShellCommand.Result, any Error>
    }

    /// Starts `sleep 300` as a recorded step command in a registry of its own, runs `body`, then
    /// cancels the command if it still runs and waits until its teardown is over.
    static func withRecordedSleep(slot: Int = 0, _ body: (RecordedSleep) async throws -> Void) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let registry = try registry(in: directory)
        var command = ShellCommand(script: "exec sleep 300", environment: [:], timeout: nil)
        command.registration = (registry, "wf", slot)
        let task = Task { try await command.run() }
        defer { task.cancel() }
        var files: [String] = []
        let appeared = await eventually(timeout: .seconds(10)) {
            files = ((try? FileManager.default.contentsOfDirectory(atPath: registry.directory)) ?? [])
                .filter { $0.hasSuffix(".json") }
            return files.count == 1
        }
        try #require(appeared, "the command's file did not appear")
        let path = "\(registry.directory)/\(files[0])"
        try await body(RecordedSleep(registry: registry, path: path, recorded: try entry(at: path), task: task))
        task.cancel()
        _ = try? await task.value
    }

    static func entry(at path: String) throws -> StepProcessRegistry.Entry {
        try JSONDecoder().decode(StepProcessRegistry.Entry.self, from: try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func rewrite(_ path: String, _ change: (inout StepProcessRegistry.Entry) -> Void) throws {
        var entry = try entry(at: path)
        change(&entry)
        try JSONEncoder().encode(entry).write(to: URL(fileURLWithPath: path))
    }

    @Test func aCommandRunsRecordedAndItsFileGoesWhenItEnds() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let registry = try Self.registry(in: directory)
        var command = ShellCommand(script: "echo hi", environment: [:], timeout: nil)
        command.registration = (registry, "wf", 3)
        let result = try await command.run()
        #expect(result.standardOutput == "hi\n")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: registry.directory)) ?? []).filter { $0.hasSuffix(".json") }.isEmpty)
    }

    @Test func theCommandOfAWorkerThatIsGoneIsKilledBeforeItsStepRunsAgain() async throws {
        try await Self.withRecordedSleep(slot: 3) { sleep in
            let (registry, path, recorded) = (sleep.registry, sleep.path, sleep.recorded)
            #expect(recorded.workflowID == "wf" && recorded.slot == 3)
            #expect(recorded.worker == getpid())
            #expect(StepProcessRegistry.startTime(of: recorded.processGroup) == recorded.processStart)

            // While its worker (this process) runs, nobody touches it.
            #expect(await registry.stopLeftovers(workflowID: "wf", slot: 3).isEmpty)
            #expect(registry.stopAllLeftovers().isEmpty)
            // Another step of the run, or another run, leaves it alone too.
            try Self.rewrite(path) { $0.workerStart += 1 }
            #expect(await registry.stopLeftovers(workflowID: "wf", slot: 4).isEmpty)
            #expect(await registry.stopLeftovers(workflowID: "other", slot: 3).isEmpty)

            // Its worker gone (a start time that no longer matches is another process): killed, waited for, forgotten.
            #expect(await registry.stopLeftovers(workflowID: "wf", slot: 3) == [recorded.processGroup])
            #expect(StepProcessRegistry.startTime(of: recorded.processGroup) == nil)
            #expect(!FileManager.default.fileExists(atPath: path))
            do {
                _ = try await sleep.task.value
                Issue.record("the killed command reported success")
            } catch let error as ShellCommandError {
                guard case .signaled(let signal, _) = error else {
                    Issue.record("unexpected failure: \(error)")
                    return
                }
                #expect(signal == SIGKILL)
            }
        }
    }

    @Test func aRecordedProcessIDThatNowNamesAnotherProcessIsNotKilled() async throws {
        try await Self.withRecordedSleep { sleep in
            // The worker is gone, and the recorded process ID belongs to a process started at another time.
            try Self.rewrite(sleep.path) {
                $0.workerStart += 1
                $0.processStart += 1
            }
            #expect(sleep.registry.stopAllLeftovers().isEmpty)
            #expect(await sleep.registry.stopLeftovers(workflowID: "wf", slot: 0).isEmpty)
            #expect(StepProcessRegistry.startTime(of: sleep.recorded.processGroup) != nil, "an unrelated process was killed")
            #expect(!FileManager.default.fileExists(atPath: sleep.path), "the stale file was kept")
        }
    }

    @Test func entriesOfAnotherDatabaseOrBootAreNotOursToStop() async throws {
        try await Self.withRecordedSleep { sleep in
            let other = try #require(
                StepProcessRegistry(databaseURL: "sqlite:/elsewhere.sqlite", directory: sleep.registry.directory))
            try Self.rewrite(sleep.path) { $0.workerStart += 1 }
            #expect(other.stopAllLeftovers().isEmpty)
            #expect(await other.stopLeftovers(workflowID: "wf", slot: 0).isEmpty)
            #expect(StepProcessRegistry.startTime(of: sleep.recorded.processGroup) != nil)
            #expect(FileManager.default.fileExists(atPath: sleep.path), "another database's file of a running command went")
            // Written before a restart of the machine: the processes it names are gone, the file goes,
            // whichever database's worker looks.
            try Self.rewrite(sleep.path) { $0.bootID = "another boot" }
            #expect(other.stopAllLeftovers().isEmpty)
            #expect(StepProcessRegistry.startTime(of: sleep.recorded.processGroup) != nil)
            #expect(!FileManager.default.fileExists(atPath: sleep.path))
        }
    }
}

extension StepProcessTests {
    @Test func filesInADirectoryOthersMayWriteAreIgnored() async throws {
        try await Self.withRecordedSleep { sleep in
            let (registry, path) = (sleep.registry, sleep.path)
            try Self.rewrite(path) { $0.workerStart += 1 }
            // A directory (or a file) that others may write is not trusted to name groups to kill.
            try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: registry.directory)
            #expect(registry.stopAllLeftovers().isEmpty)
            #expect(await registry.stopLeftovers(workflowID: "wf", slot: 0).isEmpty)
            try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: registry.directory)
            try FileManager.default.setAttributes([.posixPermissions: 0o666], ofItemAtPath: path)
            #expect(registry.stopAllLeftovers().isEmpty)
            #expect(StepProcessRegistry.startTime(of: sleep.recorded.processGroup) != nil)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
            #expect(registry.stopAllLeftovers() == [sleep.recorded.processGroup])
        }
    }

    @Test func aDatabaseIsKnownByItsFileAndAnInMemoryOneIsNotRecorded() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = directory.file("system.sqlite")
        _ = FileManager.default.createFile(atPath: file, contents: nil)
        let absolute = StepProcessRegistry.identity(ofDatabase: "sqlite:\(file)")
        #expect(StepProcessRegistry.identity(ofDatabase: "sqlite:///\(file)") == absolute, "sqlite:////ABSOLUTE")
        #expect(StepProcessRegistry.identity(ofDatabase: "sqlite:\(directory.path)/./system.sqlite") == absolute)
        // A relative path is the current directory's (the file need not exist yet).
        let relative = StepProcessRegistry.identity(ofDatabase: "sqlite:no-such-dir/system.sqlite")
        #expect(relative == "sqlite:" + FileManager.default.currentDirectoryPath + "/no-such-dir/system.sqlite")
        #expect(StepProcessRegistry.identity(ofDatabase: "sqlite:///no-such-dir/system.sqlite") == relative, "sqlite:///RELATIVE")
        #expect(StepProcessRegistry(databaseURL: "sqlite::memory:") == nil)
        #expect(StepProcessRegistry.identity(ofDatabase: "postgresql://u@h:5432/db") == "postgresql://u@h:5432/db")
    }
}
