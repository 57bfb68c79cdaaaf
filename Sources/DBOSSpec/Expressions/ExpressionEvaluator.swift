import DBOS
import Foundation

/// The names an expression can read while a step runs.
public struct ExpressionScope: Sendable {
    /// Top-level names and their values: `input`, `steps`, `workflow`, and inside `map` bodies `item` and `index`.
    /// `steps` is an object keyed by step id whose values are `{output, status, error}`.
    public var variables: [String: JSONValue]
    /// Looks up `secrets.<NAME>`; by default the process environment. Secrets are read when the step runs and
    /// must never be checkpointed.
    public var secret: @Sendable (String) -> String?

    /// Creates a scope from its variables; secrets come from the process environment unless `secret` is given.
    public init(
        variables: [String: JSONValue],
        secret: @escaping @Sendable (String) -> String? = { ProcessInfo.processInfo.environment[$0] }
    ) {
        self.variables = variables
        self.secret = secret
    }
}

extension JSONValue {
    /// Truthiness as in GitHub Actions: `false`, `null`, `0`, `NaN` and `""` are false; everything else is true.
    public var isTruthy: Bool {
        switch self {
        case .null: false
        case .bool(let value): value
        case .integer(let value): value != 0
        case .double(let value): value != 0 && !value.isNaN
        case .string(let value): !value.isEmpty
        case .array, .object: true
        }
    }

    /// The text a value takes when interpolated into a longer string: strings bare, null as empty text,
    /// everything else as compact JSON.
    public var interpolatedText: String {
        switch self {
        case .null: ""
        case .string(let value): value
        default: jsonText
        }
    }

    /// Deep equality that treats `1` and `1.0` as equal.
    public func isEqualForExpression(to other: JSONValue) -> Bool {
        switch (self, other) {
        case (.integer(let lhs), .double(let rhs)): return Double(lhs) == rhs
        case (.double(let lhs), .integer(let rhs)): return lhs == Double(rhs)
        case (.array(let lhs), .array(let rhs)):
            return lhs.count == rhs.count && zip(lhs, rhs).allSatisfy { $0.isEqualForExpression(to: $1) }
        case (.object(let lhs), .object(let rhs)):
            return lhs.count == rhs.count
                && lhs.allSatisfy { key, value in rhs[key].map { value.isEqualForExpression(to: $0) } ?? false }
        default: return self == other
        }
    }
}

extension Expression {
    /// Evaluates the expression in `scope`; errors name the problem and carry the offending node's offset.
    public func evaluate(in scope: ExpressionScope) throws(ExpressionError) -> JSONValue {
        switch kind {
        case .literal(let value):
            return value
        case .name(let name):
            if name == "secrets" {
                throw ExpressionError("'secrets' must be followed by a name, e.g. secrets.API_TOKEN", offset: offset)
            }
            guard let value = scope.variables[name] else {
                throw ExpressionError("unknown name '\(name)'", offset: offset)
            }
            return value
        case .member(let base, let field):
            if case .name("secrets") = base.kind {
                // An unset secret is null, so `default(secrets.X, 'none')` works.
                return scope.secret(field).map { .string($0) } ?? .null
            }
            return try Self.member(field, of: base.evaluate(in: scope), offset: offset)
        case .index(let base, let subscriptExpression):
            let container = try base.evaluate(in: scope)
            let key = try subscriptExpression.evaluate(in: scope)
            switch (container, key) {
            case (.null, _): return .null
            case (.array(let items), .integer(let position)):
                return position >= 0 && position < items.count ? items[Int(position)] : .null
            case (.array(let items), .double(let position)) where position == position.rounded():
                let whole = Int(exactly: position) ?? -1
                return whole >= 0 && whole < items.count ? items[whole] : .null
            case (.object, .string(let field)):
                return try Self.member(field, of: container, offset: offset)
            default:
                throw ExpressionError("cannot index \(container.typeName) with \(key.typeName)",
                    offset: subscriptExpression.offset)
            }
        case .unary(let op, let operand):
            let value = try operand.evaluate(in: scope)
            switch op {
            case .not: return .bool(!value.isTruthy)
            case .negate:
                switch value {
                case .integer(let number) where number != .min: return .integer(-number)
                case .integer(let number): return .double(-Double(number))
                case .double(let number): return .double(-number)
                default: throw ExpressionError("cannot negate \(value.typeName)", offset: offset)
                }
            }
        case .binary(let op, let lhsExpression, let rhsExpression):
            let lhs = try lhsExpression.evaluate(in: scope)
            switch op {
            case .and: return lhs.isTruthy ? try rhsExpression.evaluate(in: scope) : lhs
            case .or: return lhs.isTruthy ? lhs : try rhsExpression.evaluate(in: scope)
            default: break
            }
            let rhs = try rhsExpression.evaluate(in: scope)
            return try Self.apply(op, lhs, rhs, offset: offset)
        case .call(let name, let argumentExpressions):
            var arguments: [JSONValue] = []
            for argument in argumentExpressions { arguments.append(try argument.evaluate(in: scope)) }
            return try ExpressionFunctions.call(name, arguments, offset: offset)
        }
    }

