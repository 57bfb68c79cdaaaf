import DBOS

/// Turns workflow values (outputs, event values, messages) into the text the CLI prints.
///
/// A JSON string prints as its bare text, so `HELLO WORLD` rather than `"HELLO WORLD"`; every other
/// value prints as compact JSON. With `--json` strings are JSON too.
public struct ValuePrinter: Sendable {
    /// Whether every value, strings included, prints as JSON.
    public var printsJSON: Bool

    /// A printer for `--json` (`printsJSON`) or human output.
    public init(printsJSON: Bool) {
        self.printsJSON = printsJSON
    }

    /// The text for one value.
    public func text(for value: JSONValue) -> String {
        if !printsJSON, case .string(let text) = value { return text }
        return value.jsonText
    }

    /// Prints one value on its own line to stdout.
    public func print(_ value: JSONValue) {
        Swift.print(text(for: value))
    }
}
