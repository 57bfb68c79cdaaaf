import DBOSTestSupport
import Foundation
import Testing

/// Where options may stand on a `dbos-run` command line and which values they take: `--db URL` on every command,
/// before the command or after it; option values that start with `-`.
@Suite(.timeLimit(.minutes(5)))
struct ArgumentFormTests {
    /// One command, and what it does when it works. `{hello}` is `Specs/hello.yaml`, `{queued}` a spec declaring
    /// queue `jobs`.
    struct Command: CustomStringConvertible, Sendable {
        /// The forms of the command to try (the run command has two: `run FILE` and `FILE`).
        var forms: [[String]]
        var exitCode: Int32
        /// A fragment of stdout or stderr.
        var says: String
        /// Whether the command opens the system database (validate and graph read only spec files).
        var opensDatabase = true

        var description: String { forms[0].prefix(2).joined(separator: " ") }
    }

    static let commands: [Command] = [
        Command(forms: [["run", "{hello}"], ["{hello}"]], exitCode: 0, says: "HELLO WORLD"),
        Command(forms: [["validate", "{hello}"]], exitCode: 0, says: "valid", opensDatabase: false),
        Command(forms: [["graph", "{hello}"]], exitCode: 0, says: "flowchart TD", opensDatabase: false),
        Command(forms: [["enqueue", "{queued}", "--queue", "jobs", "--id", "queued-1"]], exitCode: 0, says: "queued-1"),
        Command(forms: [["workflows", "list", "--json"]], exitCode: 0, says: "[]"),
        Command(forms: [["workflows", "get", "nope"]], exitCode: 4, says: "no workflow with ID 'nope'"),
        Command(forms: [["workflows", "steps", "nope"]], exitCode: 4, says: "no workflow with ID 'nope'"),
        Command(forms: [["workflows", "cancel", "nope"]], exitCode: 4, says: "no workflow with ID 'nope'"),
        Command(forms: [["workflows", "resume", "nope"]], exitCode: 4, says: "no workflow with ID 'nope'"),
        Command(forms: [["workflows", "fork", "nope", "--from-step", "0"]], exitCode: 4, says: "no workflow with ID 'nope'"),
        Command(forms: [["send", "nope", "--topic", "t", "--message", "1"]], exitCode: 4, says: "no workflow with ID 'nope'"),
        Command(forms: [["get-event", "nope", "k", "--timeout", "10ms"]], exitCode: 4, says: "no workflow with ID 'nope'"),
        Command(forms: [["migrate"]], exitCode: 0, says: "migrated"),
    ]

    /// `--db URL` after the command, before it, and as `--db=URL` before it.
    static func placements(of databaseURL: String, around arguments: [String]) -> [[String]] {
        [arguments + ["--db", databaseURL], ["--db", databaseURL] + arguments, ["--db=\(databaseURL)"] + arguments]
    }

    static func writeQueuedSpec(in workspace: CLIWorkspace) -> String {
        workspace.write("queued.yaml", """
            name: queued
            queues:
              - name: jobs
            steps:
              - {id: work, run: echo done}
            """)
    }

    @Test(arguments: commands)
    func everyCommandTakesDBBeforeOrAfterItAndUsesThatDatabase(command: Command) async throws {
        try await CLIWorkspace.with { workspace in
            let queued = Self.writeQueuedSpec(in: workspace)
            var attempt = 0
            for form in command.forms {
                let arguments = form.map {
                    $0.replacingOccurrences(of: "{hello}", with: CLIWorkspace.referenceSpec("hello.yaml"))
                        .replacingOccurrences(of: "{queued}", with: queued)
                }
                // A fresh database for every placement, so each one shows that its own --db was used.
                attempt += 1
                let path = workspace.file("given-\(attempt).sqlite")
                for placed in Self.placements(of: "sqlite:" + path, around: arguments) {
                    try? FileManager.default.removeItem(atPath: path)
                    let result = try await workspace.run(arguments: placed)
                    #expect(result.exitCode == command.exitCode, "\(placed): \(result)")
                    #expect((result.standardOutput + result.standardError).contains(command.says), "\(placed): \(result)")
                    #expect(FileManager.default.fileExists(atPath: path) == command.opensDatabase, "\(placed)")
                }
            }
            // $DBOS_SYSTEM_DATABASE_URL names this one: --db always won over it.
            #expect(!FileManager.default.fileExists(atPath: workspace.file("system.sqlite")))
        }
    }

