import DBOS

/// One node of a loaded YAML document: a scalar, a sequence or a mapping, with the place it starts.
public struct YAMLNode: Sendable {
    /// How a scalar was written; only plain scalars are resolved to null, booleans and numbers.
    public enum ScalarStyle: Sendable, Hashable {
        /// Written without quotes: resolved by the YAML 1.2 core schema.
        case plain
        /// Single- or double-quoted, or tagged `!!str`: always a string.
        case quoted
        /// A literal (`|`) or folded (`>`) block scalar: always a string; its location is the indicator's.
        case block
    }

    /// One key-value pair of a mapping, in document order.
    public struct Entry: Sendable {
        /// The key node (the loader only produces scalar keys).
        public var key: YAMLNode
        /// The value node.
        public var value: YAMLNode
    }

    /// The shape of a node.
    public enum Kind: Sendable {
        /// A scalar's text and how it was written.
        case scalar(String, ScalarStyle)
        /// A sequence's items in order.
        case sequence([YAMLNode])
        /// A mapping's entries in document order (keys are unique).
        case mapping([Entry])
    }

    /// The node's shape and content.
    public var kind: Kind
    /// Where the node starts in its file.
    public var location: SourceLocation
    /// How many nodes this subtree holds (itself included); the loader uses it to cap alias expansion.
    public var nodeCount: Int

    /// How many levels of collections this subtree nests (a scalar is 0); the loader uses it to cap the depth
    /// reached through aliases.
    public var height: Int

    /// Creates a node; `nodeCount` and `height` are computed from the children.
    public init(kind: Kind, location: SourceLocation) {
        self.kind = kind
        self.location = location
        switch kind {
        case .scalar:
            nodeCount = 1
            height = 0
        case .sequence(let items):
            nodeCount = items.reduce(1) { $0 + $1.nodeCount }
            height = 1 + (items.map(\.height).max() ?? 0)
        case .mapping(let entries):
            nodeCount = entries.reduce(1) { $0 + $1.key.nodeCount + $1.value.nodeCount }
            height = 1 + (entries.map { max($0.key.height, $0.value.height) }.max() ?? 0)
        }
    }

    /// The scalar's text, if this is a scalar (whatever its resolved type).
    public var scalarText: String? {
        if case .scalar(let text, _) = kind { return text }
        return nil
    }

    /// The mapping's entries, if this is a mapping.
    public var entries: [Entry]? {
        if case .mapping(let entries) = kind { return entries }
        return nil
    }

    /// The sequence's items, if this is a sequence.
    public var items: [YAMLNode]? {
        if case .sequence(let items) = kind { return items }
        return nil
    }

    /// The value stored under `key`, if this is a mapping that has it.
    public subscript(key: String) -> YAMLNode? {
        entries?.first { $0.key.scalarText == key }?.value
    }

    /// A word for the node's shape in error messages: `a mapping`, `a list`, `a string`, `a number`...
    public var shapeDescription: String {
        switch kind {
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        case .scalar:
            switch scalarValue {
            case .null: return "null"
            case .bool: return "a boolean"
            case .integer, .double: return "a number"
            default: return "a string"
            }
        }
    }

    /// The scalar resolved by the YAML 1.2 core schema (`nil` for collections).
    public var scalarValue: JSONValue? {
        guard case .scalar(let text, let style) = kind else { return nil }
        return style == .plain ? YAMLNode.resolvePlainScalar(text) : .string(text)
    }

    /// The whole subtree as a JSON value (scalars resolved by the core schema).
    public var jsonValue: JSONValue {
        switch kind {
        case .scalar: return scalarValue ?? .null
        case .sequence(let items): return .array(items.map(\.jsonValue))
        case .mapping(let entries):
            var members: [String: JSONValue] = [:]
            for entry in entries { members[entry.key.scalarText ?? ""] = entry.value.jsonValue }
            return .object(members)
        }
    }

    /// Resolves an unquoted scalar by the YAML 1.2 core schema: null, booleans, integers (decimal, `0x`, `0o`),
    /// floats (with `.inf` and `.nan`); everything else stays a string, so `yes`, `on` and `1h` are strings.
    public static func resolvePlainScalar(_ text: String) -> JSONValue {
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .double(.infinity)
        case "-.inf", "-.Inf", "-.INF": return .double(-.infinity)
        case ".nan", ".NaN", ".NAN": return .double(.nan)
        default: break
        }
        let scalars = Array(text.utf8)
        if scalars.count > 2, scalars[0] == UInt8(ascii: "0") {
            let body = String(text.dropFirst(2))
            if scalars[1] == UInt8(ascii: "x"), body.allSatisfy(\.isHexDigit), let value = Int64(body, radix: 16) {
                return .integer(value)
            }
            if scalars[1] == UInt8(ascii: "o"), body.allSatisfy({ ("0"..."7").contains($0) }),
                let value = Int64(body, radix: 8)
            {
                return .integer(value)
            }
        }
        if isDecimalInteger(scalars) {
            if let value = Int64(text) { return .integer(value) }
            if let value = Double(text) { return .double(value) }
        }
        if isCoreFloat(scalars), let value = Double(text) { return .double(value) }
        return .string(text)
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    /// `[-+]?[0-9]+`
    private static func isDecimalInteger(_ bytes: [UInt8]) -> Bool {
        var index = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") { index += 1 }
        guard index < bytes.count else { return false }
        return bytes[index...].allSatisfy(isDigit)
    }

    /// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
    private static func isCoreFloat(_ bytes: [UInt8]) -> Bool {
        var index = 0
        func digits() -> Int {
            let start = index
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            return index - start
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") { index += 1 }
        let integerDigits = digits()
        var fractionDigits = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            fractionDigits = digits()
        }
        guard integerDigits + fractionDigits > 0 else { return false }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") {
                index += 1
            }
            guard digits() > 0 else { return false }
        }
        return index == bytes.count
    }
}