    private static func member(_ field: String, of value: JSONValue, offset: Int) throws(ExpressionError) -> JSONValue {
        switch value {
        case .object(let members): return members[field] ?? .null
        case .null: return .null
        default: throw ExpressionError("cannot read field '\(field)' of \(value.typeName)", offset: offset)
        }
    }

    private static func apply(_ op: BinaryOperator, _ lhs: JSONValue, _ rhs: JSONValue, offset: Int)
        throws(ExpressionError) -> JSONValue
    {
        switch op {
        case .equal: return .bool(lhs.isEqualForExpression(to: rhs))
        case .notEqual: return .bool(!lhs.isEqualForExpression(to: rhs))
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            let order: Int
            if let a = lhs.doubleValue, let b = rhs.doubleValue {
                order = a < b ? -1 : (a > b ? 1 : 0)
                if a.isNaN || b.isNaN { return .bool(false) }
            } else if case .string(let a) = lhs, case .string(let b) = rhs {
                order = a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars) ? -1 : (a == b ? 0 : 1)
            } else {
                throw ExpressionError("cannot compare \(lhs.typeName) with \(rhs.typeName)", offset: offset)
            }
            switch op {
            case .less: return .bool(order < 0)
            case .lessOrEqual: return .bool(order <= 0)
            case .greater: return .bool(order > 0)
            default: return .bool(order >= 0)
            }
        case .add:
            switch (lhs, rhs) {
            case (.string(let a), _): return .string(a + rhs.interpolatedText)
            case (_, .string(let b)): return .string(lhs.interpolatedText + b)
            case (.array(let a), .array(let b)): return .array(a + b)
            default: return try arithmetic(op, lhs, rhs, offset: offset)
            }
        case .subtract, .multiply, .divide: return try arithmetic(op, lhs, rhs, offset: offset)
        case .and, .or: return .null
        }
    }

    private static func arithmetic(_ op: BinaryOperator, _ lhs: JSONValue, _ rhs: JSONValue, offset: Int)
        throws(ExpressionError) -> JSONValue
    {
        guard let a = lhs.doubleValue, let b = rhs.doubleValue else {
            let verb = ["+": "add", "-": "subtract", "*": "multiply", "/": "divide"][op.rawValue] ?? op.rawValue
            throw ExpressionError("cannot \(verb) \(lhs.typeName) and \(rhs.typeName)", offset: offset)
        }
        if op == .divide, b == 0 { throw ExpressionError("division by zero", offset: offset) }
        if case .integer(let x) = lhs, case .integer(let y) = rhs {
            let result: (partialValue: Int64, overflow: Bool)
            switch op {
            case .add: result = x.addingReportingOverflow(y)
            case .subtract: result = x.subtractingReportingOverflow(y)
            case .multiply: result = x.multipliedReportingOverflow(by: y)
            default:
                if x % y == 0, !(x == .min && y == -1) { return .integer(x / y) }
                return .double(a / b)
            }
            if !result.overflow { return .integer(result.partialValue) }
        }
        switch op {
        case .add: return .double(a + b)
        case .subtract: return .double(a - b)
        case .multiply: return .double(a * b)
        default: return .double(a / b)
        }
    }
}
