import DBOS
import DBOSRunCLI
import DBOSTestSupport
import Foundation
import Testing

/// `dbos-run workflows list|get|steps|cancel|resume|fork`, run as the built binary against a
/// database a real runtime filled.
@Suite(.timeLimit(.minutes(3)))
struct WorkflowsCommandTests {
    static let workflowKeys: Set<String> = [
        "workflow_id", "name", "status", "input", "output", "error", "queue", "executor_id",
        "created_at", "updated_at", "attempts",
    ]
    static let stepKeys: Set<String> = ["step", "name", "status", "output", "error", "started_at", "completed_at"]

    // MARK: list

    @Test func listPrintsEveryRunNewestFirstAsWorkflowObjectsWithExactlyTheContractKeys() async throws {
        try await PopulatedDatabase.with { database in
            let result = try await database.run("workflows", "list", "--json")
            #expect(result.exitCode == 0, "\(result)")
            #expect(result.standardError == "")
            #expect(result.standardOutput.hasPrefix("[{\"workflow_id\":"), "fields print in the contract's order")
            let runs = try #require(try result.outputJSON() as? [[String: Any]])
            #expect(runs.map { $0["workflow_id"] as? String } == ["run-events", "run-waiting", "run-failure", "run-success"])
            for run in runs {
                #expect(Set(run.keys) == Self.workflowKeys)
                #expect(run["name"] as? String == PopulatedDatabase.workflowName)
                #expect(Self.isRFC3339(run["created_at"]), "created_at: \(run["created_at"] ?? "missing")")
                #expect(Self.isRFC3339(run["updated_at"]), "updated_at: \(run["updated_at"] ?? "missing")")
            }
            #expect(runs.map { $0["status"] as? String } == ["SUCCESS", "PENDING", "ERROR", "SUCCESS"])
        }
    }

    @Test func listFiltersByStatusNameQueueAndLimit() async throws {
        try await PopulatedDatabase.with { database in
            let succeeded = try await database.run("workflows", "list", "--status", "SUCCESS", "--json")
            #expect(try Self.ids(succeeded) == ["run-events", "run-success"])
            let failed = try await database.run("workflows", "list", "--status", "error", "--json")
            #expect(try Self.ids(failed) == ["run-failure"], "the status is matched in any letter case")
            let newest = try await database.run("workflows", "list", "--limit", "1", "--json")
            #expect(try Self.ids(newest) == ["run-events"])
            let byName = try await database.run("workflows", "list", "--name", PopulatedDatabase.workflowName, "--json")
            #expect(try Self.ids(byName).count == 4)
            let otherName = try await database.run("workflows", "list", "--name", "no-such-workflow", "--json")
            #expect(otherName.exitCode == 0)
            #expect(otherName.standardOutput == "[]\n")
            let onQueue = try await database.run("workflows", "list", "--queue", "no-such-queue", "--json")
            #expect(onQueue.standardOutput == "[]\n")
        }
    }

