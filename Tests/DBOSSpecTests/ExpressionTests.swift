import DBOS
import DBOSSpec
import Testing

@Suite struct ExpressionTests {
    let scope = ExpressionScope(
        variables: [
            "input": ["name": "ada", "count": 3, "price": 2.5, "tags": ["a", "b"], "empty": "", "nested": ["k": [1, 2]]],
            "steps": ["build": ["output": "ok", "status": "success", "error": nil]],
            "workflow": ["id": "wf-1", "name": "demo"],
        ],
        secret: { $0 == "TOKEN" ? "s3cret" : nil })

    func value(_ text: String) throws -> JSONValue {
        try ExpressionParser.parse(text).evaluate(in: scope)
    }

    func parseError(_ text: String) -> ExpressionError? {
        do {
            _ = try ExpressionParser.parse(text)
            return nil
        } catch {
            return error
        }
    }

    func evaluationError(_ text: String) -> ExpressionError? {
        do {
            _ = try value(text)
            return nil
        } catch {
            return error as? ExpressionError
        }
    }

    @Test func multiplicationBindsTighterThanAdditionAndComparison() throws {
        #expect(try value("1 + 2 * 3") == 7)
        #expect(try value("(1 + 2) * 3") == 9)
        #expect(try value("10 - 4 - 3") == 3)
        #expect(try value("1 + 2 == 3") == true)
        #expect(try value("2 * 3 > 5 && 1 < 2") == true)
        #expect(try value("false || true && false") == false)
        #expect(try value("!true || true") == true)
        #expect(try value("-2 * -3") == 6)
        #expect(try value("1 < 2 == true") == true)
    }

    @Test func numbersKeepIntegerOrFloatingPointTypes() throws {
        #expect(try value("7 / 2") == .double(3.5))
        #expect(try value("8 / 2") == .integer(4))
        #expect(try value("input.count * input.price") == .double(7.5))
        #expect(try value("1 == 1.0") == true)
        #expect(try value("9223372036854775807 + 1") == .double(9223372036854775808.0))
        #expect(try value("1.5e2") == .double(150))
    }

    @Test func namesFieldsAndIndexesReadTheScope() throws {
        #expect(try value("input.name") == "ada")
        #expect(try value("input.tags[1]") == "b")
        #expect(try value("input['name']") == "ada")
        #expect(try value("input.tags[5]") == nil)
        #expect(try value("input.missing.deeper") == nil)
        #expect(try value("steps.build.output") == "ok")
        #expect(try value("workflow.name + '/' + workflow.id") == "demo/wf-1")
        #expect(try value("input.nested.k") == [1, 2])
        #expect(try value("secrets.TOKEN") == "s3cret")
        #expect(try value("secrets.UNSET") == nil)
    }

    @Test func stringsComparePlusConcatenatesAndLogicalOperatorsReturnOperands() throws {
        #expect(try value("'abc' < 'abd'") == true)
        #expect(try value("\"a\\\"b\"") == "a\"b")
        #expect(try value("'it''s'") == "it's")
        #expect(try value("'n=' + 3") == "n=3")
        #expect(try value("input.empty || 'fallback'") == "fallback")
        #expect(try value("input.name && 'yes'") == "yes")
        #expect(try value("!input.empty") == true)
        #expect(try value("null == null") == true)
    }

    @Test func functionsComputeTheDocumentedResults() throws {
        #expect(try value("len(input.tags)") == 2)
        #expect(try value("len('héllo')") == 5)
        #expect(try value("contains(input.tags, 'a')") == true)
        #expect(try value("contains('hello', 'ell')") == true)
        #expect(try value("startsWith('hello', 'he') && endsWith('hello', 'lo')") == true)
        #expect(try value("join(input.tags, '-')") == "a-b")
        #expect(try value("join(input.tags)") == "a,b")
        #expect(try value("default(input.missing, 5)") == 5)
        #expect(try value("default(input.name, 5)") == "ada")
        #expect(try value("toJSON(input.nested)") == #"{"k":[1,2]}"#)
        #expect(try value("fromJSON('{\"a\": [1, true]}').a[1]") == true)
    }

