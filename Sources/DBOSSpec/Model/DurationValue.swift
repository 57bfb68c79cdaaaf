import DBOS

/// A duration a step writes literally (`30s`) or as a template evaluated when the step runs
/// (`${{ input.wait }}`, `${{ input.minutes }}m`).
///
/// A template's value is a duration in the spec's syntax (`"1s"`, `"1h30m"`) or a number of seconds (`5`,
/// `0.25`); anything else fails the step, naming the field.
public enum DurationValue: Sendable, Hashable {
    /// A duration written literally.
    case fixed(Duration)
    /// A template, evaluated when the step runs.
    case template(SpecValue)

    /// The template to check and evaluate, nil for a literal duration.
    public var templateValue: SpecValue? {
        if case .template(let value) = self { return value }
        return nil
    }

    /// The duration a template's value stands for: a string in the spec's syntax or a non-negative number of
    /// seconds (milliseconds are kept); nil for anything else.
    public static func duration(of value: JSONValue) -> Duration? {
        switch value {
        case .string(let text): return SpecDuration.parse(text)
        case .integer(let seconds):
            guard seconds >= 0 else { return nil }
            let (milliseconds, overflow) = seconds.multipliedReportingOverflow(by: 1000)
            return overflow ? nil : .milliseconds(milliseconds)
        case .double(let seconds):
            let milliseconds = (seconds * 1000).rounded()
            guard seconds >= 0, milliseconds < 9.2e18 else { return nil }
            return .milliseconds(Int64(milliseconds))
        default: return nil
        }
    }

    /// The duration this value gives in `scope`, or a message naming `field` and the value that is wrong.
    /// Zero is refused unless `allowsZero`.
    public func resolve(in scope: ExpressionScope, field: String, allowsZero: Bool) -> Result<Duration, DurationValueError> {
        switch self {
        case .fixed(let duration): return .success(duration)
        case .template(let template):
            let value: JSONValue
            do {
                value = try template.resolve(in: scope)
            } catch {
                return .failure(DurationValueError(message: "cannot evaluate '\(field)': \(error.message)"))
            }
            return Self.checked(value, field: field, allowsZero: allowsZero)
        }
    }

    /// `value` as a duration for `field`, or the message saying what is wrong with it.
    static func checked(_ value: JSONValue, field: String, allowsZero: Bool) -> Result<Duration, DurationValueError> {
        guard let duration = duration(of: value) else {
            return .failure(DurationValueError(message:
                "'\(field)' must be a duration such as 30s or a number of seconds, not \(value.jsonText)"))
        }
        if duration == .zero, !allowsZero {
            return .failure(DurationValueError(message: "'\(field)' must be greater than zero, not \(value.jsonText)"))
        }
        return .success(duration)
    }
}

/// Why a templated duration could not be used, e.g. `'sleep' must be a duration such as 30s or a number of
/// seconds, not "soon"`.
public struct DurationValueError: Error, Sendable, CustomStringConvertible {
    /// What is wrong, naming the field.
    public var message: String
    /// The message.
    public var description: String { message }
}

extension SpecDuration {
    /// The duration as the spec writes it: `1m30s` for a literal, the template's text for a template.
    public static func text(_ value: DurationValue) -> String {
        switch value {
        case .fixed(let duration): return text(duration)
        case .template(let template):
            guard case .template(let parsed) = template.kind else { return template.constantValue?.jsonText ?? "" }
            return parsed.parts.map { part in
                switch part {
                case .text(let literal): literal
                case .expression(_, let source, _): "${{" + source + "}}"
                }
            }.joined()
        }
    }
}
