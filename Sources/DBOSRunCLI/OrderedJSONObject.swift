import DBOS

/// A JSON object whose members print in the order they were added, so the CLI's JSON reads in the
/// order the contract lists its fields (`JSONValue.jsonText` sorts keys).
public struct OrderedJSONObject: Sendable, Equatable {
    /// The members, in print order.
    public var members: [(key: String, value: JSONValue)]

    /// An object with these members, in this order.
    public init(_ members: [(key: String, value: JSONValue)]) {
        self.members = members
    }

    /// Compact JSON text: `{"key":value,...}`.
    public var jsonText: String {
        "{" + members.map { JSONValue.string($0.key).jsonText + ":" + $0.value.jsonText }.joined(separator: ",") + "}"
    }

    /// The same object as a `JSONValue` (keys unordered).
    public var jsonValue: JSONValue {
        .object(Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last }))
    }

    /// Compact JSON text for an array of objects.
    public static func jsonText(of objects: [OrderedJSONObject]) -> String {
        "[" + objects.map(\.jsonText).joined(separator: ",") + "]"
    }

    public static func == (lhs: OrderedJSONObject, rhs: OrderedJSONObject) -> Bool {
        lhs.members.map(\.key) == rhs.members.map(\.key) && lhs.members.map(\.value) == rhs.members.map(\.value)
    }
}