    @Test func parseErrorsPointAtTheOffendingCharacter() {
        #expect(parseError("1 +") == ExpressionError("expected a value but the expression ended", offset: 3))
        #expect(parseError("a = b") == ExpressionError("unexpected '='; use '==' to compare", offset: 2))
        #expect(parseError("(1 + 2") == ExpressionError("expected ')' but found the end of the expression (to close the '(' at offset 1)", offset: 6))
        #expect(parseError("'abc") == ExpressionError("unterminated string: missing closing '", offset: 0))
        #expect(parseError("lenn(x)") == ExpressionError("unknown function 'lenn' (did you mean 'len'?)", offset: 0))
        #expect(parseError("len(1, 2)") == ExpressionError("len() takes 1 argument, got 2", offset: 0))
        #expect(parseError("a.1") == ExpressionError("use [1] to index a list, not .1", offset: 1))
        #expect(parseError("1 2") == ExpressionError("unexpected '2' after the expression", offset: 2))
        #expect(parseError("a & b") == ExpressionError("unexpected '&'; use '&&'", offset: 2))
        #expect(parseError("") == ExpressionError("empty expression", offset: 0))
        #expect(parseError(Array(repeating: "1", count: 100_000).joined(separator: "+"))?.message
            == "expression too long: more than 1000 tokens")
        #expect(parseError(String(repeating: "(", count: 100) + "1" + String(repeating: ")", count: 100))?.message
            == "expression nested deeper than 64 levels")
    }

    @Test func typeErrorsAtRuntimeNameBothTypes() {
        #expect(evaluationError("1 - 'a'")?.message == "cannot subtract integer and string")
        #expect(evaluationError("input.tags < 1")?.message == "cannot compare array with integer")
        #expect(evaluationError("1 / 0")?.message == "division by zero")
        #expect(evaluationError("input.name.first")?.message == "cannot read field 'first' of string")
        #expect(evaluationError("nope")?.message == "unknown name 'nope'")
        #expect(evaluationError("fromJSON('{')")?.message == "fromJSON(): not valid JSON: {")
        #expect(evaluationError("len(1)")?.message == "len(): expected a string, list or object, got integer")
    }

    @Test func aStepScopeExposesInputStepsWorkflowAndMapItems() throws {
        let scope = ExpressionScope(
            input: ["n": 2],
            steps: ["a": StepOutcome(output: "out", status: .success), "b": StepOutcome(output: nil, status: .error, errorMessage: "boom")],
            workflowID: "wf", workflowName: "demo", item: "x", index: 3)
        func value(_ text: String) throws -> JSONValue { try ExpressionParser.parse(text).evaluate(in: scope) }
        #expect(try value("steps.a.output + steps.b.status + steps.b.error") == "outerrorboom")
        #expect(try value("input.n * index") == 6)
        #expect(try value("item + workflow.id + workflow.name") == "xwfdemo")
        #expect(try value("steps.a.error") == nil)
    }

    @Test func hyphenatedStepIDsAreOneName() throws {
        let scope = ExpressionScope(variables: ["steps": ["build-image": ["output": 1]], "a": 5, "b": 2])
        #expect(try ExpressionParser.parse("steps.build-image.output").evaluate(in: scope) == 1)
        #expect(try ExpressionParser.parse("a - b").evaluate(in: scope) == 3)
    }

    @Test func aWholeValueTemplateKeepsTheExpressionsType() throws {
        let location = SourceLocation(file: "t.yaml", line: 1, column: 1)
        #expect(try Template(parsing: "${{ input.tags }}", location: location).evaluate(in: scope) == ["a", "b"])
        #expect(try Template(parsing: "${{ input.count }}", location: location).evaluate(in: scope) == 3)
        #expect(try Template(parsing: "${{ input.nested }}", location: location).evaluate(in: scope) == ["k": [1, 2]])
    }

    @Test func anEmbeddedTemplateInterpolatesText() throws {
        let location = SourceLocation(file: "t.yaml", line: 1, column: 1)
        let template = try Template(parsing: "n=${{ input.count }} tags=${{ input.tags }} none=${{ input.missing }}!",
            location: location)
        #expect(!template.isWholeValue)
        #expect(try template.evaluate(in: scope) == #"n=3 tags=["a","b"] none=!"#)
        #expect(try Template(parsing: "no templates", location: location).evaluate(in: scope) == "no templates")
    }

    @Test func templateErrorsCarryTheFilePosition() {
        let location = SourceLocation(file: "t.yaml", line: 4, column: 10)
        #expect(throws: SpecError("invalid expression: expected a value but the expression ended",
            at: SourceLocation(file: "t.yaml", line: 4, column: 25)))
        {
            try Template(parsing: "x ${{ 1 + }}", location: location, contentStart: location.advanced(by: 5))
        }
        #expect(throws: SpecError("cannot subtract integer and string", at: SourceLocation(file: "t.yaml", line: 4, column: 16))) {
            try Template(parsing: "${{ 1 - 'a' }}", location: location).evaluate(in: scope)
        }
    }
}
