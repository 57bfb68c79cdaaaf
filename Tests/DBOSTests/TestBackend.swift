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

/// Opens a runtime on a fresh database of `backend` (or on `url`), with the configuration
/// `configure` adjusts, registers what `register` returns, launches it, runs `test`, and always
/// shuts it down.
func withLaunchedRuntime<Workflows: Sendable>(
    _ backend: Backend = .sqlite,
    url: String? = nil,
    pollingInterval: Duration = .milliseconds(100),
    configure: (inout DBOSConfiguration) -> Void = { _ in },
    register: (DBOSRuntime) throws -> Workflows,
    test: (DBOSRuntime, Workflows) async throws -> Void
) async throws {
    let setup = try await TestRuntime(backend)
    defer { setup.directory.remove() }
    var configuration = DBOSConfiguration(
        systemDatabaseURL: url ?? setup.url, applicationVersion: "test", pollingInterval: pollingInterval)
    configure(&configuration)
    let runtime = try await DBOSRuntime(configuration: configuration)
    do {
        let workflows = try register(runtime)
        try await runtime.launch()
        try await test(runtime, workflows)
    } catch {
        await runtime.shutdown(gracePeriod: .zero)
        throw error
    }
    await runtime.shutdown(gracePeriod: .zero)
}

/// Waits (up to 20 s) until a workflow has checkpointed at least `count` operations.
func waitForSteps(of workflowID: String, atLeast count: Int, in runtime: DBOSRuntime) async throws {
    let deadline = ContinuousClock.now + .seconds(20)
    while try await runtime.listSteps(workflowID: workflowID).count < count {
        guard ContinuousClock.now < deadline else {
            Issue.record("workflow \(workflowID) did not checkpoint \(count) operations within 20 s")
            return
        }
        try await Task.sleep(for: .milliseconds(20))
    }
}
