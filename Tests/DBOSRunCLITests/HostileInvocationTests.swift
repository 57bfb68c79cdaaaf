import ArgumentParser
@testable import DBOSRunCLI
import DBOSTestSupport
import Foundation
import Testing

/// Hostile command lines against a database that already holds a finished run: each one exits with the code
/// CLI.md gives, prints one line to stderr that says what was wrong, and leaves the stored run exactly as it
/// was. The table is the corpus; a new case is one line.
@Suite struct HostileInvocationTests {
    /// One invocation and what it must do. `{hello}` in an argument is the path of `Specs/hello.yaml`.
    struct Invocation: CustomStringConvertible, Sendable {
        var arguments: [String]
        var exitCode: Int32
        /// A fragment of the one stderr line (for failures) or of stdout (for successes).
        var says: String

        var description: String { arguments.map { $0.count > 40 ? $0.prefix(40) + "..." : $0 }.joined(separator: " ") }
    }

    static let deepJSON = String(repeating: "[", count: 100_000)
    /// Exactly 513 levels, ending at the last one: crashed Foundation's JSON parser (found by FuzzTests).
    static let crashingJSON = String(repeating: "[", count: 513)
    static let injection = "x'; DROP TABLE workflow_status; --"

    static let invocations: [Invocation] = [
        // Messages that are not JSON.
        Invocation(arguments: ["send", "stored-1", "--topic", "t", "--message", "{bad"], exitCode: 2, says: "invalid JSON in --message"),
        Invocation(arguments: ["send", "stored-1", "--topic", "t", "--message", ""], exitCode: 2, says: "invalid JSON in --message"),
        Invocation(arguments: ["send", "stored-1", "--topic", "t", "--message", "NaN"], exitCode: 2, says: #"quote it: '"NaN"'"#),
        Invocation(arguments: ["send", "stored-1", "--topic", "t", "--message", deepJSON], exitCode: 2, says: "too many nested"),
        Invocation(arguments: ["send", "stored-1", "--topic", "t", "--message", crashingJSON], exitCode: 2, says: "too many nested"),
        // Inputs that are not JSON.
        Invocation(arguments: ["{hello}", "--input", deepJSON], exitCode: 2, says: "invalid JSON in --input: too many nested"),
        Invocation(arguments: ["{hello}", "--input", crashingJSON], exitCode: 2, says: "invalid JSON in --input: too many nested"),
        Invocation(arguments: ["{hello}", "--input", "1e999"], exitCode: 2, says: "invalid JSON in --input: number 1e999"),
        Invocation(arguments: ["{hello}", "--input", #""\ud800""#], exitCode: 2, says: "invalid JSON in --input"),
        Invocation(arguments: ["{hello}", "--input", "@/dev/null/none.json"], exitCode: 2, says: "cannot read the input file"),
        // SQL and shell metacharacters as IDs, topics, keys, names and statuses: data, never code or patterns.
        Invocation(arguments: ["send", injection, "--topic", "t", "--message", "1"], exitCode: 4, says: "no workflow with ID '\(injection)'"),
        Invocation(arguments: ["send", "stored-1", "--topic", injection, "--message", #""x""#], exitCode: 0, says: ""),
        Invocation(arguments: ["workflows", "get", "%"], exitCode: 4, says: "no workflow with ID '%'"),
        Invocation(arguments: ["workflows", "get", "stored-_"], exitCode: 4, says: "no workflow with ID 'stored-_'"),
        Invocation(arguments: ["workflows", "steps", "$(touch pwned)"], exitCode: 4, says: "no workflow with ID '$(touch pwned)'"),
        Invocation(arguments: ["workflows", "cancel", "`touch pwned`"], exitCode: 4, says: "no workflow with ID '`touch pwned`'"),
        Invocation(arguments: ["workflows", "resume", "\\"], exitCode: 4, says: #"no workflow with ID '\'"#),
        Invocation(arguments: ["workflows", "list", "--status", "SUCCESS' OR '1'='1"], exitCode: 2, says: "unknown status"),
        Invocation(arguments: ["workflows", "list", "--name", "%", "--json"], exitCode: 0, says: "[]"),
        Invocation(arguments: ["workflows", "list", "--queue", "' OR 1=1 --", "--json"], exitCode: 0, says: "[]"),
        Invocation(arguments: ["get-event", "stored-1", injection, "--timeout", "10ms"], exitCode: 5, says: "timed out after 10ms"),
        Invocation(arguments: ["{hello}", "--id", injection], exitCode: 0, says: "HELLO WORLD"),
        Invocation(arguments: ["{hello}", "--id", "$(touch pwned);|&"], exitCode: 0, says: "HELLO WORLD"),
        Invocation(arguments: ["{hello}", "--id", String(repeating: "i", count: 100_000)], exitCode: 0, says: "HELLO WORLD"),
        Invocation(arguments: ["{hello}", "--id", ""], exitCode: 2, says: "--id must not be empty"),
        // Numbers that are not numbers.
        Invocation(arguments: ["workflows", "list", "--limit", "99999999999999999999"], exitCode: 2, says: "--limit"),
        Invocation(arguments: ["workflows", "list", "--limit", "-1"], exitCode: 2, says: "--limit must be at least 1, got -1"),
        Invocation(arguments: ["workflows", "fork", "stored-1", "--from-step", "-5"], exitCode: 2, says: "cannot be negative"),
        Invocation(arguments: ["get-event", "stored-1", "k", "--timeout", "-1s"], exitCode: 2, says: "invalid duration '-1s' for --timeout"),
        Invocation(arguments: ["workflows", "fork", "stored-1", "--from-step", "abc"], exitCode: 2, says: "--from-step"),
        Invocation(arguments: ["get-event", "stored-1", "k", "--timeout", "forever"], exitCode: 2, says: "invalid duration 'forever'"),
        // Spec files that are not specs.
        Invocation(arguments: ["/dev/null/none.yaml"], exitCode: 2, says: "no such file"),
        Invocation(arguments: ["validate", "/dev/urandom"], exitCode: 2, says: "error:"),
        Invocation(arguments: ["validate", "/"], exitCode: 2, says: "error:"),
    ]

    @Test(arguments: invocations)
    func aHostileInvocationExitsWithItsCodeOnOneLineAndLeavesTheStoredRunIntact(invocation: Invocation) async throws {
        try await CLIWorkspace.with { workspace in
            let stored = try await workspace.run(CLIWorkspace.referenceSpec("hello.yaml"), "--id", "stored-1")
            #expect(stored.exitCode == 0, "\(stored)")
            let before = try await StoredRunSnapshot(of: "stored-1", in: workspace)

            let arguments = invocation.arguments.map {
                $0.replacingOccurrences(of: "{hello}", with: CLIWorkspace.referenceSpec("hello.yaml"))
            }
            let result = try await runCLI(
                arguments, in: workspace.directory, environment: ["DBOS_SYSTEM_DATABASE_URL": workspace.databaseURL])
            #expect(result.exitCode == invocation.exitCode, "\(result)")
            if invocation.exitCode == 0 {
                #expect(invocation.says.isEmpty || result.standardOutput.contains(invocation.says), "\(result)")
            } else {
                let lines = result.standardError.split(separator: "\n")
                #expect(lines.count == 1, "one line on stderr: \(result)")
                #expect(lines.last?.contains("error: ") == true, "\(result)")
                #expect(lines.last?.contains(invocation.says) == true, "\(result)")
            }
            #expect(!FileManager.default.fileExists(atPath: workspace.file("pwned")), "nothing ran the shell")
            #expect(try await StoredRunSnapshot(of: "stored-1", in: workspace) == before)
        }
    }
}

/// Arguments holding bytes that are not UTF-8, passed by a shell as they are (`printf '\377'`; Swift strings
/// cannot hold them, so `/bin/sh` builds the command line). `CommandLine.arguments` would turn them into U+FFFD,
/// storing another value than the one given; each is refused with exit 2 on one line naming the argument, and
/// nothing is stored.
@Suite struct NonUTF8ArgumentTests {
    /// A shell command line: `$0` is dbos-run, `$1` the hello spec, `$BAD` a string quoting the byte 0xFF.
    static let commandLines: [(script: String, says: String)] = [
        (#""$0" "$1" --input "$BAD""#, "the value of --input is not valid UTF-8"),
        (#""$0" "$1" --input="$BAD""#, "the value of --input is not valid UTF-8"),
        (#""$0" "$1" --id "x$BAD""#, "the value of --id is not valid UTF-8"),
        (#""$0" send stored-1 --topic t --message "$BAD""#, "the value of --message is not valid UTF-8"),
        (#""$0" send stored-1 --topic "$BAD" --message 1"#, "the value of --topic is not valid UTF-8"),
        (#"printf '%s' "$BAD" > bad.json && "$0" "$1" --input @bad.json"#, "'bad.json' given to --input is not valid UTF-8"),
    ]

    @Test(arguments: commandLines)
    func anArgumentThatIsNotUTF8IsRefusedOnOneLineAndNothingIsStored(script: String, says: String) async throws {
        try await CLIWorkspace.with { workspace in
            let stored = try await workspace.run(CLIWorkspace.referenceSpec("hello.yaml"), "--id", "stored-1")
            #expect(stored.exitCode == 0, "\(stored)")
            let before = try await StoredRunSnapshot(of: "stored-1", in: workspace)

            let result = try await runCLI(
                ["-c", #"BAD="$(printf '"\377"')"; "# + script, builtExecutable(named: "dbos-run"),
                 CLIWorkspace.referenceSpec("hello.yaml")],
                in: workspace.directory, environment: ["DBOS_SYSTEM_DATABASE_URL": workspace.databaseURL],
                executable: "/bin/sh")
            #expect(result.exitCode == 2, "\(result)")
            let lines = result.standardError.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].hasPrefix("dbos-run: error: ") && lines[0].contains(says), "\(result)")
            #expect(try await StoredRunSnapshot(of: "stored-1", in: workspace) == before)
            let runs = try await workspace.run("workflows", "list", "--json")
            #expect((try runs.outputJSON() as? [Any])?.count == 1, "no other run was stored: \(runs)")
        }
    }
}

/// The command printed for continuing a stopped run pastes back into a shell as data.
@Suite struct ShellWordTests {
    @Test func hostileIDsAreSingleQuotedAndPlainOnesLeftAlone() {
        #expect(ShellWord.quoted("order-A1") == "order-A1")
        #expect(ShellWord.quoted("specs/a.yaml") == "specs/a.yaml")
        #expect(ShellWord.quoted("") == "''")
        #expect(ShellWord.quoted("$(touch pwned)") == "'$(touch pwned)'")
        #expect(ShellWord.quoted("it's; rm") == #"'it'\''s; rm'"#)
        #expect(ShellWord.quoted("a\nb") == "'a\nb'")
    }

    @Test func printedCommandsForValuesThatLookLikeOptionsParseBackToThoseValues() throws {
        #expect(ShellWord.option("--id", "run-1") == "--id run-1")
        #expect(ShellWord.option("--id", "-x") == "--id=-x")
        #expect(ShellWord.argument("-x") == "-- -x")
        #expect(ShellWord.path("-spec.yaml") == "./-spec.yaml")
        // The words as a shell splits them (no quotes in these), read by the real command line parser.
        let run = try DBOSRunCommand.parseAsRoot(
            ["\(ShellWord.path("-spec.yaml"))", "\(ShellWord.option("--id", "-x"))"].flatMap { $0.split(separator: " ").map(String.init) })
        let runCommand = try #require(run as? RunCommand)
        #expect(runCommand.workflowID == "-x")
        #expect(runCommand.file == "./-spec.yaml")
        let resume = try DBOSRunCommand.parseAsRoot(["workflows", "resume"] + ShellWord.argument("-x").split(separator: " ").map(String.init))
        #expect((resume as? ResumeWorkflowCommand)?.workflowID == "-x")
    }
}

/// What `workflows get` and `workflows steps` print for a run, minus the update time a message may touch.
struct StoredRunSnapshot: Equatable {
    var workflow: [String: String]
    var steps: String

    init(of id: String, in workspace: CLIWorkspace) async throws {
        let get = try await workspace.run("workflows", "get", id, "--json")
        let steps = try await workspace.run("workflows", "steps", id, "--json")
        guard get.exitCode == 0, steps.exitCode == 0 else {
            throw SnapshotFailure(description: "cannot read run \(id): \(get) \(steps)")
        }
        let object = try #require(try get.outputJSON() as? [String: Any])
        workflow = object.filter { $0.key != "updated_at" }.mapValues { "\($0)" }
        self.steps = steps.standardOutput
    }
}

struct SnapshotFailure: Error, CustomStringConvertible {
    var description: String
}
