import Foundation
import Testing

/// A run refused before it starts (bad input, unknown queue) leaves the system database as it was:
/// with `--id` too, it does not create one.
@Suite(.timeLimit(.minutes(2)))
struct FailedRunLeavesNoDatabaseTests {
    @Test(arguments: [
        ["--id", "x1", "--input", "{}"],
        ["--id", "x2", "--queue", "nope"],
    ])
    func aRefusedRunWithAnIDCreatesNoDatabase(arguments: [String]) async throws {
        try await CLIWorkspace.with { workspace in
            let spec = workspace.write("inp.yaml", """
                name: inp
                input:
                  type: object
                  properties:
                    order_id: {type: string, default: "A1"}
                    amount: {type: number}
                  required: [amount]
                steps:
                  - id: echo
                    run: echo hi
                """)
            let result = try await runCLI(
                [spec] + arguments, in: workspace.directory,
                environment: ["DBOS_SYSTEM_DATABASE_URL": workspace.databaseURL])
            #expect(result.exitCode == 2, "\(result)")
            #expect(!FileManager.default.fileExists(atPath: workspace.file("system.sqlite")), "\(result)")
        }
    }
}