    @Test func listRejectsAnUnknownStatusWithExitCode2AndTheAcceptedOnes() async throws {
        try await PopulatedDatabase.with { database in
            let result = try await database.run("workflows", "list", "--status", "FINISHED")
            #expect(result.exitCode == 2)
            #expect(result.standardOutput == "")
            #expect(result.standardError == """
                dbos-run: error: unknown status 'FINISHED' for --status; expected one of PENDING, ENQUEUED, SUCCESS, \
                ERROR, CANCELLED, MAX_RECOVERY_ATTEMPTS_EXCEEDED

                """)
        }
    }

    @Test func listWithoutJSONPrintsAnAlignedTable() async throws {
        try await PopulatedDatabase.with { database in
            let result = try await database.run("workflows", "list")
            #expect(result.exitCode == 0)
            let lines = result.standardOutput.split(separator: "\n").map(String.init)
            #expect(lines.count == 5)
            let header = try #require(lines.first)
            #expect(header.split(separator: " ").map(String.init) == ["ID", "NAME", "STATUS", "QUEUE", "CREATED"])
            #expect(lines[1].hasPrefix("run-events "))
            #expect(lines[3].split(separator: " ").map(String.init).prefix(3) == ["run-failure", "cli-demo", "ERROR"])
            // Every column starts at the same position on every line.
            let statusColumn = try #require(header.range(of: "STATUS")).lowerBound.utf16Offset(in: header)
            for line in lines.dropFirst() {
                let index = line.index(line.startIndex, offsetBy: statusColumn)
                #expect(line[..<index].hasSuffix("  "), "'\(line)' is not aligned")
                #expect(line[index] != " ")
            }
        }
    }

    // MARK: get

    @Test func getPrintsASucceededRunWithItsInputOutputAndExecutor() async throws {
        try await PopulatedDatabase.with { database in
            let result = try await database.run("workflows", "get", "run-success", "--json")
            #expect(result.exitCode == 0, "\(result)")
            let run = try #require(try result.outputJSON() as? [String: Any])
            #expect(Set(run.keys) == Self.workflowKeys)
            #expect(run["workflow_id"] as? String == "run-success")
            #expect(run["status"] as? String == "SUCCESS")
            #expect(run["input"] as? [String: String] == ["mode": "success", "name": "world"])
            #expect(run["output"] as? String == "HELLO WORLD")
            #expect(run["error"] is NSNull)
            #expect(run["queue"] is NSNull)
            #expect(run["executor_id"] as? String == PopulatedDatabase.executorID)
            #expect(run["attempts"] as? Int == 1)
        }
    }

    @Test func getPrintsAFailedRunsErrorMessage() async throws {
        try await PopulatedDatabase.with { database in
            let result = try await database.run("workflows", "get", "run-failure", "--json")
            let run = try #require(try result.outputJSON() as? [String: Any])
            #expect(run["status"] as? String == "ERROR")
            #expect(run["output"] is NSNull)
            #expect((run["error"] as? String)?.contains("the bomb went off") == true, "error: \(run["error"] ?? "missing")")
        }
    }

    @Test func getWithoutJSONPrintsOneFieldPerLineWithStringsBare() async throws {
        try await PopulatedDatabase.with { database in
            let result = try await database.run("workflows", "get", "run-success")
            #expect(result.exitCode == 0)
            let lines = result.standardOutput.split(separator: "\n").map { $0.split(separator: " ", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) } }
            #expect(lines.contains(["ID", "run-success"]))
            #expect(lines.contains(["Status", "SUCCESS"]))
            #expect(lines.contains(["Output", "HELLO WORLD"]))
        }
    }

    @Test func getOfAnUnknownIDExitsWith4() async throws {
        try await PopulatedDatabase.with { database in
            let result = try await database.run("workflows", "get", "no-such-run")
            #expect(result.exitCode == 4)
            #expect(result.standardOutput == "")
            #expect(result.standardError == "dbos-run: error: no workflow with ID 'no-such-run'\n")
        }
    }

    // MARK: steps

    @Test func stepsListsEachCheckpointWithItsStatusOutputOrError() async throws {
        try await PopulatedDatabase.with { database in
            let result = try await database.run("workflows", "steps", "run-failure", "--json")
            #expect(result.exitCode == 0, "\(result)")
            #expect(result.standardOutput.hasPrefix("[{\"step\":0,"))
            let steps = try #require(try result.outputJSON() as? [[String: Any]])
            #expect(steps.count == 2)
            for step in steps { #expect(Set(step.keys) == Self.stepKeys) }
            #expect(steps[0]["step"] as? Int == 0)
            #expect(steps[0]["name"] as? String == "prepare")
            #expect(steps[0]["status"] as? String == "SUCCESS")
            #expect(steps[0]["output"] as? String == "prepared")
            #expect(steps[0]["error"] is NSNull)
            #expect(Self.isRFC3339(steps[0]["started_at"]))
            #expect(Self.isRFC3339(steps[0]["completed_at"]))
            #expect(steps[1]["step"] as? Int == 1)
            #expect(steps[1]["name"] as? String == "explode")
            #expect(steps[1]["status"] as? String == "ERROR")
            #expect(steps[1]["output"] is NSNull)
            #expect(steps[1]["error"] as? String == "the bomb went off")
        }
    }

    @Test func stepsWithoutJSONPrintsATable() async throws {
        try await PopulatedDatabase.with { database in
            let result = try await database.run("workflows", "steps", "run-success")
            #expect(result.exitCode == 0)
            let lines = result.standardOutput.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
            #expect(lines.first == ["STEP", "NAME", "STATUS", "STARTED", "COMPLETED", "RESULT"])
            #expect(lines.count == 2)
            #expect(lines.last.map { [$0[0], $0[1], $0[2]] } == ["0", "shout", "SUCCESS"])
            #expect(lines.last?.suffix(2) == ["HELLO", "WORLD"])
        }
    }

    @Test func stepsOfAnUnknownIDExitsWith4() async throws {
        try await PopulatedDatabase.with { database in
            let result = try await database.run("workflows", "steps", "no-such-run", "--json")
            #expect(result.exitCode == 4)
            #expect(result.standardError == "dbos-run: error: no workflow with ID 'no-such-run'\n")
        }
    }

    // MARK: cancel

    @Test func cancelStopsAWaitingRunAndLeavesItCancelled() async throws {
        try await PopulatedDatabase.with { database in
            let result = try await database.run("workflows", "cancel", "run-waiting")
            #expect(result.exitCode == 0, "\(result)")
            #expect(result.standardOutput == "cancelled workflow 'run-waiting'\n")
            #expect(try await database.runtime.workflowStatus(id: "run-waiting")?.state == .cancelled)
            await #expect(throws: WorkflowError.self) { try await database.waiting.result() }
        }
    }

    @Test func cancelOfAFinishedRunChangesNothingAndSucceeds() async throws {
        try await PopulatedDatabase.with { database in
            let result = try await database.run("workflows", "cancel", "run-success")
            #expect(result.exitCode == 0)
            #expect(try await database.runtime.workflowStatus(id: "run-success")?.state == .success)
        }
    }

    @Test func cancelOfAnUnknownIDExitsWith4() async throws {
        try await PopulatedDatabase.with { database in
            let result = try await database.run("workflows", "cancel", "no-such-run")
            #expect(result.exitCode == 4)
            #expect(result.standardError == "dbos-run: error: no workflow with ID 'no-such-run'\n")
        }
    }

    // MARK: resume

    @Test func resumeDetachedLeavesAFailedRunEnqueuedAndPrintsItsID() async throws {
        try await PopulatedDatabase.with { database in
            await database.stopRuntime()
            let result = try await database.run("workflows", "resume", "run-failure", "--detach")
            #expect(result.exitCode == 0, "\(result)")
            #expect(result.standardOutput == "run-failure\n")
            let run = try #require(try await database.run("workflows", "get", "run-failure", "--json").outputJSON() as? [String: Any])
            #expect(run["status"] as? String == "ENQUEUED")
        }
    }

    @Test func resumeOfASucceededRunExitsWith2AndTheEngineMessage() async throws {
        try await PopulatedDatabase.with { database in
            let result = try await database.run("workflows", "resume", "run-success", "--detach")
            #expect(result.exitCode == 2)
            #expect(result.standardOutput == "")
            #expect(result.standardError == "dbos-run: error: \(WorkflowError.cannotResume(id: "run-success", state: .success))\n")
        }
    }

    @Test func resumeOfAnUnknownIDExitsWith4() async throws {
        try await PopulatedDatabase.with { database in
            let result = try await database.run("workflows", "resume", "no-such-run", "--detach")
            #expect(result.exitCode == 4)
            #expect(result.standardError == "dbos-run: error: no workflow with ID 'no-such-run'\n")
        }
    }

    @Test func resumeInThisProcessOfARunWithoutStoredSpecTextIsRefusedWithExit2() async throws {
        try await PopulatedDatabase.with { database in
            let result = try await database.run("workflows", "resume", "run-failure")
            #expect(result.exitCode == 2)
            #expect(result.standardError.hasPrefix("dbos-run: error: workflow 'run-failure' has no spec text stored with it"))
            #expect(result.standardError.filter { $0 == "\n" }.count == 1)
        }
    }

    // MARK: fork

    @Test func forkDetachedCreatesAnEnqueuedRunWithTheCheckpointsBeforeTheStep() async throws {
        try await PopulatedDatabase.with { database in
            await database.stopRuntime()
            let result = try await database.run("workflows", "fork", "run-failure", "--from-step", "1", "--id", "forked-1", "--detach")
            #expect(result.exitCode == 0, "\(result)")
            #expect(result.standardOutput == "forked-1\n")
            let run = try #require(try await database.run("workflows", "get", "forked-1", "--json").outputJSON() as? [String: Any])
            #expect(run["status"] as? String == "ENQUEUED")
            #expect(run["input"] as? [String: String] == ["mode": "fail"])
            let steps = try #require(try await database.run("workflows", "steps", "forked-1", "--json").outputJSON() as? [[String: Any]])
            #expect(steps.map { $0["name"] as? String } == ["prepare"])
        }
    }

    @Test func forkWithoutAnIDPrintsTheNewGeneratedID() async throws {
        try await PopulatedDatabase.with { database in
            await database.stopRuntime()
            let result = try await database.run("workflows", "fork", "run-success", "--from-step", "0", "--detach")
            #expect(result.exitCode == 0, "\(result)")
            let newID = result.standardOutput.trimmingCharacters(in: .newlines)
            #expect(!newID.isEmpty && newID != "run-success")
            let run = try #require(try await database.run("workflows", "get", newID, "--json").outputJSON() as? [String: Any])
            #expect(run["status"] as? String == "ENQUEUED")
        }
    }

    @Test func forkOfAnUnknownIDExitsWith4() async throws {
        try await PopulatedDatabase.with { database in
            let result = try await database.run("workflows", "fork", "no-such-run", "--from-step", "0", "--detach")
            #expect(result.exitCode == 4)
            #expect(result.standardError == "dbos-run: error: no workflow with ID 'no-such-run'\n")
        }
    }

    @Test func forkInThisProcessOfARunWithoutStoredSpecTextIsRefusedWithExit2() async throws {
        try await PopulatedDatabase.with { database in
            let result = try await database.run("workflows", "fork", "run-success", "--from-step", "0")
            #expect(result.exitCode == 2)
            #expect(result.standardError.hasPrefix("dbos-run: error: workflow 'run-success' has no spec text stored with it"))
        }
    }

    // MARK: Helpers

    static func ids(_ result: CLIResult) throws -> [String] {
        let runs = try #require(try result.outputJSON() as? [[String: Any]], "\(result)")
        return runs.compactMap { $0["workflow_id"] as? String }
    }

    static func isRFC3339(_ value: Any?) -> Bool {
        guard let text = value as? String else { return false }
        return (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text)) != nil
    }
}
