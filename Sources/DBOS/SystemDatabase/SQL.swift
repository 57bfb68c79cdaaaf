/// A value bound to a SQL statement parameter. Every value reaches the database as a bind
/// parameter, never as SQL text.
enum SQLValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case double(Double)
    case text(String)
    case bool(Bool)
}

/// A SQL statement built by string interpolation: each interpolated value becomes a bind
/// parameter, so injection cannot be written. Raw SQL fragments (identifiers chosen by the
/// engine, never by users) go through `unescaped:`.
///
/// ```swift
/// let statement: SQL = "SELECT status FROM workflow_status WHERE workflow_uuid = \(workflowID)"
/// ```
struct SQL: Sendable, ExpressibleByStringInterpolation, CustomStringConvertible {
    /// The statement's pieces: literal SQL text and parameter positions.
    enum Piece: Sendable, Hashable {
        case text(String)
        case parameter(Int)
    }

    private(set) var pieces: [Piece] = []
    /// The bound values, in parameter order.
    private(set) var bindings: [SQLValue] = []
    /// Set on a statement built in few shapes (a batch padded to a power of two rows): a backend
    /// may prepare it whatever its number of values. Others with many values (long `IN` lists,
    /// whose every length is another statement) are not worth a plan each.
    var hasFewShapes = false

    /// Whether a backend that prepares statements should prepare this one and reuse the plan.
    var isWorthPreparing: Bool { hasFewShapes || bindings.count <= 32 }

    init(stringLiteral value: String) {
        pieces = [.text(value)]
    }

    init(stringInterpolation: StringInterpolation) {
        pieces = stringInterpolation.pieces
        bindings = stringInterpolation.bindings
    }

    /// The statement text with parameters written by `placeholder` (1-based index):
    /// `"?\($0)"` for SQLite, `"$\($0)"` for PostgreSQL.
    func text(placeholder: (Int) -> String) -> String {
        var output = ""
        for piece in pieces {
            switch piece {
            case .text(let text): output += text
            case .parameter(let index): output += placeholder(index)
            }
        }
        return output
    }

    /// The statement with `?N` placeholders; for logs and error messages (no values).
    var description: String { text { "?\($0)" } }

    /// Appends another statement, renumbering its parameters.
    static func + (lhs: SQL, rhs: SQL) -> SQL {
        var result = lhs
        result.append(rhs)
        return result
    }

    /// Appends another statement in place, renumbering its parameters.
    mutating func append(_ other: SQL) {
        pieces += other.pieces(numberedAfter: bindings.count)
        bindings += other.bindings
    }

    /// The pieces, with each parameter's number moved up by `offset`.
    private func pieces(numberedAfter offset: Int) -> [Piece] {
        pieces.map { piece in
            switch piece {
            case .text: piece
            case .parameter(let index): .parameter(index + offset)
            }
        }
    }

    /// The parts separated by `separator`, as for the rows of a multi-row `VALUES`.
    static func joined(_ parts: [SQL], separator: String = ", ") -> SQL {
        var result: SQL = ""
        for (index, part) in parts.enumerated() {
            if index > 0 { result.pieces.append(.text(separator)) }
            result.append(part)
        }
        return result
    }

    struct StringInterpolation: StringInterpolationProtocol {
        var pieces: [Piece] = []
        var bindings: [SQLValue] = []

        init(literalCapacity: Int, interpolationCount: Int) {}

        mutating func appendLiteral(_ literal: String) {
            pieces.append(.text(literal))
        }

        /// Raw SQL text: only for identifiers and fragments the engine itself chooses.
        mutating func appendInterpolation(unescaped text: String) {
            pieces.append(.text(text))
        }

        mutating func appendInterpolation(_ value: SQLValue) {
            bindings.append(value)
            pieces.append(.parameter(bindings.count))
        }

        mutating func appendInterpolation(_ value: String?) {
            appendInterpolation(value.map(SQLValue.text) ?? .null)
        }

        mutating func appendInterpolation(_ value: Int64?) {
            appendInterpolation(value.map(SQLValue.integer) ?? .null)
        }

        mutating func appendInterpolation(_ value: Int?) {
            appendInterpolation(value.map { SQLValue.integer(Int64($0)) } ?? .null)
        }

        mutating func appendInterpolation(_ value: Double?) {
            appendInterpolation(value.map(SQLValue.double) ?? .null)
        }

        mutating func appendInterpolation(_ value: Bool?) {
            appendInterpolation(value.map(SQLValue.bool) ?? .null)
        }

        /// A fragment the engine built, its parameters numbered after the ones before it.
        mutating func appendInterpolation(_ fragment: SQL) {
            pieces += fragment.pieces(numberedAfter: bindings.count)
            bindings += fragment.bindings
        }

        /// A comma-separated list of parameters, for `IN (...)`.
        mutating func appendInterpolation(list values: [String]) {
            for (index, value) in values.enumerated() {
                if index > 0 { pieces.append(.text(", ")) }
                appendInterpolation(value)
            }
        }
    }
}

/// A row returned by a query: column values by position, with typed accessors by name.
struct SQLRow: Sendable {
    let columns: [String]
    let values: [SQLValue]

    subscript(_ name: String) -> SQLValue {
        guard let index = columns.firstIndex(of: name) else { return .null }
        return values[index]
    }

    func string(_ name: String) -> String? {
        switch self[name] {
        case .text(let value): value
        case .integer(let value): String(value)
        case .double(let value): String(value)
        case .bool(let value): value ? "true" : "false"
        case .null: nil
        }
    }

    func int64(_ name: String) -> Int64? {
        switch self[name] {
        case .integer(let value): value
        case .double(let value): Int64(value)
        case .text(let value): Int64(value)
        case .bool(let value): value ? 1 : 0
        case .null: nil
        }
    }

    func int(_ name: String) -> Int? { int64(name).map { Int($0) } }

    func double(_ name: String) -> Double? {
        switch self[name] {
        case .integer(let value): Double(value)
        case .double(let value): value
        case .text(let value): Double(value)
        case .bool, .null: nil
        }
    }

    func bool(_ name: String) -> Bool? {
        switch self[name] {
        case .bool(let value): value
        case .integer(let value): value != 0
        case .text(let value): value == "t" || value == "true" || value == "1"
        case .double, .null: nil
        }
    }
}
