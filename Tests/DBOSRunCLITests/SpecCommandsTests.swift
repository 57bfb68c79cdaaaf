import DBOSTestSupport
import Foundation
import Testing

/// Runs the built `dbos-run` executable and captures what it prints.
struct DBOSRunProcess {
    struct Result {
        var status: Int32
        var standardOutput: String
        var standardError: String
    }

    /// The `dbos-run` binary next to the test bundle.
    static var executable: URL {
        var directory = Bundle.main.bundleURL
        while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("dbos-run").path),
            directory.path != "/"
        {
            directory.deleteLastPathComponent()
        }
        return directory.appendingPathComponent("dbos-run")
    }

    static func run(_ arguments: [String]) throws -> Result {
        let directory = try TemporaryDirectory(prefix: "dbos-run-process")
        defer { directory.remove() }
        let process = try ChildProcess(
            executable: executable.path, arguments: arguments, outputPath: directory.file("out"),
            errorOutputPath: directory.file("err"))
        let status = process.waitUntilExit()
        return Result(status: status, standardOutput: process.output, standardError: process.errorOutput)
    }
}

extension TemporaryDirectory {
    func write(_ name: String, _ text: String) -> String {
        let path = file(name)
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }
}

@Suite struct SpecCommandsTests {
    @Test func validateAcceptsAValidSpecWithExitCodeZero() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = directory.write("ok.yaml", "name: ok\nsteps:\n  - {id: a, run: echo hi}\n")
        let result = try DBOSRunProcess.run(["validate", file])
        #expect(result.status == 0)
        #expect(result.standardError.isEmpty)
    }

    @Test func validatePrintsEveryProblemToStandardErrorWithExitCodeTwo() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = directory.write("bad.yaml", """
            steps:
              - id: charge
                run: echo
                neds: [x]
              - id: ship
                needs: [pack]
                sleep: 5x
            """)
        let result = try DBOSRunProcess.run(["validate", file])
        #expect(result.status == 2)
        #expect(result.standardOutput.isEmpty)
        #expect(result.standardError == """
            \(file):4:5: error: unknown field 'neds' in step 'charge' (did you mean 'needs'?)
            \(file):6:13: error: step 'ship' needs unknown step 'pack'
            \(file):7:12: error: invalid duration '5x' for 'sleep' (expected e.g. 250ms, 30s, 5m, 2h, 1d, 1h30m)

            """)
    }

    @Test func validateChecksQueueConflictsAcrossTheGivenFiles() throws {
        let first = try TemporaryDirectory()
        let second = try TemporaryDirectory()
        defer {
            first.remove()
            second.remove()
        }
        let a = first.write("a.yaml", "queues: [{name: q, concurrency: 1}]\nsteps: [{id: s, run: echo}]\n")
        let b = second.write("b.yaml", "queues: [{name: q, concurrency: 2}]\nsteps: [{id: s, run: echo}]\n")
        let result = try DBOSRunProcess.run(["validate", a, b])
        #expect(result.status == 2)
        #expect(result.standardError.split(separator: "\n").count == 2)
        #expect(result.standardError.contains("queue 'q' conflicts with its declaration in \(b):1:10"))
    }

    @Test func badInputIsOneLineWithinASecond() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let empty = directory.write("empty.yaml", "")
        let binary = directory.file("binary.yaml")
        _ = FileManager.default.createFile(atPath: binary, contents: Data([0x89, 0x50, 0x4E, 0x47, 0x00, 0xFF]))
        let list = directory.write("list.yaml", "- a\n- b\n")
        for file in [empty, binary, list] {
            let start = ContinuousClock.now
            let result = try DBOSRunProcess.run(["validate", file])
            // "Within a second" by contract; wider here so a loaded machine cannot fail it.
            #expect(ContinuousClock.now - start < .seconds(10))
            #expect(result.status == 2)
            #expect(result.standardError.split(separator: "\n").count == 1)
            #expect(result.standardError.hasPrefix("\(file):1:1: error: "))
        }
    }

    @Test func graphPrintsMermaidByDefaultAndDotOnRequest() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = directory.write("g.yaml", """
            name: g
            steps:
              - {id: a, run: echo}
              - {id: b, handler: not_registered}
            """)
        let mermaid = try DBOSRunProcess.run(["graph", file])
        #expect(mermaid.status == 0)
        #expect(mermaid.standardOutput.contains("flowchart TD"))
        #expect(mermaid.standardOutput.contains("a --> b"))
        let dot = try DBOSRunProcess.run(["graph", file, "--format", "dot"])
        #expect(dot.status == 0)
        #expect(dot.standardOutput.hasPrefix("digraph \"g\" {"))
        #expect(dot.standardOutput.contains("\"a\" -> \"b\";"))
    }

    @Test func graphOfAnInvalidSpecExitsTwo() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = directory.write("cycle.yaml", "steps:\n  - {id: a, run: echo, needs: [a]}\n")
        let result = try DBOSRunProcess.run(["graph", file])
        #expect(result.status == 2)
        #expect(result.standardError == "\(file):2:32: error: steps form a cycle: a -> a\n")
    }
}
