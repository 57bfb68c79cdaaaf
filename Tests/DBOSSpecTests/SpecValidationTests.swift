import DBOS
import DBOSSpec
import DBOSTestSupport
import Foundation
import Testing

@Suite struct SpecValidationTests {
    /// The handlers the reference specs use, as a program embedding dbos-run would register them.
    static let handlers: Set<String> = ["charge_card"]

    @Test func everyReferenceSpecIsValid() {
        let files = TestFiles.yamlFiles(in: TestFiles.specsDirectory)
        #expect(files.count >= 15)
        let errors = SpecLoader(knownHandlers: Self.handlers).validateFiles(files)
        #expect(errors.isEmpty, "\(errors.map(\.description).joined(separator: "\n"))")
    }

    @Test func referenceSpecsLoadOneByOneWithTheirDirectoryAsContext() throws {
        for file in TestFiles.yamlFiles(in: TestFiles.specsDirectory) {
            let spec = try SpecLoader(knownHandlers: Self.handlers).load(file: file)
            #expect(!spec.steps.isEmpty)
            let graph = StepGraph(steps: spec.steps)
            #expect(graph.topologicalOrder.count == spec.steps.count)
            #expect(GraphRenderer.render(graph, name: spec.name, format: .mermaid).hasPrefix("---\ntitle: \(spec.name)"))
            #expect(spec.sourceText == String(decoding: FileManager.default.contents(atPath: file) ?? Data(), as: UTF8.self))
        }
    }

    @Test(arguments: TestFiles.yamlFiles(in: TestFiles.invalidDirectory).map { ($0 as NSString).lastPathComponent })
    func invalidSpecReportsExactlyTheExpectedProblems(_ name: String) throws {
        let path = TestFiles.invalidDirectory + "/" + name
        let text = String(decoding: try #require(FileManager.default.contents(atPath: path)), as: UTF8.self)
        let expected = text.split(separator: "\n").compactMap { line -> String? in
            line.hasPrefix("# expect: ") ? String(line.dropFirst("# expect: ".count)) : nil
        }
        #expect(!expected.isEmpty, "\(name) lists no '# expect:' lines")
        // Checked alone: the other corpus files are not its directory context.
        let loader = SpecLoader()
        var (spec, errors) = loader.decode(file: path)
        if let spec { errors += SpecValidator().validate(spec) }
        let actual = errors.sorted { $0.location < $1.location }.map {
            "\($0.location.line):\($0.location.column): \($0.message)"
        }
        #expect(actual == expected)
        #expect(errors.allSatisfy { $0.location.file == path })
    }

    @Test func theFullErrorLineHasTheCompilerFormat() {
        let (_, errors) = SpecLoader().decode(text: """
            steps:
              - id: charge
                run: echo
                neds: [x]
            """, file: "specs/a.yaml")
        #expect(errors.map(\.description)
            == ["specs/a.yaml:4:5: error: unknown field 'neds' in step 'charge' (did you mean 'needs'?)"])
    }

