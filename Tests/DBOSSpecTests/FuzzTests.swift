import DBOS
import DBOSSpec
import DBOSTestSupport
import Foundation
import Testing

/// Seeded random testing of the three parsers that read what users write: the YAML loader, the spec
/// validator and the expression parser. The property is the same for each: no crash, no hang, and either a
/// value or errors that each carry a position inside the input and one line of text.
///
/// Every run prints its seed. `DBOS_FUZZ_SEED` replays one, `DBOS_FUZZ_ITERATIONS` runs longer (the defaults
/// keep each target to a few seconds of a debug build). A failure names the seed and the iteration; a case it
/// finds belongs in `FuzzRegressionTests` below once fixed.
@Suite(.timeLimit(.minutes(5))) struct FuzzTests {
    /// The seed and size of one target's run.
    struct FuzzRun {
        let target: String
        let seed: UInt64
        let iterations: Int

        init(target: String, defaultIterations: Int) {
            let environment = ProcessInfo.processInfo.environment
            self.target = target
            seed = environment["DBOS_FUZZ_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0...UInt64.max)
            iterations = environment["DBOS_FUZZ_ITERATIONS"].flatMap { Int($0) } ?? defaultIterations
            print("fuzz \(target): DBOS_FUZZ_SEED=\(seed) DBOS_FUZZ_ITERATIONS=\(iterations)")
        }

        /// Runs `body` once per iteration with a generator of its own, so any one case replays from (seed, iteration).
        func forEachCase(_ body: (inout SplitMix64, _ replay: String) throws -> Void) rethrows {
            for iteration in 0..<iterations {
                var random = SplitMix64(seed: seed ^ (UInt64(iteration) &* 0xD1B5_4A32_D192_ED03))
                try body(&random, "\(target): DBOS_FUZZ_SEED=\(seed), iteration \(iteration)")
            }
        }
    }

    // MARK: The YAML loader

    static let yamlPieces = [":", ": ", "- ", "-", "[", "]", "{", "}", ",", "&a ", "*a", "&b ", "*b", "!!str ", "!!int ",
        "!tag ", "|", "|-", ">", "'", "\"", "#", "\n", "\n  ", "\n    ", "\t", "? ", "---\n", "...\n", "%YAML 1.2\n",
        "<<: *a", "\\", "\\u00", "key", "steps", "id", "${{", "}}", "0x", "1e9999", ".nan", "~", "null", "é", "\u{FEFF}",
        "\u{0}", "\u{1}", "\r\n", "\u{85}", "\u{2028}", "\u{10FFFF}"]

    static let referenceSpecs: [[UInt8]] = TestFiles.yamlFiles(in: TestFiles.specsDirectory).compactMap {
        FileManager.default.contents(atPath: $0).map(Array.init)
    }

    /// One hostile YAML document: random pieces, a mutated reference spec, deep nesting, an alias graph, or a
    /// huge scalar.
    static func hostileYAML(_ random: inout SplitMix64) -> [UInt8] {
        switch Int.random(in: 0..<100, using: &random) {
        case 0..<30:
            return Array((0..<Int.random(in: 0...80, using: &random)).map { _ in
                yamlPieces.randomElement(using: &random)!
            }.joined().utf8)
        case 30..<40:
            return (0..<Int.random(in: 0...512, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        case 40..<75:
            var bytes = referenceSpecs.randomElement(using: &random) ?? []
            for _ in 0..<Int.random(in: 1...8, using: &random) {
                let position = Int.random(in: 0...bytes.count, using: &random)
                switch Int.random(in: 0..<4, using: &random) {
                case 0: bytes.insert(contentsOf: Array(yamlPieces.randomElement(using: &random)!.utf8), at: position)
                case 1: bytes.removeSubrange(position..<min(bytes.count, position + Int.random(in: 1...16, using: &random)))
                case 2 where position < bytes.count: bytes[position] = UInt8.random(in: 0...255, using: &random)
                default:
                    let end = min(bytes.count, position + Int.random(in: 1...64, using: &random))
                    bytes.insert(contentsOf: bytes[position..<end], at: Int.random(in: 0...bytes.count, using: &random))
                }
            }
            return bytes
        case 75..<88:
            // Deep nesting, flow or block, mixed, possibly unclosed.
            let depth = Int.random(in: 100...3000, using: &random)
            var text = "a: "
            var closers: [String] = []
            for level in 0..<depth {
                switch Int.random(in: 0..<3, using: &random) {
                case 0: text += "["; closers.append("]")
                case 1: text += "{k: "; closers.append("}")
                default: text += "\n" + String(repeating: " ", count: min(level, 400)) + "- "; closers.append("")
                }
            }
            if Bool.random(using: &random) { text += "x" + closers.reversed().joined() }
            return Array(text.utf8)
        case 88..<98:
            // An alias graph: each anchor refers to a few earlier ones.
            let anchors = Int.random(in: 2...30, using: &random)
            var lines = ["a0: &a0 [x, y]"]
            for index in 1..<anchors {
                let references = (0..<Int.random(in: 1...12, using: &random)).map { _ in
                    "*a\(Int.random(in: 0..<index, using: &random))"
                }
                lines.append("a\(index): &a\(index) [" + references.joined(separator: ", ") + "]")
            }
            return Array(lines.joined(separator: "\n").utf8)
        default:
            // A huge scalar, plain, quoted or block.
            let body = String(repeating: Bool.random(using: &random) ? "x" : "é ", count: Int.random(in: 10_000...500_000, using: &random))
            let styles = ["name: \(body)\nsteps: []", "name: \"\(body)\"", "name: |\n  \(body)\n", "\(body): 1"]
            return Array(styles.randomElement(using: &random)!.utf8)
        }
    }

    /// The lines of `text` as YAML counts them: a break is LF, CR, CRLF, NEL, LS or PS.
    static func lineCount(_ text: String) -> Int {
        var count = 1
        var previous: Unicode.Scalar?
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": if previous != "\r" { count += 1 }
            case "\r", "\u{85}", "\u{2028}", "\u{2029}": count += 1
            default: break
            }
            previous = scalar
        }
        return count
    }

    /// Checks one error: a position inside the input (a line may be one past the last, for an unexpected end) and one line of text.
    static func checkError(_ error: SpecError, lines: Int, _ replay: String) {
        #expect(error.location.line >= 1 && error.location.line <= lines + 1, "\(replay): \(error)")
        #expect(error.location.column >= 1, "\(replay): \(error)")
        #expect(!error.message.isEmpty && !error.message.contains("\n"), "\(replay): \(error)")
    }

    @Test func theYAMLLoaderReturnsATreeOrOnePositionedErrorForHostileInput() {
        FuzzRun(target: "yaml", defaultIterations: 500).forEachCase { random, replay in
            let bytes = Self.hostileYAML(&random)
            let lines = Self.lineCount(String(decoding: bytes, as: UTF8.self))
            do {
                let document = try YAMLLoader().load(bytes: bytes, file: "fuzz.yaml")
                for problem in document.problems { Self.checkError(problem, lines: lines, replay) }
                // What loads goes on to the validator, which must cope with any tree.
                let text = String(decoding: bytes, as: UTF8.self)
                let (spec, errors) = SpecLoader().decode(text: text, file: "fuzz.yaml")
                var all = errors
                if let spec { all += SpecValidator().validate(spec) }
                for error in all { Self.checkError(error, lines: lines, replay) }
            } catch let error as SpecError {
                Self.checkError(error, lines: lines, replay)
            } catch {
                Issue.record("\(replay): not a SpecError: \(error)")
            }
        }
    }

    // MARK: The validator

    static let scalars = ["a", "b", "c", "x", "echo hi", "${{ steps.a.output }}", "${{ input.x }}", "${{ item }}",
        "${{ steps.b.status == 'error' }}", "${{", "}}", "${{ }}", "${{ secrets.TOKEN }}", "1s", "250ms", "0s", "1h30m",
        "-1s", "0 * * * * *", "*/5 * * * * *", "99 99 99 99 99 99", "Europe/Paris", "Mars/Base", "q", "text", "json",
        "lines", "", " ", "'", "\"", "0", "1", "-1", "2147483648", "1.5", "true", "false", "null", "~", "é", "💥"]
    static let stepKeys = ["id", "run", "handler", "with", "sleep", "recv", "send", "set_event", "get_event", "workflow",
        "map", "parallel", "steps", "needs", "if", "retry", "timeout", "env", "continue_on_error", "compensate",
        "output", "queue", "priority", "dedup_id", "wait", "default", "topic", "to", "key", "value", "from", "message",
        "max_attempts", "interval", "backoff", "max_interval", "limit", "period", "nonsense"]
    static let workflowKeys = ["name", "description", "input", "timeout", "queues", "schedule", "timezone", "steps",
        "output", "type", "properties", "required", "default", "enum", "items", "minimum", "maximum", "nonsense"]

    /// A random YAML value, mostly spec-shaped: mappings with spec keys, step lists, scalars that mean something.
    static func specLikeValue(_ random: inout SplitMix64, depth: Int) -> String {
        let indent = String(repeating: "  ", count: depth)
        switch depth > 5 ? 0 : Int.random(in: 0..<10, using: &random) {
        case 0..<5:
            let scalar = scalars.randomElement(using: &random)!
            return Bool.random(using: &random) ? scalar : "\"" + scalar.replacingOccurrences(of: "\\", with: "\\\\")
                .replacingOccurrences(of: "\"", with: "\\\"") + "\""
        case 5..<7:
            // A list of step-like mappings.
            return (0..<Int.random(in: 0...4, using: &random)).map { _ in
                "\n\(indent)- " + mapping(&random, keys: stepKeys, depth: depth + 1).dropFirst(indent.count + 3)
            }.joined().ifEmpty("[]")
        case 7:
            return "[" + (0..<Int.random(in: 0...4, using: &random)).map { _ in
                scalars.randomElement(using: &random)!.isEmpty ? "''" : "\"\(scalars.randomElement(using: &random)!.replacingOccurrences(of: "\"", with: ""))\""
            }.joined(separator: ", ") + "]"
        default:
            return mapping(&random, keys: Bool.random(using: &random) ? stepKeys : workflowKeys, depth: depth + 1)
        }
    }

    static func mapping(_ random: inout SplitMix64, keys: [String], depth: Int) -> String {
        let indent = String(repeating: "  ", count: depth)
        let chosen = (0..<Int.random(in: 1...6, using: &random)).map { _ in keys.randomElement(using: &random)! }
        return Array(Set(chosen)).sorted().map { key in
            "\n\(indent)\(key): " + specLikeValue(&random, depth: depth)
        }.joined()
    }

    @Test func theValidatorReportsPositionedErrorsOrAnAcyclicGraphForSpecShapedTrees() {
        FuzzRun(target: "validator", defaultIterations: 1000).forEachCase { random, replay in
            var text = "name: fuzz\nsteps:"
            for index in 0..<Int.random(in: 1...6, using: &random) {
                text += "\n  - id: " + (Int.random(in: 0..<8, using: &random) == 0 ? "x" : "s\(index)")
                text += Self.mapping(&random, keys: Self.stepKeys, depth: 2)
            }
            if Bool.random(using: &random) { text += Self.mapping(&random, keys: Self.workflowKeys, depth: 0) }
            let lines = Self.lineCount(text)
            let (spec, errors) = SpecLoader(knownHandlers: ["a"]).decode(text: text, file: "fuzz.yaml")
            var all = errors
            if let spec { all += SpecValidator(context: ValidationContext(knownHandlers: ["a"])).validate(spec) }
            for error in all { Self.checkError(error, lines: lines, "\(replay)\n\(text)") }
            if let spec, all.isEmpty {
                let graph = StepGraph(steps: spec.steps)
                #expect(graph.topologicalOrder.count == spec.steps.count, "\(replay): a valid spec's graph is acyclic")
                _ = GraphRenderer.render(graph, name: spec.name, format: .mermaid)
                _ = GraphRenderer.render(graph, name: spec.name, format: .dot)
            }
        }
    }

    // MARK: The expression parser and evaluator

    static let expressionPieces = ["input", "steps", "secrets", "workflow", "item", "index", ".", ".name", ".output",
        "[", "]", "[0]", "['k']", "(", ")", "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "!",
        ",", "'s'", "'it''s'", "\"t\"", "'", "\"", "0", "1.5", "-0", "1e308", "9223372036854775807", "99999999999999999999",
        "null", "true", "false", "len", "contains", "startsWith", "endsWith", "join", "default", "toJSON", "fromJSON",
        "fromJSON('[[[[1]]]]')", "fromJSON('{\"a\":')", " ", "\t", "\n", "é", "💥", "\u{0}", "${{", "}}", "$", "{", "}"]

    static func hostileExpression(_ random: inout SplitMix64) -> String {
        switch Int.random(in: 0..<10, using: &random) {
        case 0:
            // Deep nesting of one construct.
            let depth = Int.random(in: 10...5000, using: &random)
            switch Int.random(in: 0..<5, using: &random) {
            case 0: return String(repeating: "(", count: depth) + "1" + String(repeating: ")", count: depth)
            case 1: return String(repeating: "!", count: depth) + "true"
            case 2: return String(repeating: "len(", count: depth) + "'x'" + String(repeating: ")", count: depth)
            case 3: return "input" + String(repeating: "[input", count: depth) + String(repeating: "]", count: depth)
            default: return (0..<depth).map { _ in "1" }.joined(separator: Bool.random(using: &random) ? " + " : " && ")
            }
        case 1:
            return "fromJSON('" + String(repeating: "[", count: Int.random(in: 100...5000, using: &random)) + "')"
        default:
            return (0..<Int.random(in: 1...40, using: &random)).map { _ in
                expressionPieces.randomElement(using: &random)!
            }.joined(separator: Bool.random(using: &random) ? " " : "")
        }
    }

    static func checkError(_ error: ExpressionError, text: String, _ replay: String) {
        #expect(error.offset >= 0 && error.offset <= text.count, "\(replay): \(text.prefix(200)): \(error)")
        #expect(!error.message.isEmpty, "\(replay): \(text.prefix(200))")
    }

    @Test func theExpressionParserAndEvaluatorReturnAValueOrAnErrorAtAnOffsetInsideTheText() {
        let scope = ExpressionScope(variables: [
            "input": ["name": "x", "list": [1, 2, 3], "nested": ["k": ["deeper": true]], "0": "zero"],
            "steps": ["a": ["output": "out", "status": "success"]], "item": 1, "index": 0,
            "workflow": ["id": "w", "name": "fuzz"],
        ])
        FuzzRun(target: "expressions", defaultIterations: 5000).forEachCase { random, replay in
            let text = Self.hostileExpression(&random)
            do {
                let expression = try ExpressionParser.parse(text)
                do {
                    _ = try expression.evaluate(in: scope)
                } catch let error as ExpressionError {
                    Self.checkError(error, text: text, replay)
                } catch {
                    Issue.record("\(replay): not an ExpressionError: \(error)")
                }
            } catch let error as ExpressionError {
                Self.checkError(error, text: text, replay)
            } catch {
                Issue.record("\(replay): not an ExpressionError: \(error)")
            }
        }
    }
}

