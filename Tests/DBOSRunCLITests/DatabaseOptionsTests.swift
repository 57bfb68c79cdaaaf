import DBOS
import DBOSRunCLI
import DBOSTestSupport
import Foundation
import Testing

/// Which database the commands open (`--db`, the environment, the default), `migrate`, and how
/// bad or secret URLs are reported.
@Suite(.timeLimit(.minutes(3)))
struct DatabaseOptionsTests {
    @Test func migrateCreatesTheDatabaseFileReadableOnlyByItsOwner() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-cli-migrate")
        defer { directory.remove() }
        let path = directory.file("fresh/system.sqlite")
        let result = try await runCLI(["migrate", "--db", "sqlite:\(path)"], in: directory)
        #expect(result.exitCode == 0, "\(result)")
        #expect(result.standardOutput == "system database sqlite:\(path) is migrated to the current schema\n")
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int).map { $0 & 0o077 } == 0)
        let again = try await runCLI(["migrate", "--db", "sqlite:\(path)"], in: directory)
        #expect(again.exitCode == 0, "migrating twice is harmless")
    }

    @Test func withoutDBTheEnvironmentVariableNamesTheDatabase() async throws {
        try await PopulatedDatabase.with { database in
            let result = try await runCLI(
                ["workflows", "get", "run-success", "--json"], in: database.directory,
                environment: ["DBOS_SYSTEM_DATABASE_URL": database.url])
            #expect(result.exitCode == 0, "\(result)")
            #expect(result.standardOutput.contains("\"run-success\""))
        }
    }

    @Test func dbWinsOverTheEnvironmentVariable() async throws {
        try await PopulatedDatabase.with { database in
            let result = try await runCLI(
                ["workflows", "get", "run-success", "--db", database.url], in: database.directory,
                environment: ["DBOS_SYSTEM_DATABASE_URL": "mysql://elsewhere"])
            #expect(result.exitCode == 0, "\(result)")
        }
    }

    @Test func withNeitherTheDefaultDatabaseIsCreatedInTheWorkingDirectory() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-cli-default")
        defer { directory.remove() }
        let result = try await runCLI(["workflows", "list", "--json"], in: directory)
        #expect(result.exitCode == 0, "\(result)")
        #expect(result.standardOutput == "[]\n")
        #expect(FileManager.default.fileExists(atPath: directory.file(".dbos/system.sqlite")))
    }

    @Test func anUnsupportedURLExitsWith2AndOneLineOnStderr() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-cli-url")
        defer { directory.remove() }
        let result = try await runCLI(["workflows", "list", "--db", "mysql://x"], in: directory)
        #expect(result.exitCode == 2)
        #expect(result.standardOutput == "")
        #expect(result.standardError.hasPrefix("dbos-run: error: invalid system database URL 'mysql://x'"))
        #expect(result.standardError.filter { $0 == "\n" }.count == 1)
    }

    @Test func aDatabaseThatCannotBeOpenedExitsWith1NamingWhere() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-cli-unopenable")
        defer { directory.remove() }
        let notADatabase = directory.file("not-a-database.sqlite")
        try Data(String(repeating: "not sqlite ", count: 100).utf8).write(to: URL(fileURLWithPath: notADatabase))
        for url in ["sqlite:/dev/null/inside-a-file/system.sqlite", "sqlite:\(notADatabase)"] {
            let result = try await runCLI(["workflows", "list", "--db", url], in: directory)
            #expect(result.exitCode == 1, "\(result)")
            #expect(result.standardOutput == "")
            #expect(result.standardError.hasPrefix("dbos-run: error: "))
            #expect(result.standardError.contains(String(url.dropFirst("sqlite:".count))), "the message names the file")
            #expect(result.standardError.filter { $0 == "\n" }.count == 1)
        }
    }

    @Test func aPostgresPasswordIsNeverPrinted() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-cli-secret")
        defer { directory.remove() }
        let url = "postgres://user:secret@127.0.0.1:1/db"
        let failed = try await runCLI(["workflows", "list", "--db", url], in: directory, timeout: .seconds(90))
        #expect([1, 2].contains(failed.exitCode), "\(failed)")
        #expect(failed.standardError.hasPrefix("dbos-run: error: "))
        #expect(failed.standardError.filter { $0 == "\n" }.count == 1)
        #expect(!failed.standardError.contains("secret") && !failed.standardOutput.contains("secret"), "\(failed)")

        let fromEnvironment = try await runCLI(
            ["migrate"], in: directory, environment: ["DBOS_SYSTEM_DATABASE_URL": url], timeout: .seconds(90))
        #expect(fromEnvironment.exitCode != 0)
        #expect(!fromEnvironment.standardError.contains("secret"), "\(fromEnvironment)")

        for arguments in [["workflows", "list", "--help"], ["migrate", "--help"], ["get-event", "--help"]] {
            let help = try await runCLI(arguments, in: directory, environment: ["DBOS_SYSTEM_DATABASE_URL": url])
            #expect(help.exitCode == 0)
            #expect(help.standardOutput.contains("--db <url>"))
            #expect(!help.standardOutput.contains("secret") && !help.standardError.contains("secret"))
        }
    }

    @Test func redactionHidesOnlyThePassword() {
        var options = DatabaseOptions()
        options.databaseURL = "postgresql://dbos:p@ss/word@db.example.com:5432/app"
        #expect(options.redactedURL == "postgresql://dbos:***@db.example.com:5432/app")
        options.databaseURL = "postgres://dbos@db.example.com/app"
        #expect(options.redactedURL == "postgres://dbos@db.example.com/app")
        options.databaseURL = "sqlite:.dbos/system.sqlite"
        #expect(options.redactedURL == "sqlite:.dbos/system.sqlite")
    }
}
