import DBOS

/// The subset of JSON Schema a spec's `input:` may use: `type`, `properties`, `required`, `default`, `enum`,
/// `items`, `minimum`, `maximum` (and `description`, which is ignored).
public struct InputSchema: Sendable, Hashable {
    /// A JSON Schema type name.
    public enum ValueType: String, Sendable, Hashable, CaseIterable {
        /// Any string.
        case string
        /// Any number, integer or not.
        case number
        /// A whole number.
        case integer
        /// `true` or `false`.
        case boolean
        /// A JSON object.
        case object
        /// A JSON list.
        case array
        /// `null`.
        case null
    }

    /// The keywords the subset understands.
    public static let keywords = ["type", "properties", "required", "default", "enum", "items", "minimum",
        "maximum", "description"]

    /// `type:`.
    public var type: ValueType?
    /// `properties:` in document order.
    public var properties: [(name: String, schema: InputSchema)]
    /// `required:`.
    public var required: [String]
    /// `default:`.
    public var defaultValue: JSONValue?
    /// `enum:`.
    public var allowedValues: [JSONValue]?
    /// `items:`.
    public var items: Box?
    /// `minimum:`.
    public var minimum: Double?
    /// `maximum:`.
    public var maximum: Double?
    /// Where the schema is written.
    public var location: SourceLocation

    /// A reference box so the schema can nest (`items:`).
    public final class Box: Sendable, Hashable {
        /// The boxed schema.
        public let schema: InputSchema
        init(_ schema: InputSchema) { self.schema = schema }
        /// Compares the boxed schemas.
        public static func == (lhs: Box, rhs: Box) -> Bool { lhs.schema == rhs.schema }
        /// Hashes the boxed schema.
        public func hash(into hasher: inout Hasher) { hasher.combine(schema) }
    }

    /// An empty schema at `location` (accepts anything).
    public init(location: SourceLocation) {
        self.properties = []
        self.required = []
        self.location = location
    }

    /// Compares schemas field by field.
    public static func == (lhs: InputSchema, rhs: InputSchema) -> Bool {
        lhs.type == rhs.type && lhs.properties.map(\.name) == rhs.properties.map(\.name)
            && lhs.properties.map(\.schema) == rhs.properties.map(\.schema) && lhs.required == rhs.required
            && lhs.defaultValue == rhs.defaultValue && lhs.allowedValues == rhs.allowedValues
            && lhs.items == rhs.items && lhs.minimum == rhs.minimum && lhs.maximum == rhs.maximum
    }

