@testable import DBOS
import DBOSSpec
import DBOSTestSupport
import Foundation
import Synchronization
import Testing

/// A spec run whose step result another execution of the same run overwrote first (a `--id`
/// takeover) stops as a cancelled run does: it compensates nothing and records no outcome, and the
/// other execution's outcome stands.
@Suite(.timeLimit(.minutes(1)))
struct SupersededRunTests {
    @Test func aSupersededSpecRunStopsWithoutCompensatingOrRecordingAnOutcome() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-interp")
        let spec = try SpecFiles.write("""
            name: superseded
            steps:
              - id: reserve
                run: echo reserved
                compensate:
                  run: echo released
              - id: pick
                handler: pick
              - id: ship
                run: echo shipped > '\(directory.file("shipped"))'
            """, as: "superseded.yaml", in: directory, handlers: ["pick"])
        let handlers = HandlerRegistry()
        let database = Mutex<(any SystemDatabase)?>(nil)
        handlers.register("pick") { (_: JSONValue, context: HandlerContext) async throws -> JSONValue in
            // Another execution of the run records its own result at this step while this one runs it.
            let theirs = OperationRecord(
                workflowID: context.workflowID, functionID: context.slot, functionName: context.stepID,
                output: "\"theirs\"", error: nil, childWorkflowID: nil, startedAt: Date().epochMilliseconds,
                completedAt: Date().epochMilliseconds)
            _ = try await database.withLock { $0 }!.recordOperation(theirs)
            return "mine"
        }
        let environment = try await SpecTestRuntime.make(specs: [spec], handlers: handlers, directory: directory)
        database.withLock { $0 = environment.runtime.database }
        _ = try await environment.interpreter.start(spec: spec, workflowID: "superseded-1")
        let ended = await eventually(timeout: .seconds(20)) { environment.runtime.localTask(of: "superseded-1") == nil }
        let status = try await environment.runtime.workflowStatus(id: "superseded-1")
        let steps = try await environment.runtime.listSteps(workflowID: "superseded-1")
        let kinds = environment.events.kinds(of: "superseded-1")
        let shipped = FileManager.default.fileExists(atPath: directory.file("shipped"))
        await environment.close()
        let stored = steps.map { "\($0.functionID) \($0.name) \($0.output.map { "\($0)" } ?? "-")" }
        #expect(ended)
        #expect(status?.state == .pending, "the superseded execution recorded an outcome: \(stored)")
        #expect(steps.map(\.name) == ["reserve", "pick"], "\(stored)")
        #expect(steps.last?.output == "theirs")
        #expect(!kinds.contains { if case .compensationStarted = $0 { true } else { false } }, "it compensated: \(kinds)")
        #expect(!shipped, "the step after the superseded one ran")
    }
}
