import DBOSTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A system database that stops taking writes (a full disk, a read-only file) or a PostgreSQL server that
/// cannot be used (refused, unresolvable, wrong password, no right to create the database): one clear line,
/// the exit code of CLI.md, no password printed, and what was stored before intact and readable afterwards.
@Suite struct DatabaseFailureTests {
    static let filler = """
        name: big
        steps:
          - id: fill
            run: head -c 3000000 /dev/zero | tr '\\0' x
          - id: after
            run: echo done
        output: ${{ steps.after.output }}
        """

    @Test func aFullDiskFailsTheRunOnOneLineKeepsWhatWasStoredAndResumeFinishesItOnceThereIsRoom() async throws {
        try await CLIWorkspace.with { workspace in
            #expect(try await workspace.run(CLIWorkspace.referenceSpec("hello.yaml"), "--id", "stored-1").exitCode == 0)
            let before = try await StoredRunSnapshot(of: "stored-1", in: workspace)
            let spec = workspace.write("big.yaml", Self.filler)

            // A file size limit (RLIMIT_FSIZE, ignoring SIGXFSZ so writes fail with EFBIG) stands in for a full
            // disk: it needs no mount and works as any user. The database (about 200 kB) fits; the 3 MB
            // checkpoint does not.
            let limited = try await runCLI(
                ["-c", #"trap '' XFSZ; ulimit -f 1024 && exec "$@""#, "sh", builtExecutable(named: "dbos-run"),
                 spec, "--id", "big-1"],
                in: workspace.directory, environment: ["DBOS_SYSTEM_DATABASE_URL": workspace.databaseURL],
                executable: "/bin/sh")
            #expect(limited.exitCode == 1, "\(limited)")
            let errors = limited.standardError.split(separator: "\n").filter { $0.hasPrefix("dbos-run: error: ") }
            #expect(errors.count == 1, "\(limited)")
            #expect(errors.first?.contains("writing \(workspace.file("system.sqlite"))") == true, "\(limited)")
            #expect(errors.first?.contains("is the disk full") == true, "\(limited)")

            #expect(try await StoredRunSnapshot(of: "stored-1", in: workspace) == before)
            let resumed = try await workspace.run("workflows", "resume", "big-1")
            #expect(resumed.exitCode == 0, "\(resumed)")
            #expect(resumed.standardOutput == "done\n")
            #expect(try await StoredRunSnapshot(of: "stored-1", in: workspace) == before)
        }
    }

    @Test func aReadOnlyDatabaseIsOneClearLineForEveryCommandAndStaysUnchanged() async throws {
        try await CLIWorkspace.with { workspace in
            #expect(try await workspace.run(CLIWorkspace.referenceSpec("hello.yaml"), "--id", "stored-1").exitCode == 0)
            let before = try await StoredRunSnapshot(of: "stored-1", in: workspace)
            let database = workspace.file("system.sqlite")
            let bytes = try Data(contentsOf: URL(fileURLWithPath: database))

            // Root ignores permission bits: as root the commands run as 'nobody', from a copy of the binary
            // that 'nobody' can reach (the build directory may sit in a home only root can enter).
            var binary = builtExecutable(named: "dbos-run")
            var prefix: [String] = []
            if getuid() == 0 {
                let copy = workspace.file("dbos-run")
                try FileManager.default.copyItem(atPath: binary, toPath: copy)
                binary = copy
                prefix = ["--reuid=65534", "--regid=65534", "--clear-groups", "--"]
            }
            chmod(database, 0o444)
            chmod(workspace.directory.path, 0o555)
            defer { chmod(workspace.directory.path, 0o755) }

            for arguments in [
                ["workflows", "list"], ["workflows", "get", "stored-1"], ["migrate"],
                [CLIWorkspace.referenceSpec("hello.yaml"), "--id", "read-only-1"],
                ["send", "stored-1", "--topic", "t", "--message", "1"],
            ] {
                let result = try await runCLI(
                    prefix + [binary] + arguments, in: workspace.directory,
                    environment: ["DBOS_SYSTEM_DATABASE_URL": workspace.databaseURL],
                    executable: prefix.isEmpty ? binary : "/usr/bin/setpriv")
                #expect(result.exitCode == 1, "\(arguments): \(result)")
                #expect(result.standardError == "dbos-run: error: cannot open system database \(database): attempt to write a readonly database\n",
                    "\(arguments): \(result)")
            }
            chmod(workspace.directory.path, 0o755)
            chmod(database, 0o600)
            #expect(try Data(contentsOf: URL(fileURLWithPath: database)) == bytes, "the file is unchanged")
            #expect(try await StoredRunSnapshot(of: "stored-1", in: workspace) == before)
        }
    }

    @Test func anUnusablePostgreSQLServerIsOneLineWithoutThePasswordInBoundedTime() async throws {
        let server = try PostgresServer.start()
        defer { server.stop() }
        let directory = try TemporaryDirectory(prefix: "dbos-cli-pg-auth")
        defer { directory.remove() }
        // A role with a password and no right to create databases, owning a migrated database; then a server
        // that checks passwords.
        try server.execute("CREATE ROLE app LOGIN PASSWORD 'right-secret'")
        try server.execute("CREATE DATABASE app OWNER app")
        let setup = try await runCLI(["migrate", "--db", "postgresql://app@127.0.0.1:\(server.port)/app"], in: directory)
        #expect(setup.exitCode == 0, "\(setup)")
        try server.requirePasswords()

        let host = "127.0.0.1:\(server.port)"
        let cases: [(url: String, exitCode: Int32, says: String)] = [
            ("postgres://app:wrong-secret@\(host)/app", 1, "password authentication failed for user \"app\""),
            ("postgres://app:right-secret@\(host)/no_such_database", 1, "permission denied to create database"),
            ("postgres://app:right-secret@127.0.0.1:1/app", 1, "cannot connect to PostgreSQL at 127.0.0.1:1"),
            ("postgres://app:right-secret@no-such-host.invalid/app", 1, "no-such-host.invalid"),
            ("postgresql://app:right-secret@[::1/app", 2, "invalid PostgreSQL URL"),
            ("mysql://app:right-secret@\(host)/app", 2, "expected sqlite:PATH"),
        ]
        for (url, exitCode, says) in cases {
            // Bounded: libpq's connect_timeout (10 s) is the longest wait; a hang would hit the 60 s here.
            let result = try await runCLI(["workflows", "list", "--db", url], in: directory, timeout: .seconds(60))
            #expect(result.exitCode == exitCode, "\(url): \(result)")
            #expect(result.standardError.hasPrefix("dbos-run: error: ") && result.standardError.filter { $0 == "\n" }.count == 1,
                "\(url): \(result)")
            #expect(result.standardError.contains(says), "\(url): \(result)")
            #expect(!result.standardError.contains("right-secret") && !result.standardError.contains("wrong-secret"), "\(url): \(result)")
        }
        let good = try await runCLI(["workflows", "list", "--db", "postgres://app:right-secret@\(host)/app"], in: directory)
        #expect(good.exitCode == 0, "the right password works: \(good)")
    }
}
