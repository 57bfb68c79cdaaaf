import DBOS

/// One problem found in a spec: where it is and a message a person can act on.
public struct SpecError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Where the problem is.
    public var location: SourceLocation
    /// What is wrong, e.g. `step 'ship' needs unknown step 'pack'`.
    public var message: String

    /// Creates an error at `location`. The message is kept to one line of bounded length, whatever text from
    /// the spec it quotes (a key may hold a newline, a scalar may be megabytes long).
    public init(_ message: String, at location: SourceLocation) {
        self.message = OneLineText.quoting(message, limit: 1000)
        self.location = location
    }

    /// `FILE:LINE:COLUMN: error: message`, the format every command prints.
    public var description: String { "\(location): error: \(message)" }
}

/// All the problems of one or more specs, thrown when a spec cannot be used.
public struct SpecValidationError: Error, Sendable, CustomStringConvertible {
    /// The problems, in file and position order.
    public var errors: [SpecError]

    /// Wraps `errors`, sorting them by position.
    public init(_ errors: [SpecError]) {
        self.errors = errors.sorted { $0.location < $1.location }
    }

    /// One `FILE:LINE:COLUMN: error: message` line per problem.
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
