import DBOS
import DBOSSpec
import DBOSTestSupport
import Foundation
import Testing

@Suite struct YAMLLoaderTests {
    func load(_ text: String) throws -> YAMLNode {
        try YAMLLoader().load(text: text, file: "t.yaml").root
    }

    func loadError(_ bytes: [UInt8], loader: YAMLLoader = YAMLLoader()) -> SpecError? {
        do {
            _ = try loader.load(bytes: bytes, file: "t.yaml")
            return nil
        } catch {
            return error
        }
    }

    @Test func plainScalarsFollowTheYAML12CoreSchema() throws {
        let node = try load("""
            a: null
            b: ~
            c:
            d: true
            e: False
            f: TRUE
            g: yes
            h: on
            i: 42
            j: -7
            k: 0x1F
            l: 0o17
            m: 1.5
            n: 1e3
            o: .inf
            p: -.Inf
            r: 1h
            s: 012
            t: 99999999999999999999
            """)
        #expect(node["a"]?.scalarValue == .null)
        #expect(node["b"]?.scalarValue == .null)
        #expect(node["c"]?.scalarValue == .null)
        #expect(node["d"]?.scalarValue == .bool(true))
        #expect(node["e"]?.scalarValue == .bool(false))
        #expect(node["f"]?.scalarValue == .bool(true))
        #expect(node["g"]?.scalarValue == .string("yes"))
        #expect(node["h"]?.scalarValue == .string("on"))
        #expect(node["i"]?.scalarValue == .integer(42))
        #expect(node["j"]?.scalarValue == .integer(-7))
        #expect(node["k"]?.scalarValue == .integer(31))
        #expect(node["l"]?.scalarValue == .integer(15))
        #expect(node["m"]?.scalarValue == .double(1.5))
        #expect(node["n"]?.scalarValue == .double(1000))
        #expect(node["o"]?.scalarValue == .double(.infinity))
        #expect(node["p"]?.scalarValue == .double(-.infinity))
        #expect(node["r"]?.scalarValue == .string("1h"))
        #expect(node["s"]?.scalarValue == .integer(12))
        #expect(node["t"]?.scalarValue == .double(1e20))
        #expect(try load("x: .nan")["x"]?.scalarValue?.doubleValue?.isNaN == true)
    }

    @Test func quotedAndBlockScalarsStayStrings() throws {
        let node = try load("""
            a: "1"
            b: 'true'
            c: !!str 5
            d: |
              null
            e: ""
            """)
        #expect(node["a"]?.scalarValue == .string("1"))
        #expect(node["b"]?.scalarValue == .string("true"))
        #expect(node["c"]?.scalarValue == .string("5"))
        #expect(node["d"]?.scalarValue == .string("null\n"))
        #expect(node["e"]?.scalarValue == .string(""))
    }

    @Test func everyNodeKeepsItsOneBasedLineAndColumn() throws {
        let node = try load("""
            name: x
            steps:
              - id: a
                run: [echo, "ü", z]
            """)
        let step = try #require(node["steps"]?.items?.first)
        #expect(step.location == SourceLocation(file: "t.yaml", line: 3, column: 5))
        #expect(step["id"]?.location == SourceLocation(file: "t.yaml", line: 3, column: 9))
        let run = try #require(step["run"]?.items)
        #expect(run[2].location.line == 4)
        #expect(run[2].location.column == 22)
    }

    @Test func anchorsAndAliasesAreResolved() throws {
        let node = try load("""
            base: &retry {max_attempts: 3}
            other: *retry
            """)
        #expect(node["other"]?.jsonValue == ["max_attempts": 3])
        #expect(node["other"]?.location.line == 2)
    }

