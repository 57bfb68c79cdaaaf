import DBOS

/// The built-in functions: `len contains startsWith endsWith join default toJSON fromJSON`.
enum ExpressionFunctions {
    static func call(_ name: String, _ arguments: [JSONValue], offset: Int) throws(ExpressionError) -> JSONValue {
        func fail(_ message: String) -> ExpressionError { ExpressionError("\(name)(): \(message)", offset: offset) }
        switch name {
        case "len":
            switch arguments[0] {
            case .string(let text): return .integer(Int64(text.count))
            case .array(let items): return .integer(Int64(items.count))
            case .object(let members): return .integer(Int64(members.count))
            case .null: return .integer(0)
            default: throw fail("expected a string, list or object, got \(arguments[0].typeName)")
            }
        case "contains":
            switch (arguments[0], arguments[1]) {
            case (.string(let hay), .string(let needle)): return .bool(hay.contains(needle))
            case (.array(let items), let needle): return .bool(items.contains { $0.isEqualForExpression(to: needle) })
            case (.object(let members), .string(let key)): return .bool(members[key] != nil)
            case (.null, _): return .bool(false)
            default:
                throw fail("cannot look for \(arguments[1].typeName) in \(arguments[0].typeName)")
            }
        case "startsWith", "endsWith":
            guard case .string(let text) = arguments[0], case .string(let part) = arguments[1] else {
                throw fail("expected two strings, got \(arguments[0].typeName) and \(arguments[1].typeName)")
            }
            return .bool(name == "startsWith" ? text.hasPrefix(part) : text.hasSuffix(part))
        case "join":
            let separator: String
            if arguments.count > 1 {
                guard case .string(let text) = arguments[1] else {
                    throw fail("the separator must be a string, got \(arguments[1].typeName)")
                }
                separator = text
            } else {
                separator = ","
            }
            switch arguments[0] {
            case .array(let items): return .string(items.map(\.interpolatedText).joined(separator: separator))
            case .string: return arguments[0]
            case .null: return .string("")
            default: throw fail("expected a list, got \(arguments[0].typeName)")
            }
        case "default":
            return arguments[0] == .null ? arguments[1] : arguments[0]
        case "toJSON":
            return .string(arguments[0].jsonText)
        case "fromJSON":
            guard case .string(let text) = arguments[0] else {
                throw fail("expected a string, got \(arguments[0].typeName)")
            }
            do {
                return try JSONValue(parsing: text)
            } catch {
                throw fail("not valid JSON: \(text.count > 40 ? String(text.prefix(40)) + "..." : text)")
            }
        default:
            throw ExpressionError("unknown function '\(name)'", offset: offset)
        }
    }
}
