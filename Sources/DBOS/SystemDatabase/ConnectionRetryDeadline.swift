import Foundation

/// The instant past which an operation stops waiting for a lost database connection to come back,
/// set by a caller outside any workflow that waits with a timeout of its own
/// (`DBOSRuntime.getEvent(timeout:)`), or that must not wait long at all (a one-shot command of
/// `dbos-run`).
///
/// Operations on a lost connection are retried until the server is back, so that a restart delays
/// runs instead of failing them. A caller with a timeout must not outlast it that way: with a
/// deadline set, the retry that would pass it throws the connection error instead, which names the
/// server that cannot be reached.
package enum ConnectionRetryDeadline {
    /// The deadline of the current task, if it has one.
    @TaskLocal static var current: EpochMilliseconds?

    /// Runs `body` with a deadline `limit` from now.
    package static func within<T>(
        _ limit: Duration, isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> T
    ) async rethrows -> T {
        try await $current.withValue(Date().epochMilliseconds + limit.milliseconds, operation: body)
    }

    /// How long a retry may still wait: `delay`, shortened to what is left before the deadline;
    /// nil when the deadline has passed.
    static func delay(_ delay: Duration) -> Duration? {
        guard let deadline = current else { return delay }
        let remaining = deadline - Date().epochMilliseconds
        guard remaining > 0 else { return nil }
        return min(delay, .milliseconds(remaining))
    }
}
