/// Parses the durations the CLI accepts: an integer and a unit, repeated from the largest unit
/// down: `250ms`, `30s`, `5m`, `2h`, `1d`, `1h30m`.
public enum CLIDuration {
    /// The accepted units and their lengths in milliseconds.
    private static let units: [(suffix: String, milliseconds: Int64)] = [
        ("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000),
    ]

    /// The duration `text` names, or nil when it is not a duration.
    public static func parse(_ text: String) -> Duration? {
        var rest = Substring(text)
        var total: Int64 = 0
        var lastUnitLength = Int64.max
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let digits = rest.prefix(while: \.isASCII).prefix(while: \.isNumber)
            guard !digits.isEmpty, let amount = Int64(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            // "ms" before "m", so the longest suffix wins.
            guard let unit = units.sorted(by: { $0.suffix.count > $1.suffix.count }).first(where: { rest.hasPrefix($0.suffix) }),
                unit.milliseconds < lastUnitLength
            else { return nil }
            rest = rest.dropFirst(unit.suffix.count)
            lastUnitLength = unit.milliseconds
            let (product, overflowProduct) = amount.multipliedReportingOverflow(by: unit.milliseconds)
            let (sum, overflowSum) = total.addingReportingOverflow(product)
            guard !overflowProduct, !overflowSum else { return nil }
            total = sum
        }
        return .milliseconds(total)
    }

    /// The duration `text` names, or a `CommandFailure` (exit 2) naming the option and the forms accepted.
    public static func parse(_ text: String, option: String) throws(CommandFailure) -> Duration {
        guard let duration = parse(text) else {
            throw CommandFailure(
                exitCode: CommandFailure.invalidInputExitCode,
                message: "invalid duration '\(text)' for \(option): expected a number and a unit, like 250ms, 30s, 5m, 2h, 1d or 1h30m")
        }
        return duration
    }
}
