import DBOS

/// One token of an expression.
struct ExpressionToken: Sendable, Hashable {
    enum Kind: Sendable, Hashable {
        case identifier(String)
        case number(JSONValue)
        case string(String)
        case symbol(String)
        case end
    }

    var kind: Kind
    var offset: Int

    var text: String {
        switch kind {
        case .identifier(let name): return "'\(name)'"
        case .number(let value): return "'\(value.jsonText)'"
        case .string: return "a string"
        case .symbol(let symbol): return "'\(symbol)'"
        case .end: return "the end of the expression"
        }
    }
}

/// Splits expression text into tokens. Identifiers may contain `-` after their first character, as in
/// GitHub Actions, so step ids like `build-image` can be written `steps.build-image.output`; write `a - b`
/// with spaces to subtract.
struct ExpressionLexer {
    let characters: [Character]
    var position = 0

    init(_ text: String) {
        characters = Array(text)
    }

    mutating func tokenize() throws(ExpressionError) -> [ExpressionToken] {
        var tokens: [ExpressionToken] = []
        while true {
            let token = try next()
            tokens.append(token)
            if token.kind == .end { return tokens }
        }
    }

    private func peek(_ ahead: Int = 0) -> Character? {
        position + ahead < characters.count ? characters[position + ahead] : nil
    }

    private static func isIdentifierStart(_ character: Character) -> Bool {
        character == "_" || (character.isASCII && character.isLetter)
    }

    private static func isIdentifierPart(_ character: Character) -> Bool {
        isIdentifierStart(character) || character == "-" || (character.isASCII && character.isNumber)
    }

    private mutating func next() throws(ExpressionError) -> ExpressionToken {
        while let character = peek(), character.isWhitespace { position += 1 }
        let start = position
        guard let character = peek() else { return ExpressionToken(kind: .end, offset: start) }
        if Self.isIdentifierStart(character) {
            while let next = peek(), Self.isIdentifierPart(next) { position += 1 }
            // A trailing '-' belongs to an operator, not the name (`a- 1`).
            while position > start + 1, characters[position - 1] == "-" { position -= 1 }
            return ExpressionToken(kind: .identifier(String(characters[start..<position])), offset: start)
        }
        if character.isASCII && character.isNumber {
            return try number(start: start)
        }
        if character == "'" || character == "\"" {
            return try string(quote: character, start: start)
        }
        let pair = peek(1).map { String([character, $0]) } ?? ""
        if ["==", "!=", "<=", ">=", "&&", "||"].contains(pair) {
            position += 2
            return ExpressionToken(kind: .symbol(pair), offset: start)
        }
        if "().[],<>!+-*/".contains(character) {
            position += 1
            return ExpressionToken(kind: .symbol(String(character)), offset: start)
        }
        if character == "=" {
            throw ExpressionError("unexpected '='; use '==' to compare", offset: start)
        }
        if character == "&" || character == "|" {
            throw ExpressionError("unexpected '\(character)'; use '\(character)\(character)'", offset: start)
        }
        throw ExpressionError("unexpected character '\(character)'", offset: start)
    }

    private mutating func number(start: Int) throws(ExpressionError) -> ExpressionToken {
        while let character = peek(), character.isASCII && character.isNumber { position += 1 }
        var isFloat = false
        if peek() == ".", let after = peek(1), after.isASCII && after.isNumber {
            isFloat = true
            position += 1
            while let character = peek(), character.isASCII && character.isNumber { position += 1 }
        }
        if peek() == "e" || peek() == "E" {
            var ahead = 1
            if peek(1) == "+" || peek(1) == "-" { ahead = 2 }
            if let digit = peek(ahead), digit.isASCII && digit.isNumber {
                isFloat = true
                position += ahead
                while let character = peek(), character.isASCII && character.isNumber { position += 1 }
            }
        }
        if let character = peek(), Self.isIdentifierStart(character) {
            throw ExpressionError("invalid number '\(String(characters[start...position]))'", offset: start)
        }
        let text = String(characters[start..<position])
        if !isFloat, let value = Int64(text) { return ExpressionToken(kind: .number(.integer(value)), offset: start) }
        guard let value = Double(text) else { throw ExpressionError("invalid number '\(text)'", offset: start) }
        return ExpressionToken(kind: .number(.double(value)), offset: start)
    }

    private mutating func string(quote: Character, start: Int) throws(ExpressionError) -> ExpressionToken {
        position += 1
        var value = ""
        while true {
            guard let character = peek() else {
                throw ExpressionError("unterminated string: missing closing \(quote)", offset: start)
            }
            position += 1
            if character == quote {
                // 'it''s' is a single-quoted string containing a quote, as in GitHub Actions.
                if quote == "'", peek() == "'" {
                    value.append("'")
                    position += 1
                    continue
                }
                return ExpressionToken(kind: .string(value), offset: start)
            }
            if character == "\\", quote == "\"" {
                guard let escaped = peek() else {
                    throw ExpressionError("unterminated string: missing closing \(quote)", offset: start)
                }
                position += 1
                switch escaped {
                case "n": value.append("\n")
                case "t": value.append("\t")
                case "r": value.append("\r")
                case "\\", "\"", "'": value.append(escaped)
                default: throw ExpressionError("unknown escape '\\\(escaped)' in string", offset: position - 2)
                }
                continue
            }
            value.append(character)
        }
    }
}
