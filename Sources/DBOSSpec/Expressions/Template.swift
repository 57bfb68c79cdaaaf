import DBOS
import Foundation

/// A string value that may hold `${{ expression }}` templates.
///
/// A value that is exactly one template keeps the expression's type (number, list, object); templates inside
/// longer text are interpolated as text (strings bare, null as nothing, other values as JSON).
public struct Template: Sendable, Hashable {
    /// One piece of a template string.
    public enum Part: Sendable, Hashable {
        /// Literal text.
        case text(String)
        /// An expression with the location of its first character.
        case expression(Expression, source: String, location: SourceLocation)
    }

    /// The pieces in order.
    public var parts: [Part]
    /// Where the string value starts.
    public var location: SourceLocation

    /// Whether the string contains `${{` at all.
    public static func containsTemplate(_ text: String) -> Bool { text.contains("${{") }

    /// True when the value is exactly one template, so it keeps the expression's type.
    public var isWholeValue: Bool {
        if parts.count == 1, case .expression = parts[0] { return true }
        return false
    }

    /// True when there is no expression at all.
    public var isPlainText: Bool {
        parts.allSatisfy { if case .text = $0 { true } else { false } }
    }

    /// The expressions with their locations.
    public var expressions: [(expression: Expression, location: SourceLocation)] {
        parts.compactMap {
            if case .expression(let expression, _, let location) = $0 { return (expression, location) }
            return nil
        }
    }

    /// Creates a template from its parts.
    public init(parts: [Part], location: SourceLocation) {
        self.parts = parts
        self.location = location
    }

    /// Parses `text`, a string value starting at `location`. `contentLocation` maps a character offset in the
    /// text to its place in the file (for a quoted scalar, one column after the quote).
    public init(parsing text: String, location: SourceLocation, contentStart: SourceLocation? = nil)
        throws(SpecError)
    {
        self.location = location
        let characters = Array(text)
        let singleLine = !text.contains("\n")
        let start = contentStart ?? location
        func place(_ offset: Int) -> SourceLocation { singleLine ? start.advanced(by: offset) : location }
        var parts: [Part] = []
        var literal = ""
        var index = 0
        while index < characters.count {
            if characters[index] == "$", index + 2 < characters.count, characters[index + 1] == "{",
                characters[index + 2] == "{"
            {
                let open = index
                var end = index + 3
                var quote: Character?
                var found = false
                while end < characters.count {
                    let character = characters[end]
                    if let active = quote {
                        if character == active { quote = nil }
                    } else if character == "'" || character == "\"" {
                        quote = character
                    } else if character == "}", end + 1 < characters.count, characters[end + 1] == "}" {
                        found = true
                        break
                    }
                    end += 1
                }
                if !found, let close = text.range(of: "}}", range: text.index(text.startIndex, offsetBy: open)..<text.endIndex) {
                    // No '}}' outside quotes, but one inside: most likely an unterminated string, which the
                    // expression parser reports precisely.
                    end = text.distance(from: text.startIndex, to: close.lowerBound)
                    found = true
                }
                guard found else {
                    throw SpecError("unterminated template: '${{' without a closing '}}'", at: place(open))
                }
                let source = String(characters[(open + 3)..<end])
                let expressionStart = open + 3
                do {
                    let expression = try ExpressionParser.parse(source)
                    if !literal.isEmpty {
                        parts.append(.text(literal))
                        literal = ""
                    }
                    parts.append(.expression(expression, source: source, location: place(expressionStart)))
                } catch {
                    throw SpecError("invalid expression: \(error.message)", at: place(expressionStart + error.offset))
                }
                index = end + 2
            } else {
                literal.append(characters[index])
                index += 1
            }
        }
        if !literal.isEmpty || parts.isEmpty { parts.append(.text(literal)) }
        self.parts = parts
    }

    /// Evaluates the template: a whole-value template gives the expression's value, anything else a string.
    public func evaluate(in scope: ExpressionScope) throws(SpecError) -> JSONValue {
        if isWholeValue, case .expression(let expression, _, let location) = parts[0] {
            do {
                return try expression.evaluate(in: scope)
            } catch {
                throw SpecError(error.message, at: location.advanced(by: error.offset))
            }
        }
        var text = ""
        for part in parts {
            switch part {
            case .text(let literal): text += literal
            case .expression(let expression, _, let location):
                do {
                    text += try expression.evaluate(in: scope).interpolatedText
                } catch {
                    throw SpecError(error.message, at: location.advanced(by: error.offset))
                }
            }
        }
        return .string(text)
    }
}
