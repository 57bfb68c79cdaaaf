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

    @Test func textWithLineBreaksAndNonASCIIRoundTrips() throws {
        let text = "name: x\r\nsteps:\n  - id: \"é😀\"\t\\ \u{7f}\u{1f}"
        let written = JSONValue.string(text).jsonText
        #expect(written == #""name: x\r\nsteps:\n  - id: \"é😀\"\t\\ \#u{7f}\u001f""#)
        #expect(try JSONValue(parsing: written) == .string(text))
    }

    @Test func numbersParseAsIntegersWhenTheirValueIsIntegral() throws {
        #expect(try JSONValue(parsing: "1.0") == .integer(1))
        #expect(try JSONValue(parsing: "1e3") == .integer(1000))
        #expect(try JSONValue(parsing: "-0") == .integer(0))
        #expect(try JSONValue(parsing: "-12") == .integer(-12))
        #expect(try JSONValue(parsing: "9223372036854775807") == .integer(Int64.max))
        #expect(try JSONValue(parsing: "9223372036854775808") == .double(9_223_372_036_854_775_808))
        #expect(try JSONValue(parsing: "1.5") == .double(1.5))
        #expect(try JSONValue(parsing: "-2.5E-3") == .double(-0.0025))
    }

    @Test func escapesAndWhitespaceAreRead() throws {
        let value = try JSONValue(parsing: " {\"a\" :\t[ \"\\u00e9\\ud83d\\ude00\\/\\b\\f\\n\" , false ]\r\n} ")
        #expect(value == .object(["a": .array([.string("é😀/\u{8}\u{c}\n"), .bool(false)])]))
    }

    @Test func ofDuplicateKeysTheFirstWins() throws {
        #expect(try JSONValue(parsing: #"{"a": 1, "a": 2}"#) == .object(["a": .integer(1)]))
    }

    @Test(arguments: [
        "", " ", "tru", "nul", "01", "1.", ".5", "-", "1e", "+1", "[1,]", "[1 2]", "{\"a\":1,}", "{a:1}", "{\"a\" 1}",
        "\"open", "\"bad \\x escape\"", "\"\\ud83d alone\"", "\"tab\there\"", "1 2", "1e400", "[",
        String(repeating: "[", count: 600) + String(repeating: "]", count: 600),
    ])
    func malformedTextIsRejected(text: String) {
        #expect(throws: JSONSyntaxError.self) { try JSONValue(parsing: text) }
    }
}
