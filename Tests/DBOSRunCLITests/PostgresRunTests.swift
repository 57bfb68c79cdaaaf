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

    @Test func getEventWhoseServerIsDownEndsAtItsTimeoutOnOneLineNamingTheServer() async throws {
        let server = try PostgresServer.start()
        defer { server.stop() }
        try await CLIWorkspace.with { workspace in
            let url = server.url(database: "dbos_cli_event")
            let hello = try await workspace.run(CLIWorkspace.referenceSpec("hello.yaml"), "--id", "hello-1", "--db", url)
            #expect(hello.exitCode == 0, "\(hello)")

            let waiting = try workspace.start("get-event", "hello-1", "never-set", "--timeout", "20s", "--db", url)
            // Stop the server once the command polls for the event (its last query in pg_stat_activity, whose snapshot
            // a transaction keeps until cleared).
            try server.execute("""
                DO $$ BEGIN
                  FOR attempt IN 1..1200 LOOP
                    IF EXISTS (SELECT 1 FROM pg_stat_activity WHERE query LIKE '%FROM workflow_events%'
                               AND pid <> pg_backend_pid()) THEN RETURN; END IF;
                    PERFORM pg_sleep(0.05);
                    PERFORM pg_stat_clear_snapshot();
                  END LOOP;
                  RAISE EXCEPTION 'get-event never polled for the event';
                END $$
                """)
            try server.stopServer(mode: .fast)
            // Retrying the lost connection forever would outlast the timeout: nil here.
            let exitCode = await waiting.waitForExit(timeout: .seconds(90))
            #expect(exitCode == 1, "\(waiting.errorOutput)")
            let lines = waiting.errorOutput.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].hasPrefix("dbos-run: error: "), "\(waiting.errorOutput)")
            #expect(waiting.errorOutput.contains("cannot connect to PostgreSQL at 127.0.0.1:\(server.port)"), "\(waiting.errorOutput)")
        }
    }
}
