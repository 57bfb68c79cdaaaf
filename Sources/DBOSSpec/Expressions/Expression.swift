import DBOS

/// A parsed `${{ ... }}` expression: a tree of operations, each node knowing its offset in the expression text.
public struct Expression: Sendable, Hashable {
    /// A prefix operator.
    public enum UnaryOperator: String, Sendable, Hashable {
        /// Logical not: `!x` is true when `x` is falsy.
        case not = "!"
        /// Numeric negation.
        case negate = "-"
    }

    /// An infix operator, from lowest to highest precedence: `||`, `&&`, `== !=`, `< <= > >=`, `+ -`, `* /`.
    public enum BinaryOperator: String, Sendable, Hashable {
        /// `||`: the left value if truthy, else the right one.
        case or = "||"
        /// `&&`: the left value if falsy, else the right one.
        case and = "&&"
        /// Deep equality (1 == 1.0).
        case equal = "=="
        /// Deep inequality.
        case notEqual = "!="
        /// Less than (numbers, or strings by code points).
        case less = "<"
        /// Less than or equal.
        case lessOrEqual = "<="
        /// Greater than.
        case greater = ">"
        /// Greater than or equal.
        case greaterOrEqual = ">="
        /// Addition of numbers, concatenation of strings or lists.
        case add = "+"
        /// Subtraction.
        case subtract = "-"
        /// Multiplication.
        case multiply = "*"
        /// Division; integers divide exactly or give a floating point result.
        case divide = "/"
    }

    /// The operation of one node.
    public indirect enum Kind: Sendable, Hashable {
        /// A literal value: a string, number, `true`, `false` or `null`.
        case literal(JSONValue)
        /// A top-level name: `input`, `steps`, `workflow`, `item`, `index`, `secrets`.
        case name(String)
        /// `base.field`.
        case member(Expression, String)
        /// `base[index]`.
        case index(Expression, Expression)
        /// A prefix operation.
        case unary(UnaryOperator, Expression)
        /// An infix operation.
        case binary(BinaryOperator, Expression, Expression)
        /// A function call such as `len(x)`.
        case call(String, [Expression])
    }

    /// What this node does.
    public var kind: Kind
    /// The node's offset in characters from the start of the expression text.
    public var offset: Int

    /// Creates a node.
    public init(_ kind: Kind, offset: Int) {
        self.kind = kind
        self.offset = offset
    }

    /// A name path such as `steps.build.output` as a list of parts, when this node is one (names, `.field`
    /// and `['literal']` only); `nil` otherwise.
    public var namePath: [String]? {
        switch kind {
        case .name(let name): return [name]
        case .member(let base, let field): return base.namePath.map { $0 + [field] }
        case .index(let base, let index):
            if case .literal(.string(let key)) = index.kind { return base.namePath.map { $0 + [key] } }
            return nil
        default: return nil
        }
    }

    /// Calls `visit` on this node and every node below it, parents first.
    public func forEachNode(_ visit: (Expression) -> Void) {
        visit(self)
        switch kind {
        case .literal, .name: break
        case .member(let base, _): base.forEachNode(visit)
        case .index(let base, let index):
            base.forEachNode(visit)
            index.forEachNode(visit)
        case .unary(_, let operand): operand.forEachNode(visit)
        case .binary(_, let lhs, let rhs):
            lhs.forEachNode(visit)
            rhs.forEachNode(visit)
        case .call(_, let arguments): arguments.forEach { $0.forEachNode(visit) }
        }
    }

    /// The longest name paths the expression reads, each with the offset of its start, e.g.
    /// `steps.a.output.x == input.y` gives `(["steps","a","output","x"], 0)` and `(["input","y"], ...)`.
    public var referencedPaths: [(path: [String], offset: Int)] {
        var result: [(path: [String], offset: Int)] = []
        collectPaths(into: &result)
        return result
    }

    private func collectPaths(into result: inout [(path: [String], offset: Int)]) {
        if let path = namePath {
            result.append((path, offset))
            return
        }
        switch kind {
        case .literal, .name: break
        case .member(let base, _): base.collectPaths(into: &result)
        case .index(let base, let index):
            base.collectPaths(into: &result)
            index.collectPaths(into: &result)
        case .unary(_, let operand): operand.collectPaths(into: &result)
        case .binary(_, let lhs, let rhs):
            lhs.collectPaths(into: &result)
            rhs.collectPaths(into: &result)
        case .call(_, let arguments): arguments.forEach { $0.collectPaths(into: &result) }
        }
    }
}

/// A problem in an expression: what is wrong and the offset (in characters) in the expression text.
public struct ExpressionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong.
    public var message: String
    /// Where, in characters from the start of the expression text.
    public var offset: Int

    /// Creates an error at `offset`.
    public init(_ message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }

    /// The message.
    public var description: String { message }
}