    @Test func duplicateKeysAreReportedAtTheSecondKey() throws {
        let document = try YAMLLoader().load(text: "a: 1\nb: 2\na: 3\n", file: "t.yaml")
        #expect(document.problems.map(\.description) == [
            "t.yaml:3:1: error: duplicate key 'a' (first defined at line 1, column 1)"
        ])
    }

    @Test func anEmptyFileIsOneError() {
        #expect(loadError([])?.description == "t.yaml:1:1: error: file is empty; a spec needs at least 'steps:'")
        #expect(loadError(Array("# only a comment\n".utf8))?.message.hasPrefix("file is empty") == true)
    }

    @Test func invalidUTF8IsReportedWithItsPosition() {
        let error = loadError(Array("name: x\nsteps: caf".utf8) + [0xE9, 0x0A])
        #expect(error?.description == "t.yaml:2:11: error: invalid UTF-8 byte 0xE9; a spec must be UTF-8 text")
    }

    @Test func aNULByteIsReportedWithItsPosition() {
        let error = loadError(Array("a: 1\nb: ".utf8) + [0, 0x0A])
        #expect(error?.description == "t.yaml:2:4: error: file contains a NUL byte; a spec must be UTF-8 text")
    }

    @Test func binaryInputIsOneErrorNotACrash() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            let bytes = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) }
            #expect(loadError(bytes) != nil)
        }
    }

    @Test func aFileOverTheSizeLimitIsRejectedBeforeParsing() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("big.yaml")
        let line = Array("  - {id: s, run: echo}\n".utf8)
        var bytes = Array("steps:\n".utf8)
        bytes.reserveCapacity(50 * 1024 * 1024 + 100)
        while bytes.count < 50 * 1024 * 1024 { bytes.append(contentsOf: line) }
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        let clock = ContinuousClock()
        let start = clock.now
        #expect(throws: SpecError.self) { try YAMLLoader().load(file: path) }
        do {
            _ = try YAMLLoader().load(file: path)
        } catch {
            #expect(error.message.contains("50.0 MB"))
            #expect(error.message.contains("at most 10 MB"))
        }
        // The contract is "within a second"; the bound is wider so a loaded CI machine cannot fail it,
        // while a runaway expansion (minutes) still would.
        #expect(clock.now - start < .seconds(10))
    }

    @Test func deepNestingIsCappedWithoutOverflowingTheStack() {
        let text = "a: " + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        let clock = ContinuousClock()
        let start = clock.now
        let error = loadError(Array(text.utf8))
        #expect(error?.description == "t.yaml:1:259: error: nesting deeper than 256 levels")
        let blockText = (0..<300).map { String(repeating: " ", count: 2 * $0) + "k:" }.joined(separator: "\n")
        #expect(loadError(Array(blockText.utf8))?.message == "nesting deeper than 256 levels")
        // The contract is "within a second"; the bound is wider so a loaded CI machine cannot fail it,
        // while a runaway expansion (minutes) still would.
        #expect(clock.now - start < .seconds(10))
    }

    @Test func anAliasBombStopsAtTheExpansionLimit() {
        var lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        for level in 1...12 {
            lines.append("a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]")
        }
        let clock = ContinuousClock()
        let start = clock.now
        let error = loadError(Array(lines.joined(separator: "\n").utf8))
        #expect(error?.message == "alias expansion too large: aliases produce more than 100000 nodes")
        // The contract is "within a second"; the bound is wider so a loaded CI machine cannot fail it,
        // while a runaway expansion (minutes) still would.
        #expect(clock.now - start < .seconds(10))
    }

    @Test func aliasesCannotStackNestingPastTheLimit() {
        var lines = ["a0: &a0 " + String(repeating: "[", count: 200) + String(repeating: "]", count: 200)]
        for level in 1...5 {
            lines.append("a\(level): &a\(level) " + String(repeating: "[", count: 100) + "*a\(level - 1)"
                + String(repeating: "]", count: 100))
        }
        let error = loadError(Array(lines.joined(separator: "\n").utf8))
        #expect(error?.message == "nesting deeper than 256 levels (through the alias '*a0')")
    }

    @Test func controlCharactersAreOneError() {
        let error = loadError(Array("a: b\u{01}c\n".utf8))
        #expect(error?.message.contains("control characters are not allowed") == true)
        #expect(error?.location.line == 1)
    }

    @Test func syntaxErrorsNameTheProblemAndTheContext() {
        let error = loadError(Array("a: [1, 2\nb: 3\n".utf8))
        #expect(error?.message.hasPrefix("YAML syntax error: did not find expected ',' or ']'") == true)
        #expect(error?.message.contains("line 1") == true)
    }

    @Test func aTabIndentationGetsAPlainExplanation() {
        #expect(loadError(Array("name: t\nsteps:\n\t- id: a\n".utf8))?.description
            == "t.yaml:3:1: error: YAML syntax error: a tab cannot indent YAML; use spaces")
    }

    @Test func aSecondDocumentIsAnError() {
        #expect(loadError(Array("a: 1\n---\nb: 2\n".utf8))?.message == "a spec file holds one YAML document; found a second one")
    }
}

extension TemporaryDirectory {
    /// Writes `text` to `name` in the directory and returns the file's path.
    func write(_ name: String, _ text: String) -> String {
        let path = file(name)
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }
}
