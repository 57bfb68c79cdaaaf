import Foundation

/// How a `run` or `handler` step retries: `retry: {max_attempts: 3, interval: 1s, backoff: 2.0, max_interval: 30s}`.
public struct RetrySpec: Sendable, Hashable {
    /// Total attempts including the first (default 1: no retry).
    public var maxAttempts: Int = 1
    /// The wait before the first retry (default 100ms).
    public var interval: Duration = .milliseconds(100)
    /// The factor the wait grows by after each retry (default 2.0).
    public var backoff: Double = 2.0
    /// The longest wait between attempts (default 5s).
    public var maxInterval: Duration = .seconds(5)

    /// The fields written as templates, evaluated when the step runs; they replace the values above.
    public var templates: [Field: SpecValue] = [:]

    /// A field of `retry:`.
    public enum Field: String, Sendable, Hashable, CaseIterable {
        /// `max_attempts`.
        case maxAttempts = "max_attempts"
        /// `interval`.
        case interval
        /// `backoff`.
        case backoff
        /// `max_interval`.
        case maxInterval = "max_interval"
    }

    /// The defaults: one attempt.
    public init() {}

    /// The wait before attempt `attempt` (2 = the first retry): `interval * backoff^(attempt-2)`, capped.
    public func delay(beforeAttempt attempt: Int) -> Duration {
        let factor = pow(backoff, Double(max(0, attempt - 2)))
        let seconds = min(Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18,
            Double.greatestFiniteMagnitude) * factor
        let cap = Double(maxInterval.components.seconds) + Double(maxInterval.components.attoseconds) / 1e18
        return .milliseconds(Int64(min(seconds, cap) * 1000))
    }
}
