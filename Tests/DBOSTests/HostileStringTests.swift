import DBOS
import DBOSTestSupport
import Foundation
import Testing

/// SQL and shell metacharacters, NUL bytes, combining characters and very long strings as workflow IDs,
/// topics, event keys, step outputs and values, through the Swift API on both backends: each one round-trips
/// exactly or (a NUL in a PostgreSQL text column) is refused with one clear error, and a run stored before
/// stays exactly as it was.
@Suite struct HostileStringTests {
    /// The strings, each with a name for the test's messages.
    static let hostile: [(name: String, text: String)] = [
        ("SQL injection", "x'); DROP TABLE workflow_status; --"),
        ("LIKE wildcards", "%_%"),
        ("backslashes", #"a\'b\\c\"#),
        ("double quotes", #""quoted" "#),
        ("shell", "$(touch /tmp/dbos-pwned) `id`; rm -rf / | cat & >x"),
        ("control characters", "line1\nline2\r\n\ttab\u{7F}"),
        ("combining characters", "e\u{301}\r\n\u{1F469}\u{200D}\u{1F4BB}"),
        ("long", String(repeating: "0123456789", count: 350)),
    ]

    /// A NUL in the middle: SQLite stores it; PostgreSQL text cannot, and must say so rather than cut the value.
    static let withNUL = "before\u{0}after"

    /// 100 000 characters: SQLite stores it as an ID; PostgreSQL too, but cannot notify a message to it.
    static let veryLong = String(repeating: "0123456789", count: 10_000)

    /// Everything a run leaves behind that a later hostile operation must not change.
    struct StoredRun: Equatable {
        var state: WorkflowState
        var input: JSONValue?
        var output: JSONValue?
        var steps: [String]
        var event: JSONValue?

        init(id: String, key: String, in runtime: DBOSRuntime) async throws {
            let status = try #require(try await runtime.workflowStatus(id: id))
            state = status.state
            input = status.input
            output = status.output
            steps = try await runtime.listSteps(workflowID: id).map { "\($0.functionID) \($0.name) \($0.output?.jsonText ?? "-")" }
            event = try await runtime.getEvent(workflowID: id, key: key, timeout: .zero)
        }
    }

    /// A workflow that uses its input as an event key and a topic, and returns what it stored and received.
    static func registerEcho(in runtime: DBOSRuntime) throws -> Workflow<String, [String]> {
        try runtime.register("echo") { (ctx: WorkflowContext, text: String) -> [String] in
            let stepped: String = try await ctx.runStep(text.count > 200 ? "long" : text) { text }
            try await ctx.setEvent(key: text, value: text)
            let received = try await ctx.recv(String.self, topic: text, timeout: .seconds(60)) ?? "<nothing>"
            return [stepped, received]
        }
    }

    @Test(arguments: Backend.allCases) func hostileStringsRoundTripExactlyAndLeaveStoredRunsIntact(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            try Self.registerEcho(in: runtime)
        } test: { runtime, echo in
            let handle = try await runtime.startWorkflow(echo, input: "plain", options: WorkflowOptions(workflowID: "baseline"))
            try await runtime.send(to: "baseline", topic: "plain", message: "plain message")
            #expect(try await handle.result() == ["plain", "plain message"])
            let baseline = try await StoredRun(id: "baseline", key: "plain", in: runtime)

            for (name, text) in Self.hostile {
                let handle = try await runtime.startWorkflow(echo, input: text, options: WorkflowOptions(workflowID: text))
                try await runtime.send(to: text, topic: text, message: text)
                #expect(try await handle.result() == [text, text], "\(name)")
                let status = try await runtime.workflowStatus(id: text)
                #expect(status?.workflowID == text, "\(name)")
                #expect(status?.input == .string(text), "\(name)")
                #expect(try await runtime.getEvent(workflowID: text, key: text, as: String.self, timeout: .zero) == text, "\(name)")
                // The ID is a literal prefix, never a pattern: '%' and '_' match only themselves.
                let matches = try await runtime.listWorkflows(WorkflowFilter(workflowIDPrefix: text))
                #expect(matches.map(\.workflowID) == [text], "\(name)")
                #expect(try await StoredRun(id: "baseline", key: "plain", in: runtime) == baseline, "after \(name)")
            }
            #expect(!FileManager.default.fileExists(atPath: "/tmp/dbos-pwned"), "nothing ran the shell")
            let prefixed = try await runtime.listWorkflows(WorkflowFilter(workflowIDPrefix: "%"))
            #expect(prefixed.map(\.workflowID) == ["%_%"])
            #expect(try await runtime.listWorkflows().count == Self.hostile.count + 1)
        }
    }

    @Test(arguments: Backend.allCases) func aRunWithAnIDOverPostgreSQLsNotificationLimitStillRecordsItsOutcome(backend: Backend) async throws {
        // The outcome's UPDATE also notifies waiters on PostgreSQL, whose payload limit is 8000 bytes:
        // the notice is left out for such an ID, never the outcome.
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register("count") { (ctx: WorkflowContext, text: String) -> Int in
                try await ctx.runStep("count") { text.count }
            }
        } test: { runtime, count in
            let handle = try await runtime.startWorkflow(count, input: Self.veryLong, options: WorkflowOptions(workflowID: Self.veryLong))
            #expect(try await handle.result() == Self.veryLong.count)
            #expect(try await runtime.workflowStatus(id: Self.veryLong)?.state == .success)
            // Waiting from outside, without the in-memory outcome: the stored row says SUCCESS.
            let restarted = runtime.retrieveWorkflow(id: Self.veryLong, as: Int.self)
            #expect(try await restarted.result() == Self.veryLong.count)
        }
    }

