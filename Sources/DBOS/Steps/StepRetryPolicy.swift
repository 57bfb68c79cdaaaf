/// How a step retries when its body throws: DBOS's max attempts, base interval, backoff factor,
/// max interval and retry predicate, with a small jitter so many retrying steps do not wake in lockstep.
public struct StepRetryPolicy: Sendable {
    /// How many times the body runs at most (1 = no retries).
    public var maxAttempts: Int
    /// The wait before the second attempt.
    public var baseInterval: Duration
    /// How much each later wait grows.
    public var backoffFactor: Double
    /// The longest wait between two attempts.
    public var maxInterval: Duration
    /// Whether an error is worth another attempt (DBOS's retry predicate). An error it refuses ends
    /// the step at once with that error, whatever attempts are left.
    public var retryIf: @Sendable (any Error) -> Bool

    /// A policy; the defaults are DBOS's: 1 attempt, 100 ms, 2.0, 5 s, every error retried.
    public init(
        maxAttempts: Int = 1, baseInterval: Duration = .milliseconds(100), backoffFactor: Double = 2.0,
        maxInterval: Duration = .seconds(5), retryIf: @escaping @Sendable (any Error) -> Bool = { _ in true }
    ) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseInterval = baseInterval
        self.backoffFactor = max(1.0, backoffFactor)
        self.maxInterval = maxInterval
        self.retryIf = retryIf
    }

    /// Run once, never retry.
    public static let none = StepRetryPolicy()

    /// The wait after failed attempt number `attempt` (1-based), before jitter.
    public func interval(afterAttempt attempt: Int) -> Duration {
        let seconds = min(maxInterval.seconds, baseInterval.seconds * pow(backoffFactor, Double(attempt - 1)))
        // Clamped like every duration the engine adds to a time (a backoff of centuries would trap here).
        let milliseconds = min((seconds * 1000).rounded(), Double(Duration.longestMilliseconds))
        return .milliseconds(Int64(max(0, milliseconds)))
    }

    private func pow(_ base: Double, _ exponent: Double) -> Double {
        var result = 1.0
        var remaining = Int(exponent)
        while remaining > 0 && result < 1e12 {
            result *= base
            remaining -= 1
        }
        return result
    }
}

extension Duration {
    /// The longest duration the engine stores or adds to a time: 100 years. Longer sleeps, timeouts and
    /// delays mean "practically never" and are treated as this, so that adding one to the current time (a
    /// wake-up time, a deadline, also in SQL) can never overflow.
    static let longestMilliseconds: Int64 = 100 * 365 * 86_400_000

    /// Whole milliseconds, rounded down, within ±`longestMilliseconds`.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        let limit = Self.longestMilliseconds
        guard seconds < limit / 1000 else { return limit }
        guard seconds > -limit / 1000 else { return -limit }
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// Seconds, with the fraction.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
