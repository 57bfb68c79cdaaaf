import Foundation
import Testing

/// `workflows cancel` stops a run and its children; `workflows resume` continues all of them.
@Suite(.timeLimit(.minutes(3)))
struct ResumeTreeTests {
    @Test func aCancelledRunWithChildAndMapStepsResumesToItsEnd() async throws {
        try await CLIWorkspace.with { workspace in
            workspace.write("kid.yaml", """
                name: kid
                steps:
                  - id: rest
                    sleep: 100ms
                  - id: speak
                    run: echo kid
                """)
            let spec = workspace.write("tree.yaml", """
                name: tree
                steps:
                  - id: call
                    workflow: kid
                  - id: each
                    map: [1, 2]
                    steps:
                      - id: nap
                        sleep: 1500ms
                      - id: twice
                        env: {N: "${{ item }}"}
                        run: echo $((N * 2))
                        output: json
                  - id: sum
                    env: {A: "${{ steps.call.output }}", B: "${{ toJSON(steps.each.output) }}"}
                    run: echo "$A $B"
                """)
            let background = try workspace.start(spec, "--id", "tree-1")
            defer { background.signal(SIGKILL) }
            // Wait until the map's second item sleeps (the child step is done by then), then cancel the tree.
            var itemSleeps = false
            for _ in 0..<200 where !itemSleeps {
                let steps = try await workspace.run("workflows", "steps", "tree-1-1-1", "--json")
                itemSleeps = steps.exitCode == 0 && steps.standardOutput.contains("\"nap\"")
                if !itemSleeps { try await Task.sleep(for: .milliseconds(25)) }
            }
            #expect(itemSleeps)
            let cancel = try await workspace.run("workflows", "cancel", "tree-1")
            #expect(cancel.exitCode == 0, "\(cancel)")
            #expect(await background.waitForExit(timeout: .seconds(30)) == 3)
            for id in ["tree-1-1", "tree-1-1-0", "tree-1-1-1"] {
                let status = try await workspace.run("workflows", "get", id, "--json")
                #expect((try status.outputJSON() as? [String: Any])?["status"] as? String == "CANCELLED", "\(id): \(status)")
            }

            let resumed = try await workspace.run("workflows", "resume", "tree-1")
            #expect(resumed.exitCode == 0, "\(resumed)")
            #expect(resumed.standardOutput == "kid [2,4]\n")
            for id in ["tree-1", "tree-1-0", "tree-1-1", "tree-1-1-0", "tree-1-1-1"] {
                let status = try await workspace.run("workflows", "get", id, "--json")
                #expect((try status.outputJSON() as? [String: Any])?["status"] as? String == "SUCCESS", "\(id): \(status)")
            }
        }
    }
}
