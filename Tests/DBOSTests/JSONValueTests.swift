import DBOS
import Testing

@Suite struct JSONValueTests {
    /// Found by FuzzTests (expressions, DBOS_FUZZ_SEED=7891195645651782692): Foundation traps building its
    /// "too deep" error when the text ends right after the 513th opening bracket.
    @Test func textNestedPastFoundationsLimitIsAnErrorNotACrash() throws {
        for text in [String(repeating: "[", count: 513), String(repeating: "[", count: 512) + "{",
                     "[" + String(repeating: #"{"a":"#, count: 512) + "[", String(repeating: "[", count: 100_000)] {
            #expect(throws: (any Error).self) { try JSONValue(parsing: text) }
        }
        let deepest = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        #expect(try JSONValue(parsing: deepest).jsonText == deepest)
        let bracketsInAString = #"[""# + String(repeating: "[", count: 1000) + #""]"#
        #expect(try JSONValue(parsing: bracketsInAString) == [.string(String(repeating: "[", count: 1000))])
    }

    @Test func integersStayIntegersThroughARoundTrip() throws {
        let value = try JSONValue(parsing: #"{"count": 3, "ratio": 0.5, "tags": ["a", null, true]}"#)
        #expect(value["count"] == .integer(3))
        #expect(value["ratio"] == .double(0.5))
        #expect(value.jsonText == #"{"count":3,"ratio":0.5,"tags":["a",null,true]}"#)
    }

    @Test func stringsAreEscapedInJSONText() {
        let value: JSONValue = .string("a\"b\\c\n\u{01}")
        #expect(value.jsonText == #""a\"b\\c\n\u0001""#)
    }
}
