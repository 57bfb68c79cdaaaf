import DBOSTestSupport
import Foundation
import Testing

/// What an audit of the built `dbos-run` against SPEC-FORMAT and CLI.md found, checked through the binary.
@Suite struct SpecAuditTests {
    static let brokenQueueSpec = "name: gc\nqueues: [{name: gq, worker_concurrency: 5, concurrency: 1}]\nsteps: [{id: s, run: echo}]\n"

    @Test func validateReportsAQueueTheEngineWouldRefuse() async throws {
        try await CLIWorkspace.with { workspace in
            workspace.write("gc.yaml", Self.brokenQueueSpec)
            let result = try await workspace.run("validate", "gc.yaml")
            #expect(result.exitCode == 2)
            #expect(result.standardError == "gc.yaml:2:41: error: 'worker_concurrency' (5) cannot exceed 'concurrency' (1): one process cannot run more of the queue's runs than all processes together\n")
        }
    }

    @Test func aBrokenSpecNextToTheRunStopsItOnlyWhenTheRunNeedsIt() async throws {
        try await CLIWorkspace.with { workspace in
            workspace.write("gc.yaml", Self.brokenQueueSpec)
            workspace.write("hello.yaml", "name: hello\nsteps: [{id: s, run: echo hi}]\n")
            workspace.write("parent.yaml", "name: parent\nsteps: [{id: c, workflow: gc}]\n")
            let hello = try await workspace.run("hello.yaml")
            #expect(hello.exitCode == 0, "\(hello)")
            #expect(hello.standardOutput == "hi\n")
            let parent = try await workspace.run("parent.yaml")
            #expect(parent.exitCode == 2, "\(parent)")
            #expect(parent.standardError == """
                gc.yaml:2:41: error: 'worker_concurrency' (5) cannot exceed 'concurrency' (1): one process cannot run more of the queue's runs than all processes together
                parent.yaml:2:27: error: child spec 'gc' is defined in gc.yaml, which has errors (reported for that file)

                """)
        }
    }
}
