@testable import DBOS
import DBOSTestSupport
import Foundation
import Testing

/// The PostgreSQL system database under conditions SQLite never meets.
@Suite(.timeLimit(.minutes(3)))
struct PostgresSystemDatabaseTests {
    @Test func manyConnectionsCreatingTheSameMissingDatabaseAtOnceAllSucceed() async throws {
        let server = try SharedPostgresServer.server.get()
        let name = "raced_\(UUID().uuidString.prefix(8).lowercased())"
        let url = try PostgresURL(server.url(database: name))
        // The losers of the race see either duplicate_database (42P04) or, when both inserts reach
        // pg_database together, a unique violation (23505); neither is a failure.
        let created = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 {
                group.addTask { try await PostgresConnection.createDatabaseIfMissing(url) }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(created.filter { $0 }.count == 1, "exactly one call created it: \(created)")
        #expect(try await databaseExists(name, on: server))
    }
}

/// Whether a database of this name exists on `server`.
private func databaseExists(_ name: String, on server: PostgresServer) async throws -> Bool {
    let connection = try await PostgresConnection.connect(PostgresURL(server.url(database: "postgres")))
    defer { connection.close() }
    return try await !connection.query("SELECT 1 AS found FROM pg_database WHERE datname = \(name)").isEmpty
}
