import DBOSTestSupport
import Foundation
import Testing

/// `dbos-run FILE` and `worker` on PostgreSQL: a throwaway cluster, the database created on first use.
@Suite(.timeLimit(.minutes(3)))
struct PostgresRunTests {
    @Test func killedRunOnPostgreSQLResumesWithoutRepeatingItsCheckpointedStep() async throws {
        let server = try PostgresServer.start()
        defer { server.stop() }
        try await CLIWorkspace.with { workspace in
            let url = server.url(database: "dbos_cli_run")
            let spec = workspace.write("steps.yaml", """
                name: steps
                steps:
                  - id: first
                    env: {LOG: "\(workspace.file("effects.log"))"}
                    run: echo first >> "$LOG"
                  - id: pause
                    run: sleep 3
                  - id: last
                    run: echo "HELLO POSTGRES"
                """)
            let hello = try await workspace.run(CLIWorkspace.referenceSpec("hello.yaml"), "--db", url)
            #expect(hello.exitCode == 0, "\(hello)")
            #expect(hello.standardOutput == "HELLO WORLD\n")

            let doomed = try workspace.start(spec, "--id", "pg-1", "--db", url)
            #expect(await doomed.waitForError(containing: "pause: started"))
            doomed.signal(SIGKILL)
            _ = await doomed.waitForExit()
            let resumed = try await workspace.run(spec, "--id", "pg-1", "--db", url)
            #expect(resumed.exitCode == 0, "\(resumed)")
            #expect(resumed.standardOutput == "HELLO POSTGRES\n")
            #expect(workspace.lines(of: "effects.log") == ["first"])
        }
    }
}