    @Test(arguments: Backend.allCases) func nulAndHundredThousandCharacterIDsAreStoredExactlyOnSQLiteAndOneClearErrorOnPostgreSQL(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            try Self.registerEcho(in: runtime)
        } test: { runtime, echo in
            _ = try await runtime.startWorkflow(echo, input: "plain", options: WorkflowOptions(workflowID: "baseline"))
            try await runtime.send(to: "baseline", topic: "plain", message: "plain message")
            _ = try await runtime.retrieveWorkflow(id: "baseline", as: [String].self).result()
            let baseline = try await StoredRun(id: "baseline", key: "plain", in: runtime)
            let text = Self.withNUL

            switch backend {
            case .sqlite:
                let handle = try await runtime.startWorkflow(echo, input: text, options: WorkflowOptions(workflowID: text))
                try await runtime.send(to: text, topic: text, message: text)
                #expect(try await handle.result() == [text, text])
                #expect(try await runtime.workflowStatus(id: "before") == nil, "the ID is not cut at the NUL")
                #expect(try await runtime.workflowStatus(id: text)?.workflowID == text)
                let long = try await runtime.startWorkflow(echo, input: Self.veryLong, options: WorkflowOptions(workflowID: Self.veryLong))
                try await runtime.send(to: Self.veryLong, topic: Self.veryLong, message: "x")
                #expect(try await long.result() == [Self.veryLong, "x"])
            case .postgres:
                // As an ID: refused before anything is stored, never stored as "before".
                let error = await #expect(throws: (any Error).self) {
                    _ = try await runtime.startWorkflow(echo, input: "x", options: WorkflowOptions(workflowID: text))
                }
                #expect(error.map { "\($0)" }?.contains("NUL") == true, "\(String(describing: error))")
                let message = error.map { "\($0)" } ?? ""
                #expect(!message.contains("\n") && !message.contains("\u{0}"), "one line: \(message.debugDescription)")
                #expect(message.contains(#"before\0after"#), "the ID is shown with its NUL escaped: \(message.debugDescription)")
                #expect(try await runtime.workflowStatus(id: "before") == nil)
                // As a topic of a message to a live run: refused, nothing delivered.
                await #expect(throws: (any Error).self) {
                    try await runtime.send(to: "baseline", topic: text, message: "x")
                }
                // As a value inside JSON (an input, a message, an event value) it is an escape: it round-trips.
                let handle = try await runtime.startWorkflow(echo, input: "k", options: WorkflowOptions(workflowID: "nul-value"))
                try await runtime.send(to: "nul-value", topic: "k", message: text)
                #expect(try await handle.result() == ["k", text])
                // A message to a 100 000-character ID: PostgreSQL's notification payload limit, said plainly.
                _ = try await runtime.startWorkflow(echo, input: "k", options: WorkflowOptions(workflowID: Self.veryLong))
                let tooLong = await #expect(throws: (any Error).self) {
                    try await runtime.send(to: Self.veryLong, topic: "k", message: "x")
                }
                let tooLongMessage = tooLong.map { "\($0)" } ?? ""
                #expect(tooLongMessage.contains("8000 bytes") && !tooLongMessage.contains("\n"), "\(tooLongMessage)")
                #expect(tooLongMessage.count < 3_000, "the ID is shortened in the message")
                try await runtime.cancelWorkflow(id: Self.veryLong)
                // A run whose own step fails on it ends in ERROR with the message, and does not take the process down.
                let failing = try await runtime.startWorkflow(echo, input: text, options: WorkflowOptions(workflowID: "nul-key"))
                let failure = await #expect(throws: (any Error).self) { _ = try await failing.result() }
                #expect(failure.map { "\($0)" }?.contains("NUL") == true, "\(String(describing: failure))")
                #expect(try await runtime.workflowStatus(id: "nul-key")?.state == .error)
            }
            #expect(try await StoredRun(id: "baseline", key: "plain", in: runtime) == baseline)
        }
    }
}
