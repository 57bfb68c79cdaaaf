import DBOS
import Testing

@Suite struct JSONValueTests {
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
