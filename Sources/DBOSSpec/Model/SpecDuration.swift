/// Parses the spec's duration syntax into Swift `Duration`s.
public enum SpecDuration {
    /// The error text for a bad duration, shared by every field that takes one.
    static func invalidMessage(_ text: String, field: String) -> String {
        "invalid duration '\(text)' for '\(field)' (expected e.g. 250ms, 30s, 5m, 2h, 1d, 1h30m)"
    }

    /// Parses `250ms`, `30s`, `5m`, `2h`, `1d` and combinations in decreasing order such as `1h30m`, and zero
    /// (`0s`, `0ms`); `nil` for anything else: negative, empty, no unit or unknown units. Whether zero means
    /// something is the field's to decide.
    public static func parse(_ text: String) -> Duration? {
        let units: [(suffix: String, milliseconds: Int64)] = [
            ("d", 86_400_000), ("h", 3_600_000), ("ms", 1), ("m", 60_000), ("s", 1000),
        ]
        let order = ["d": 0, "h": 1, "m": 2, "s": 3, "ms": 4]
        var rest = Substring(text)
        var total: Int64 = 0
        var lastRank = -1
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.count <= 12, let amount = Int64(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            guard let unit = units.first(where: { rest.hasPrefix($0.suffix) }),
                let rank = order[unit.suffix], rank > lastRank
            else { return nil }
            // "5m" must not swallow the "m" of "5ms": the units list checks "ms" before "m".
            lastRank = rank
            rest = rest.dropFirst(unit.suffix.count)
            let (product, overflow) = amount.multipliedReportingOverflow(by: unit.milliseconds)
            guard !overflow else { return nil }
            let (sum, sumOverflow) = total.addingReportingOverflow(product)
            guard !sumOverflow else { return nil }
            total = sum
        }
        return .milliseconds(total)
    }

    /// The duration in the spec's own syntax, e.g. `1m30s` or `250ms`.
    public static func text(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        var milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        guard milliseconds > 0 else { return "0s" }
        var text = ""
        for (suffix, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] {
            if milliseconds >= size {
                text += "\(milliseconds / size)\(suffix)"
                milliseconds %= size
            }
        }
        return text
    }
}
