import DBOS

/// Parses expression text into an `Expression` by recursive descent with precedence climbing.
///
/// Nesting is capped (64 levels) so hostile input cannot exhaust the stack.
public struct ExpressionParser {
    private var tokens: [ExpressionToken] = []
    private var index = 0
    private var depth = 0
    private static let maximumDepth = 64
    private static let maximumTokens = 1000

    /// The functions expressions may call, with how many arguments each takes.
    public static let functions: [String: ClosedRange<Int>] = [
        "len": 1...1, "contains": 2...2, "startsWith": 2...2, "endsWith": 2...2, "join": 1...2,
        "default": 2...2, "toJSON": 1...1, "fromJSON": 1...1,
    ]

    /// Parses `text`; errors carry the offset of the offending character.
    public static func parse(_ text: String) throws(ExpressionError) -> Expression {
        var lexer = ExpressionLexer(text)
        var parser = ExpressionParser()
        parser.tokens = try lexer.tokenize()
        if parser.tokens.count == 1 { throw ExpressionError("empty expression", offset: 0) }
        // Evaluation recurses over the tree, so bound its size (and with it the depth of operator chains).
        if parser.tokens.count > maximumTokens {
            throw ExpressionError("expression too long: more than \(maximumTokens) tokens",
                offset: parser.tokens[maximumTokens].offset)
        }
        let expression = try parser.parseBinary(level: 0)
        let rest = parser.current
        if rest.kind != .end {
            throw ExpressionError("unexpected \(rest.text) after the expression", offset: rest.offset)
        }
        return expression
    }

    private var current: ExpressionToken { tokens[min(index, tokens.count - 1)] }

    private static let levels: [[String]] = [
        ["||"], ["&&"], ["==", "!="], ["<", "<=", ">", ">="], ["+", "-"], ["*", "/"],
    ]

    private mutating func parseBinary(level: Int) throws(ExpressionError) -> Expression {
        if level == Self.levels.count { return try parseUnary() }
        var lhs = try parseBinary(level: level + 1)
        while case .symbol(let symbol) = current.kind, Self.levels[level].contains(symbol),
            let op = Expression.BinaryOperator(rawValue: symbol)
        {
            let offset = current.offset
            index += 1
            let rhs = try parseBinary(level: level + 1)
            lhs = Expression(.binary(op, lhs, rhs), offset: offset)
        }
        return lhs
    }

    private mutating func parseUnary() throws(ExpressionError) -> Expression {
        let token = current
        if case .symbol(let symbol) = token.kind, symbol == "!" || symbol == "-" {
            index += 1
            try enter(at: token.offset)
            defer { depth -= 1 }
            let operand = try parseUnary()
            if symbol == "-", case .literal(let value) = operand.kind {
                switch value {
                case .integer(let number): return Expression(.literal(.integer(-number)), offset: token.offset)
                case .double(let number): return Expression(.literal(.double(-number)), offset: token.offset)
                default: break
                }
            }
            return Expression(.unary(symbol == "!" ? .not : .negate, operand), offset: token.offset)
        }
        return try parsePostfix()
    }

    private mutating func enter(at offset: Int) throws(ExpressionError) {
        depth += 1
        if depth > Self.maximumDepth {
            throw ExpressionError("expression nested deeper than \(Self.maximumDepth) levels", offset: offset)
        }
    }

    private mutating func expect(_ symbol: String, opening: ExpressionToken? = nil) throws(ExpressionError) {
        guard current.kind == .symbol(symbol) else {
            var message = "expected '\(symbol)' but found \(current.text)"
            if let opening { message += " (to close the '\(opening.kindSymbol)' at offset \(opening.offset + 1))" }
            throw ExpressionError(message, offset: current.offset)
        }
        index += 1
    }

    private mutating func parsePostfix() throws(ExpressionError) -> Expression {
        var expression = try parsePrimary()
        while case .symbol(let symbol) = current.kind {
            let token = current
            if symbol == "." {
                index += 1
                switch current.kind {
                case .identifier(let name):
                    index += 1
                    expression = Expression(.member(expression, name), offset: expression.offset)
                case .number(.integer(let number)):
                    throw ExpressionError("use [\(number)] to index a list, not .\(number)", offset: token.offset)
                default:
                    throw ExpressionError("expected a field name after '.' but found \(current.text)",
                        offset: current.offset)
                }
            } else if symbol == "[" {
                index += 1
                try enter(at: token.offset)
                defer { depth -= 1 }
                let subscriptExpression = try parseBinary(level: 0)
                try expect("]", opening: token)
                expression = Expression(.index(expression, subscriptExpression), offset: expression.offset)
            } else if symbol == "(" {
                throw ExpressionError("only functions can be called", offset: token.offset)
            } else {
                break
            }
        }
        return expression
    }

    private mutating func parsePrimary() throws(ExpressionError) -> Expression {
        let token = current
        switch token.kind {
        case .number(let value):
            index += 1
            return Expression(.literal(value), offset: token.offset)
        case .string(let value):
            index += 1
            return Expression(.literal(.string(value)), offset: token.offset)
        case .identifier(let name):
            index += 1
            switch name {
            case "true": return Expression(.literal(.bool(true)), offset: token.offset)
            case "false": return Expression(.literal(.bool(false)), offset: token.offset)
            case "null": return Expression(.literal(.null), offset: token.offset)
            default: break
            }
            guard current.kind == .symbol("(") else { return Expression(.name(name), offset: token.offset) }
            let opening = current
            index += 1
            guard let arity = Self.functions[name] else {
                var message = "unknown function '\(name)'"
                if let suggestion = Suggestion.closest(to: name, in: Self.functions.keys) {
                    message += " (did you mean '\(suggestion)'?)"
                } else {
                    message += "; functions are " + Self.functions.keys.sorted().joined(separator: ", ")
                }
                throw ExpressionError(message, offset: token.offset)
            }
            try enter(at: token.offset)
            defer { depth -= 1 }
            var arguments: [Expression] = []
            if current.kind != .symbol(")") {
                arguments.append(try parseBinary(level: 0))
                while current.kind == .symbol(",") {
                    index += 1
                    arguments.append(try parseBinary(level: 0))
                }
            }
            try expect(")", opening: opening)
            if !arity.contains(arguments.count) {
                let expected = arity.lowerBound == arity.upperBound
                    ? "\(arity.lowerBound)" : "\(arity.lowerBound) or \(arity.upperBound)"
                throw ExpressionError(
                    "\(name)() takes \(expected) argument\(arity.upperBound == 1 ? "" : "s"), got \(arguments.count)",
                    offset: token.offset)
            }
            return Expression(.call(name, arguments), offset: token.offset)
        case .symbol("("):
            index += 1
            try enter(at: token.offset)
            defer { depth -= 1 }
            let inner = try parseBinary(level: 0)
            try expect(")", opening: token)
            return inner
        case .end:
            throw ExpressionError("expected a value but the expression ended", offset: token.offset)
        default:
            throw ExpressionError("expected a value but found \(token.text)", offset: token.offset)
        }
    }
}

extension ExpressionToken {
    fileprivate var kindSymbol: String {
        if case .symbol(let symbol) = kind { return symbol }
        return ""
    }
}