    /// Hashes the schema's type and property names.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(type)
        hasher.combine(properties.map(\.name))
    }

    /// The schema of property `name`, if declared.
    public func property(_ name: String) -> InputSchema? {
        properties.first { $0.name == name }?.schema
    }

    /// Decodes a schema from its YAML node, appending problems to `errors`.
    public static func decode(_ node: YAMLNode, errors: inout [SpecError]) -> InputSchema {
        var schema = InputSchema(location: node.location)
        guard let entries = node.entries else {
            errors.append(SpecError("'input' must be a mapping (a JSON Schema), not \(node.shapeDescription)",
                at: node.location))
            return schema
        }
        for entry in entries {
            let key = entry.key.scalarText ?? ""
            let value = entry.value
            schema.keywordLocations[key] = value.location
            switch key {
            case "type":
                if let text = value.scalarText, let type = ValueType(rawValue: text) {
                    schema.type = type
                } else {
                    var message = "unknown schema type '\(value.scalarText ?? value.shapeDescription)'"
                    if let text = value.scalarText,
                        let suggestion = Suggestion.closest(to: text, in: ValueType.allCases.map(\.rawValue))
                    {
                        message += " (did you mean '\(suggestion)'?)"
                    } else {
                        message += "; expected one of " + ValueType.allCases.map(\.rawValue).joined(separator: ", ")
                    }
                    errors.append(SpecError(message, at: value.location))
                }
            case "properties":
                guard let propertyEntries = value.entries else {
                    errors.append(SpecError("'properties' must be a mapping of names to schemas", at: value.location))
                    continue
                }
                for property in propertyEntries {
                    schema.properties.append(
                        (property.key.scalarText ?? "", decode(property.value, errors: &errors)))
                }
            case "required":
                guard let items = value.items, items.allSatisfy({ $0.scalarValue?.stringValue != nil }) else {
                    errors.append(SpecError("'required' must be a list of property names", at: value.location))
                    continue
                }
                schema.required = items.compactMap(\.scalarText)
                schema.requiredLocations = items.map(\.location)
            case "default": schema.defaultValue = value.jsonValue
            case "enum":
                guard let items = value.items else {
                    errors.append(SpecError("'enum' must be a list of allowed values", at: value.location))
                    continue
                }
                schema.allowedValues = items.map(\.jsonValue)
            case "items": schema.items = Box(decode(value, errors: &errors))
            case "minimum", "maximum":
                guard let number = value.scalarValue?.doubleValue else {
                    errors.append(SpecError("'\(key)' must be a number, not \(value.shapeDescription)",
                        at: value.location))
                    continue
                }
                if key == "minimum" { schema.minimum = number } else { schema.maximum = number }
            case "description": break
            default:
                errors.append(SpecError(
                    unknownFieldMessage(key, context: "input schema", known: keywords), at: entry.key.location))
            }
        }
        for (index, name) in schema.required.enumerated() where !schema.properties.isEmpty {
            if schema.property(name) == nil {
                let location = index < schema.requiredLocations.count ? schema.requiredLocations[index] : node.location
                var message = "required property '\(name)' is not declared in 'properties'"
                if let suggestion = Suggestion.closest(to: name, in: schema.properties.map(\.name)) {
                    message += " (did you mean '\(suggestion)'?)"
                }
                errors.append(SpecError(message, at: location))
            }
        }
        if let defaultValue = schema.defaultValue {
            var copy = schema
            copy.defaultValue = nil
            for problem in copy.problems(with: defaultValue, path: "default") {
                errors.append(SpecError("the default does not match its schema: \(problem.message)", at: node.location))
            }
        }
        return schema
    }

    /// Where each `required` entry is written.
    var requiredLocations: [SourceLocation] = []
    /// Where the value of each keyword (`type`, `enum`, `minimum`...) is written.
    var keywordLocations: [String: SourceLocation] = [:]

    /// Checks `input` against the schema (after defaults are applied), one error per problem, naming the field.
    /// Each error points at the part of the schema the input violates: the `required:` entry of a missing
    /// field, or the `type:`, `enum:`, `minimum:` or `maximum:` of the field's schema.
    public func validateInput(_ input: JSONValue) -> [SpecError] {
        problems(with: applyingDefaults(to: input), path: "input").map {
            SpecError("invalid input: \($0.message)", at: $0.location)
        }
    }

    /// The input with every missing property that has a `default` filled in (recursively); a missing input
    /// becomes `{}` when the schema is an object.
    public func applyingDefaults(to input: JSONValue) -> JSONValue {
        var value = input
        if value == .null, let defaultValue { value = defaultValue }
        if value == .null, type == .object || !properties.isEmpty { value = .object([:]) }
        switch value {
        case .object(var members):
            for (name, schema) in properties {
                if let present = members[name] {
                    members[name] = schema.applyingDefaults(to: present)
                } else if let defaultValue = schema.defaultValue {
                    members[name] = schema.applyingDefaults(to: defaultValue)
                }
            }
            return .object(members)
        case .array(let elements):
            guard let items else { return value }
            return .array(elements.map { items.schema.applyingDefaults(to: $0) })
        default:
            return value
        }
    }

    /// Where the keyword `key` of this schema is written (the schema itself when it is not).
    private func location(of key: String) -> SourceLocation { keywordLocations[key] ?? location }

    /// The problems of `value` against this schema, each prefixed with its path like `input.items[2]` and placed
    /// at the keyword it violates.
    func problems(with value: JSONValue, path: String) -> [(message: String, location: SourceLocation)] {
        var problems: [(message: String, location: SourceLocation)] = []
        if let type {
            let matches: Bool
            switch (type, value) {
            case (.string, .string), (.boolean, .bool), (.object, .object), (.array, .array), (.null, .null),
                (.number, .integer), (.number, .double), (.integer, .integer):
                matches = true
            case (.integer, .double(let number)): matches = number == number.rounded() && number.isFinite
            default: matches = false
            }
            if !matches {
                let article = type == .integer || type == .object || type == .array ? "an" : "a"
                return [("\(path) must be \(article) \(type.rawValue), not \(value.typeName)", location(of: "type"))]
            }
        }
        if let allowedValues, !allowedValues.contains(where: { $0.isEqualForExpression(to: value) }) {
            problems.append(("\(path) must be one of " + allowedValues.map(\.jsonText).joined(separator: ", ")
                + ", not \(value.jsonText)", location(of: "enum")))
        }
        if let number = value.doubleValue {
            if let minimum, number < minimum {
                problems.append(("\(path) must be at least \(JSONValue.double(minimum).jsonText), not \(value.jsonText)",
                    location(of: "minimum")))
            }
            if let maximum, number > maximum {
                problems.append(("\(path) must be at most \(JSONValue.double(maximum).jsonText), not \(value.jsonText)",
                    location(of: "maximum")))
            }
        }
        if case .object(let members) = value {
            for (index, name) in required.enumerated() where members[name] == nil || members[name] == .null {
                let entry = index < requiredLocations.count ? requiredLocations[index] : location(of: "required")
                problems.append(("\(path).\(name) is required", entry))
            }
            for (name, schema) in properties {
                if let member = members[name], member != .null || schema.type == .null {
                    problems.append(contentsOf: schema.problems(with: member, path: "\(path).\(name)"))
                }
            }
        }
        if case .array(let elements) = value, let items {
            for (index, element) in elements.enumerated() {
                problems.append(contentsOf: items.schema.problems(with: element, path: "\(path)[\(index)]"))
            }
        }
        return problems
    }
}

/// `unknown field 'neds' in step 'charge' (did you mean 'needs'?)`.
func unknownFieldMessage(_ key: String, context: String, known: [String]) -> String {
    var message = "unknown field '\(key)' in \(context)"
    if let suggestion = Suggestion.closest(to: key, in: known) {
        message += " (did you mean '\(suggestion)'?)"
    } else {
        message += "; expected one of " + known.joined(separator: ", ")
    }
    return message
}
