import DBOS
import DBOSRunCLI
import DBOSTestSupport
import Foundation
import Testing

/// `dbos-run send` and `dbos-run get-event`, run as the built binary.
@Suite(.timeLimit(.minutes(3)))
struct MessagingCommandTests {
    @Test func sendDeliversAJSONMessageThatTheWaitingRunReceives() async throws {
        try await PopulatedDatabase.with { database in
            let result = try await database.run("send", "run-waiting", "--topic", "go", "--message", #"{"approved":true}"#)
            #expect(result.exitCode == 0, "\(result)")
            #expect(result.standardError == "")
            #expect(try await database.waiting.result() == ["approved": true])
        }
    }

    @Test func sendRejectsAMessageThatIsNotJSONWithExitCode2() async throws {
        try await PopulatedDatabase.with { database in
            let result = try await database.run("send", "run-waiting", "--topic", "go", "--message", "{approved")
            #expect(result.exitCode == 2)
            #expect(result.standardOutput == "")
            #expect(result.standardError.hasPrefix("dbos-run: error: invalid JSON in --message: "))
            #expect(result.standardError.filter { $0 == "\n" }.count == 1)
            let bareWord = try await database.run("send", "run-waiting", "--topic", "go", "--message", "go")
            #expect(bareWord.exitCode == 2)
            #expect(bareWord.standardError.contains(#"quote it: '"go"'"#))
        }
    }

    @Test func sendToAnUnknownIDExitsWith4() async throws {
        try await PopulatedDatabase.with { database in
            let result = try await database.run("send", "no-such-run", "--topic", "go", "--message", "1")
            #expect(result.exitCode == 4)
            #expect(result.standardError == "dbos-run: error: no workflow with ID 'no-such-run'\n")
        }
    }

    @Test func getEventPrintsAStringBareAndOtherValuesAsJSON() async throws {
        try await PopulatedDatabase.with { database in
            let greeting = try await database.run("get-event", "run-events", "greeting")
            #expect(greeting.exitCode == 0, "\(greeting)")
            #expect(greeting.standardOutput == "hello\n")
            let quoted = try await database.run("get-event", "run-events", "greeting", "--json")
            #expect(quoted.standardOutput == "\"hello\"\n")
            let config = try await database.run("get-event", "run-events", "config")
            #expect(config.standardOutput == "{\"retries\":3}\n")
        }
    }

    @Test func getEventWaitsForAnEventSetWhileItWaits() async throws {
        try await PopulatedDatabase.with { database in
            async let waited = runCLI(
                ["get-event", "run-waiting", "answer", "--timeout", "30s", "--db", database.url], in: database.directory)
            try await Task.sleep(for: .milliseconds(500))
            // The waiting run sets `answer` to the message it receives.
            try await database.runtime.send(to: "run-waiting", topic: "go", message: "approved")
            let result = try await waited
            #expect(result.exitCode == 0, "\(result)")
            #expect(result.standardOutput == "approved\n")
        }
    }

    @Test func getEventTimesOutWithExitCode5() async throws {
        try await PopulatedDatabase.with { database in
            let result = try await database.run("get-event", "run-events", "missing", "--timeout", "300ms")
            #expect(result.exitCode == 5)
            #expect(result.standardOutput == "")
            #expect(result.standardError == "dbos-run: error: timed out after 300ms waiting for event 'missing' of workflow 'run-events'\n")
        }
    }

    @Test func getEventOfAnUnknownIDExitsWith4() async throws {
        try await PopulatedDatabase.with { database in
            let result = try await database.run("get-event", "no-such-run", "greeting", "--timeout", "1s")
            #expect(result.exitCode == 4)
            #expect(result.standardError == "dbos-run: error: no workflow with ID 'no-such-run'\n")
        }
    }

    @Test func getEventRejectsATimeoutThatIsNotADuration() async throws {
        try await PopulatedDatabase.with { database in
            let result = try await database.run("get-event", "run-events", "greeting", "--timeout", "soon")
            #expect(result.exitCode == 2)
            #expect(result.standardError.hasPrefix("dbos-run: error: invalid duration 'soon' for --timeout"))
        }
    }
}