    @Test func queueConflictsAcrossSpecsAreReportedInEachFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let a = directory.write("a.yaml", """
            queues:
              - {name: shipping, concurrency: 20}
            steps: [{id: s, run: echo}]
            """)
        let b = directory.write("b.yaml", """
            queues:
              - {name: shipping, concurrency: 10}
              - {name: other}
            steps: [{id: s, run: echo}]
            """)
        let errors = SpecLoader().validateFiles([a, b]).map(\.description)
        #expect(errors == [
            "\(a):2:5: error: queue 'shipping' conflicts with its declaration in \(b):2:5 (here: concurrency 20; there: concurrency 10); declare it identically or in one spec only",
            "\(b):2:5: error: queue 'shipping' conflicts with its declaration in \(a):2:5 (here: concurrency 10; there: concurrency 20); declare it identically or in one spec only",
        ])
        // Identical declarations are fine.
        let c = directory.write("c.yaml", "queues: [{name: other}]\nsteps: [{id: s, run: echo}]\n")
        #expect(SpecLoader().validateFiles([c]).count == 0)
    }

    @Test func childSpecsAreFoundByNameInTheSameDirectory() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        _ = directory.write("child.yaml", "name: shipper\nqueues: [{name: q}]\nsteps: [{id: s, run: echo}]\n")
        let parent = directory.write("parent.yaml", """
            steps:
              - {id: ok, workflow: shipper, queue: q}
              - {id: typo, workflow: shiper}
            """)
        let errors = SpecLoader().validateFiles([parent]).map(\.description)
        #expect(errors == [
            "\(parent):3:26: error: unknown child spec 'shiper': no spec in the same directory has this name (did you mean 'shipper'?)"
        ])
        #expect(throws: SpecValidationError.self) { try SpecLoader().load(file: parent) }
    }

    @Test func aWorkerLoadsSeveralFilesCheckedTogether() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let parent = directory.write("parent.yaml", "name: parent\nsteps: [{id: c, workflow: child}]\n")
        let child = directory.write("child.yaml", "name: child\nsteps: [{id: s, run: echo}]\n")
        let specs = try SpecLoader().loadFiles([parent, child])
        #expect(specs.map(\.name) == ["parent", "child"])
        let broken = directory.write("broken.yaml", "steps: [{id: s, sleep: 5x}]\n")
        #expect(throws: SpecValidationError.self) { try SpecLoader().loadFiles([parent, broken]) }
    }

    @Test func secretsAValueReadsAreListedForMasking() {
        let (spec, _) = SpecLoader().decode(text: """
            steps:
              - {id: s, run: echo, env: {A: "${{ secrets.API_TOKEN }}", B: "x ${{ default(secrets.OTHER, '') }}"}}
            """, file: "s.yaml")
        let names = spec?.steps[0].environment.map(\.value.referencedSecrets).reduce(Set<String>()) { $0.union($1) }
        #expect(names == ["API_TOKEN", "OTHER"])
    }

    @Test func workflowNamesMustBeUniqueAmongTheGivenFiles() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let a = directory.write("a.yaml", "name: same\nsteps: [{id: s, run: echo}]\n")
        let b = directory.write("b.yaml", "name: same\nsteps: [{id: s, run: echo}]\n")
        #expect(SpecLoader().validateFiles([a, b]).map(\.description)
            == ["\(b):1:7: error: workflow name 'same' is also used by \(a); names must be unique"])
    }

    @Test func handlersAreKnownOnlyWhenRegistered() {
        let text = "steps: [{id: pay, handler: charge_card}]\n"
        #expect(throws: SpecValidationError.self) { try SpecLoader().load(text: text, file: "h.yaml") }
        #expect(throws: Never.self) { try SpecLoader(knownHandlers: ["charge_card"]).load(text: text, file: "h.yaml") }
        #expect(throws: SpecError("unknown handler 'charge_crd' (did you mean 'charge_card'?)",
            at: SourceLocation(file: "h.yaml", line: 1, column: 19)))
        {
            do throws(SpecValidationError) {
                _ = try SpecLoader(knownHandlers: ["charge_card"]).load(
                    text: "steps: [{id: pay, handler: charge_crd}]\n", file: "h.yaml")
            } catch {
                throw error.errors[0]
            }
        }
    }

    @Test func theWorkflowNameDefaultsToTheFileName() throws {
        let spec = try SpecLoader().load(text: "steps: [{id: s, run: echo}]\n", file: "dir/order-pipeline.yml")
        #expect(spec.name == "order-pipeline")
    }

    @Test func stepReferencesMustBeTransitiveNeeds() {
        let (spec, _) = SpecLoader().decode(text: """
            steps:
              - {id: a, run: echo}
              - {id: b, run: echo, needs: [a]}
              - {id: c, run: echo, needs: [b], env: {X: "${{ steps.a.output }}"}}
              - {id: d, run: echo, needs: [], env: {X: "${{ steps.a.output }}"}}
              - id: e
                run: echo
                compensate: {run: echo, env: {X: "${{ steps.e.output }}"}}
            output: ${{ steps.d.output }}
            """, file: "r.yaml")
        let errors = spec.map { SpecValidator().validate($0) } ?? []
        #expect(errors.map(\.description) == [
            "r.yaml:5:49: error: step 'd' reads steps.a but does not need 'a', so its result may not exist yet; add 'a' to 'needs'"
        ])
    }

    @Test func mapBodiesSeeItemIndexAndTheEnclosingStepsNeeds() {
        let (spec, errors) = SpecLoader().decode(text: """
            steps:
              - {id: list, run: echo, output: json}
              - id: each
                map: ${{ steps.list.output }}
                steps:
                  - {id: one, run: echo, env: {I: "${{ item }}", N: "${{ index }}", L: "${{ steps.list.output }}"}}
                  - {id: two, run: echo, env: {P: "${{ steps.one.output }}"}}
              - {id: after, run: echo, env: {X: "${{ item }}"}}
            """, file: "m.yaml")
        #expect(errors.isEmpty)
        let problems = spec.map { SpecValidator().validate($0) } ?? []
        #expect(problems.map(\.description) == ["m.yaml:8:42: error: 'item' is only available inside a 'map' body"])
    }
}

@Suite struct SpecDurationTests {
    @Test func durationsParseIntoSwiftDurations() {
        #expect(SpecDuration.parse("250ms") == .milliseconds(250))
        #expect(SpecDuration.parse("30s") == .seconds(30))
        #expect(SpecDuration.parse("5m") == .seconds(300))
        #expect(SpecDuration.parse("2h") == .seconds(7200))
        #expect(SpecDuration.parse("1d") == .seconds(86_400))
        #expect(SpecDuration.parse("1h30m") == .seconds(5400))
        #expect(SpecDuration.parse("1m30s500ms") == .milliseconds(90_500))
    }

