import DBOS
import DBOSSpec
import DBOSTestSupport
import Foundation
import Testing

@Suite struct MutatedSpecTests {
    static let fragments = [":", "-", "[", "]", "{", "}", "${{", "}}", "'", "\"", "\n", "  ", "&a", "*a", "needs: [x]",
        "|", "#", ",", "run: ${{ steps.a.output }}", "\t", "0s", "!", "(", "steps."]

    @Test func randomlyMutatedReferenceSpecsNeverCrashTheValidator() throws {
        let loader = SpecLoader(knownHandlers: ["charge_card"])
        for file in TestFiles.yamlFiles(in: TestFiles.specsDirectory) {
            let original = Array(try #require(FileManager.default.contents(atPath: file)))
            for seed in 0..<40 {
                var random = SplitMix64(seed: UInt64(seed) &* 7919 &+ UInt64(original.count))
                var bytes = original
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    let position = Int.random(in: 0...bytes.count, using: &random)
                    switch Int.random(in: 0..<3, using: &random) {
                    case 0:
                        let fragment = Self.fragments.randomElement(using: &random) ?? ":"
                        bytes.insert(contentsOf: Array(fragment.utf8), at: position)
                    case 1:
                        let end = min(bytes.count, position + Int.random(in: 1...12, using: &random))
                        bytes.removeSubrange(position..<end)
                    default:
                        bytes = Array(bytes.prefix(position))
                    }
                }
                let (spec, errors) = loader.decode(text: String(decoding: bytes, as: UTF8.self), file: "m.yaml")
                var all = errors
                if let spec {
                    all += SpecValidator(context: ValidationContext(knownHandlers: ["charge_card"])).validate(spec)
                    _ = GraphRenderer.render(StepGraph(steps: spec.steps), name: spec.name, format: .dot)
                }
                #expect(all.allSatisfy { $0.location.line >= 1 && $0.location.column >= 1 && !$0.message.isEmpty })
            }
        }
    }
}

@Suite struct RandomExpressionTests {
    static let pieces = ["input", ".", "name", "[", "]", "0", "1.5", "'s'", "\"t\"", "(", ")", "+", "-", "*", "/",
        "==", "!=", "<", ">=", "&&", "||", "!", "len", "join", ",", "fromJSON", "'{'", "null", "true", "steps",
        "secrets", "default", "toJSON", " ", "9223372036854775807", "contains"]

    @Test func randomExpressionsParseOrFailWithAnOffsetInsideTheText() {
        var random = SplitMix64(seed: 42)
        let scope = ExpressionScope(variables: ["input": ["name": "x", "list": [1, 2]], "steps": [:]])
        for _ in 0..<5000 {
            let text = (0..<Int.random(in: 1...12, using: &random)).map { _ in
                Self.pieces.randomElement(using: &random) ?? " "
            }.joined()
            do {
                let expression = try ExpressionParser.parse(text)
                do {
                    _ = try expression.evaluate(in: scope)
                } catch {
                    #expect(error.offset >= 0 && error.offset <= text.count, "\(text)")
                }
            } catch {
                #expect(error.offset >= 0 && error.offset <= text.count, "\(text)")
            }
        }
    }
}