extension String {
    /// `replacement` when the string is empty.
    fileprivate func ifEmpty(_ replacement: String) -> String { isEmpty ? replacement : self }
}

/// Cases the fuzzers found, kept as tests once fixed.
@Suite struct FuzzRegressionTests {
    /// yaml, DBOS_FUZZ_SEED=5975434362601055517, iteration 578: a quoted key holding a newline was echoed raw,
    /// so the "one line per error" output of `dbos-run validate` broke in two.
    @Test func anUnknownKeyWithANewlineIsQuotedOnOneLine() {
        let (_, errors) = SpecLoader().decode(text: "\"id\\n.nan\": 1\nsteps: [{id: a, run: echo}]", file: "f.yaml")
        #expect(errors.map(\.description) == [
            #"f.yaml:1:1: error: unknown field 'id\n.nan' in the workflow; expected one of name, description, input, timeout, queues, schedule, timezone, steps, output"#
        ])
    }

    /// expressions, DBOS_FUZZ_SEED=7891195645651782692: fromJSON of exactly 513 `[` crashed the process inside
    /// Foundation's JSON parser.
    @Test func fromJSONOfTextNestedPastTheLimitIsAnErrorAtTheCall() throws {
        let text = "fromJSON('" + String(repeating: "[", count: 513) + "')"
        let expression = try ExpressionParser.parse(text)
        #expect(throws: ExpressionError.self) { _ = try expression.evaluate(in: ExpressionScope(variables: [:])) }
    }

    @Test func aHugeKeyIsCutInItsErrorMessage() {
        let key = String(repeating: "k", count: 100_000)
        let (_, errors) = SpecLoader().decode(text: "? \(key)\n: 1\nsteps: [{id: a, run: echo}]", file: "f.yaml")
        #expect(errors.count == 1)
        #expect(errors.first.map { $0.message.count < 1100 && $0.message.hasSuffix("more characters)") } == true)
    }
}