    @Test func negativeEmptyUnitlessAndUnknownUnitsAreRejected() {
        for text in ["0", "-1s", "", "5x", "1.5h", "30", "1m1h", "1h 30m", "s", "99999999999999999d"] {
            #expect(SpecDuration.parse(text) == nil, "\(text)")
        }
    }

    @Test func durationsPrintInTheSpecSyntax() {
        #expect(SpecDuration.text(.seconds(5400)) == "1h30m")
        #expect(SpecDuration.text(.milliseconds(250)) == "250ms")
    }
}

@Suite struct InputSchemaTests {
    func schema(_ text: String) throws -> InputSchema {
        let (spec, errors) = SpecLoader().decode(text: text + "\nsteps: [{id: s, run: echo}]\n", file: "i.yaml")
        #expect(errors.isEmpty, "\(errors)")
        return try #require(spec?.inputSchema)
    }

    @Test func defaultsAreAppliedToMissingProperties() throws {
        let input = try schema("""
            input:
              type: object
              properties:
                amount: {type: number, default: 0}
                options:
                  type: object
                  properties:
                    fast: {type: boolean, default: true}
                  default: {}
            """)
        #expect(input.applyingDefaults(to: nil) == ["amount": 0, "options": ["fast": true]])
        #expect(input.applyingDefaults(to: ["amount": 5]) == ["amount": 5, "options": ["fast": true]])
    }

    @Test func aRunsInputIsValidatedAndDefaultedThroughTheSpec() throws {
        let spec = try SpecLoader().load(file: TestFiles.specsDirectory + "/messaging.yaml")
        #expect(try spec.preparedInput(nil) == [:])
        let schemaText = "input: {type: object, required: [id], properties: {id: {type: string}, n: {type: integer, default: 1}}}\nsteps: [{id: s, run: echo}]\n"
        let withSchema = try SpecLoader().load(text: schemaText, file: "p.yaml")
        #expect(try withSchema.preparedInput(["id": "x"]) == ["id": "x", "n": 1])
        #expect(throws: SpecValidationError.self) { try withSchema.preparedInput(["n": 2]) }
    }

    @Test func inputProblemsNameTheField() throws {
        let input = try schema("""
            input:
              type: object
              required: [order_id]
              properties:
                order_id: {type: string}
                count: {type: integer, minimum: 1, maximum: 10}
                mode: {enum: [fast, slow]}
                tags: {type: array, items: {type: string}}
            """)
        #expect(input.validateInput(["order_id": "A1", "count": 3, "tags": ["x"]]).isEmpty)
        let messages = input.validateInput(["count": 11, "mode": "medium", "tags": ["x", 2]]).map(\.message)
        #expect(messages == [
            "invalid input: input.order_id is required",
            "invalid input: input.count must be at most 10, not 11",
            "invalid input: input.mode must be one of \"fast\", \"slow\", not \"medium\"",
            "invalid input: input.tags[1] must be a string, not integer",
        ])
        #expect(input.validateInput("text").map(\.message) == ["invalid input: input must be an object, not string"])
        #expect(input.validateInput(["order_id": "A", "count": 2.0]).isEmpty)
    }
}

@Suite struct CronScheduleValidationTests {
    func problems(_ schedule: String) -> [String] {
        SpecLoader().decode(text: "schedule: \"\(schedule)\"\nsteps: [{id: s, run: echo}]\n", file: "c.yaml").errors
            .map(\.message)
    }

    @Test func wellFormedSchedulesPass() {
        for schedule in ["0 */15 * * * *", "*/30 * * * * *", "0 0 12 * * Sun", "0 0 0 1,15 JAN-jun ?", "5-10/2 0 0 * * 1-5"] {
            #expect(problems(schedule).isEmpty, "\(schedule)")
        }
    }

    @Test func badSchedulesNameTheField() {
        #expect(problems("0 0 24 * * *") == ["invalid cron schedule '0 0 24 * * *': field 3 (hour): 24 is out of range 0-23"])
        #expect(problems("* * * * *").first?.contains("expected 6 fields") == true)
        #expect(problems("0 0 0 * FOO *") == ["invalid cron schedule '0 0 0 * FOO *': field 5 (month): 'FOO' is not a number or a name like JAN"])
        #expect(problems("*/0 * * * * *") == ["invalid cron schedule '*/0 * * * * *': field 1 (second): invalid step '/0'"])
        #expect(problems("0 30-10 * * * *") == ["invalid cron schedule '0 30-10 * * * *': field 2 (minute): range 30-10 is reversed"])
        #expect(problems("0 0 0 0 * *") == ["invalid cron schedule '0 0 0 0 * *': field 4 (day of month): 0 is out of range 1-31"])
    }
}
