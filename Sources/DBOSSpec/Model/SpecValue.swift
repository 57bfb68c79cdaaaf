import DBOS

/// A value written in a spec (`with:`, `env:`, `message:`, `output:`...): JSON-like data whose strings may hold
/// templates, with the location of every part so runtime errors point at the right line.
public struct SpecValue: Sendable, Hashable {
    /// The shape of a spec value.
    public indirect enum Kind: Sendable, Hashable {
        /// A constant scalar (null, boolean, number, or a string without templates).
        case literal(JSONValue)
        /// A string with at least one `${{ }}` template.
        case template(Template)
        /// A list.
        case array([SpecValue])
        /// A mapping; keys keep their document order.
        case object([(String, SpecValue)])

        /// Compares kinds structurally (object entries in order).
        public static func == (lhs: Kind, rhs: Kind) -> Bool {
            switch (lhs, rhs) {
            case (.literal(let a), .literal(let b)): return a == b
            case (.template(let a), .template(let b)): return a == b
            case (.array(let a), .array(let b)): return a == b
            case (.object(let a), .object(let b)):
                return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
            default: return false
            }
        }

        /// Hashes kinds structurally.
        public func hash(into hasher: inout Hasher) {
            switch self {
            case .literal(let value): hasher.combine(value)
            case .template(let template): hasher.combine(template)
            case .array(let items): hasher.combine(items)
            case .object(let entries):
                for (key, value) in entries {
                    hasher.combine(key)
                    hasher.combine(value)
                }
            }
        }
    }

    /// The value's shape and content.
    public var kind: Kind
    /// Where the value starts in the spec.
    public var location: SourceLocation

    /// Creates a value.
    public init(_ kind: Kind, location: SourceLocation) {
        self.kind = kind
        self.location = location
    }

    /// The constant value, if the value holds no template anywhere.
    public var constantValue: JSONValue? {
        switch kind {
        case .literal(let value): return value
        case .template(let template):
            if template.isPlainText, case .text(let text)? = template.parts.first { return .string(text) }
            return nil
        case .array(let items):
            var values: [JSONValue] = []
            for item in items {
                guard let value = item.constantValue else { return nil }
                values.append(value)
            }
            return .array(values)
        case .object(let entries):
            var members: [String: JSONValue] = [:]
            for (key, value) in entries {
                guard let resolved = value.constantValue else { return nil }
                members[key] = resolved
            }
            return .object(members)
        }
    }

    /// Every template in the value, depth first.
    public var templates: [Template] {
        switch kind {
        case .literal: return []
        case .template(let template): return [template]
        case .array(let items): return items.flatMap(\.templates)
        case .object(let entries): return entries.flatMap(\.1.templates)
        }
    }

    /// The names of the secrets the value reads (`secrets.NAME`), so their values can be masked as `***`.
    public var referencedSecrets: Set<String> {
        var names: Set<String> = []
        for template in templates {
            for (expression, _) in template.expressions {
                for (path, _) in expression.referencedPaths where path.count > 1 && path[0] == "secrets" {
                    names.insert(path[1])
                }
            }
        }
        return names
    }

    /// Resolves every template in `scope`, giving plain JSON. Errors carry the template's location.
    public func resolve(in scope: ExpressionScope) throws(SpecError) -> JSONValue {
        switch kind {
        case .literal(let value): return value
        case .template(let template): return try template.evaluate(in: scope)
        case .array(let items):
            var values: [JSONValue] = []
            for item in items { values.append(try item.resolve(in: scope)) }
            return .array(values)
        case .object(let entries):
            var members: [String: JSONValue] = [:]
            for (key, value) in entries { members[key] = try value.resolve(in: scope) }
            return .object(members)
        }
    }
}