    @Test func workerTakesDBBeforeOrAfterIt() async throws {
        try await CLIWorkspace.with { workspace in
            let queued = Self.writeQueuedSpec(in: workspace)
            let path = workspace.file("given.sqlite")
            for placed in Self.placements(of: "sqlite:" + path, around: ["worker", queued]) {
                try? FileManager.default.removeItem(atPath: path)
                let worker = try workspace.start(arguments: placed)
                #expect(await worker.waitForError(containing: "serving queued"), "\(placed): \(worker.errorOutput)")
                worker.signal(SIGTERM)
                #expect(await worker.waitForExit(timeout: .seconds(20)) == 0, "\(placed): \(worker.errorOutput)")
                #expect(FileManager.default.fileExists(atPath: path), "\(placed)")
            }
            #expect(!FileManager.default.fileExists(atPath: workspace.file("system.sqlite")))
        }
    }

    @Test func dbMayStandBetweenWorkflowsAndItsSubcommand() async throws {
        try await CLIWorkspace.with { workspace in
            let path = workspace.file("given.sqlite")
            let result = try await workspace.run(arguments: ["workflows", "--db", "sqlite:" + path, "list", "--json"])
            #expect(result.exitCode == 0, "\(result)")
            #expect(result.standardOutput == "[]\n")
            #expect(FileManager.default.fileExists(atPath: path))
        }
    }

    @Test func optionValuesMayStartWithADashAndAMissingValueIsStillReported() async throws {
        try await CLIWorkspace.with { workspace in
            let echo = workspace.write("echo.yaml", """
                name: echo
                steps:
                  - {id: nothing, run: "true"}
                output: ${{ input }}
                """)
            let negative = try await workspace.run(echo, "--input", "-5")
            #expect(negative.exitCode == 0, "\(negative)")
            #expect(negative.standardOutput == "-5\n")
            let fraction = try await workspace.run(echo, "--input", "-1.5", "--json", "--id", "-run")
            #expect(fraction.exitCode == 0, "\(fraction)")
            #expect(fraction.standardOutput == "-1.5\n")
            #expect(fraction.standardError.contains("run -run of 'echo' started"), "\(fraction)")

            let message = try await workspace.run("send", "-run", "--topic", "-t", "--message", "-1")
            #expect(message.exitCode == 2, "a positional ID starting with '-' needs '--' before it: \(message)")
            for value in ["-1", "-1.5"] {
                let sent = try await workspace.run("send", "--topic", "-t", "--message", value, "--", "-run")
                #expect(sent.exitCode == 0, "\(sent)")
            }
            let forked = try await workspace.run("workflows", "fork", "--from-step", "0", "--id", "-fork", "--detach", "--", "-run")
            #expect(forked.exitCode == 0, "\(forked)")
            #expect(forked.standardOutput == "-fork\n")
            let enqueued = try await workspace.run(
                "enqueue", Self.writeQueuedSpec(in: workspace), "--queue", "jobs", "--id", "-queued", "--dedup-id", "-d")
            #expect(enqueued.exitCode == 0, "\(enqueued)")
            #expect(enqueued.standardOutput == "-queued\n")

            // A value-taking option at the end of the line still says its value is missing.
            for arguments in [[echo, "--input"], ["send", "x", "--topic", "t", "--message"], [echo, "--id"]] {
                let missing = try await workspace.run(arguments: arguments)
                #expect(missing.exitCode == 2, "\(missing)")
                #expect(missing.standardError.hasPrefix("dbos-run: error: Missing value for '\(arguments.last ?? "")"), "\(missing)")
                #expect(missing.standardError.split(separator: "\n").count == 1, "\(missing)")
            }
        }
    }

    @Test func graphNamesMermaidNodesByTheirStepIDs() async throws {
        try await CLIWorkspace.with { workspace in
            let spec = workspace.write("ship.yaml", """
                name: ship
                steps:
                  - {id: fetch, run: echo}
                  - {id: ship, run: echo}
                  - {id: end, run: echo}
                """)
            let graph = try await workspace.run("graph", spec)
            #expect(graph.exitCode == 0, "\(graph)")
            #expect(graph.standardOutput.contains("    fetch --> ship\n"), "\(graph)")
            #expect(graph.standardOutput.contains(#"    step_end["end · run · slot 2"]"#), "\(graph)")
            #expect(graph.standardOutput.contains("    ship --> step_end\n"), "\(graph)")
        }
    }
}

extension CLIWorkspace {
    /// Runs the built `dbos-run` with an argument array.
    func run(arguments: [String]) async throws -> CLIResult {
        try await runCLI(arguments, in: directory, environment: ["DBOS_SYSTEM_DATABASE_URL": databaseURL], timeout: .seconds(90))
    }

    /// Starts the built `dbos-run` in the background with an argument array.
    func start(arguments: [String]) throws -> BackgroundCLI {
        try BackgroundCLI(arguments: arguments, in: self, executable: "dbos-run")
    }
}
