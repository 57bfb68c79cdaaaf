import DBOS
import DBOSTestSupport
import Foundation
import Testing

/// The system-database backends the engine suite runs on.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    /// A URL of a fresh, empty system database of this backend. PostgreSQL databases live on one
    /// throwaway server per test process; each test gets its own database on it.
    func freshDatabaseURL(in directory: TemporaryDirectory) async throws -> String {
        switch self {
        case .sqlite:
            return "sqlite:\(directory.file("system.sqlite"))"
        case .postgres:
            let server = try await SharedPostgresServer.get()
            return server.url(database: "test_\(UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: ""))")
        }
    }
}

/// A runtime factory on a fresh system database of one backend.
struct TestRuntime {
    let directory: TemporaryDirectory
    let backend: Backend
    let url: String

    init(_ backend: Backend = .sqlite) async throws {
        self.backend = backend
        directory = try TemporaryDirectory()
        url = try await backend.freshDatabaseURL(in: directory)
    }

    func make(executorID: String = "local", version: String = "v1", recovers: Bool = true) async throws -> DBOSRuntime {
        try await DBOSRuntime(configuration: DBOSConfiguration(
            systemDatabaseURL: url, executorID: executorID, applicationVersion: version,
            recoversPendingWorkflows: recovers, pollingInterval: .milliseconds(50),
            cancellationCheckInterval: .milliseconds(100)))
    }
}
