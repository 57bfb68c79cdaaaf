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

/// `dbos-run FILE` and `dbos-run enqueue` report an input that fails the schema as `FILE:LINE:COL: error:`.
@Suite struct InputSchemaErrorFormatTests {
    static let spec = """
        name: inp
        queues: [{name: q}]
        input:
          type: object
          required: [order_id]
          properties:
            order_id: {type: string}
        steps: [{id: s, run: echo}]
        """

    @Test func runAndEnqueueReportTheSchemaLineTheInputViolates() async throws {
        try await CLIWorkspace.with { workspace in
            workspace.write("inp.yaml", Self.spec)
            let run = try await workspace.run("inp.yaml", "--input", "{}")
            #expect(run.exitCode == 2)
            #expect(run.standardError == "inp.yaml:5:14: error: invalid input: input.order_id is required\n")
            let enqueue = try await workspace.run("enqueue", "inp.yaml", "--queue", "q", "--input", #"{"order_id": 1}"#)
            #expect(enqueue.exitCode == 2)
            #expect(enqueue.standardError == "inp.yaml:7:22: error: invalid input: input.order_id must be a string, not integer\n")
            #expect(!FileManager.default.fileExists(atPath: workspace.file("system.sqlite")), "a refused run leaves no database")
        }
    }
}
