import DBOS

extension RetrySpec {
    /// The templates of the fields written as templates, in field order, for checking names and secrets.
    public var templateValues: [SpecValue] {
        Field.allCases.compactMap { templates[$0] }
    }

    /// The policy with every templated field evaluated in `scope`: `max_attempts` a whole number of at least 1,
    /// `backoff` a number of at least 1.0, `interval` and `max_interval` durations (zero allowed).
    public func resolved(in scope: ExpressionScope) -> Result<RetrySpec, DurationValueError> {
        var policy = self
        policy.templates = [:]
        for field in Field.allCases {
            guard let template = templates[field] else { continue }
            let value: JSONValue
            do {
                value = try template.resolve(in: scope)
            } catch {
                return .failure(DurationValueError(message: "cannot evaluate 'retry.\(field.rawValue)': \(error.message)"))
            }
            if let problem = policy.set(field, to: value) { return .failure(problem) }
        }
        return .success(policy)
    }

    /// Sets `field` to a template's value, or says what is wrong with the value.
    mutating func set(_ field: Field, to value: JSONValue) -> DurationValueError? {
        let name = "retry." + field.rawValue
        switch field {
        case .maxAttempts:
            guard let attempts = Self.wholeNumber(value), attempts >= 1, attempts <= Int(Int32.max) else {
                return DurationValueError(message: "'\(name)' must be a whole number of at least 1, not \(value.jsonText)")
            }
            maxAttempts = attempts
        case .backoff:
            guard let factor = value.doubleValue, factor >= 1, factor.isFinite else {
                return DurationValueError(message: "'\(name)' must be a number of at least 1.0, not \(value.jsonText)")
            }
            backoff = factor
        case .interval, .maxInterval:
            switch DurationValue.checked(value, field: name, allowsZero: true) {
            case .success(let duration):
                if field == .interval { interval = duration } else { maxInterval = duration }
            case .failure(let error): return error
            }
        }
        return nil
    }

    private static func wholeNumber(_ value: JSONValue) -> Int? {
        switch value {
        case .integer(let number): return Int(exactly: number)
        case .double(let number) where number == number.rounded() && abs(number) < 1e15: return Int(number)
        default: return nil
        }
    }
}
