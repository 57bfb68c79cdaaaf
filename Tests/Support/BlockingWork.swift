import Foundation

/// Runs blocking work (initdb, pg_ctl, waitpid) on a thread of its own and awaits its result.
///
/// Swift's cooperative pool has one thread per core; blocking one of them for the seconds a
/// PostgreSQL server takes to start stalls every other test's tasks and timers meanwhile.
public func runOnOwnThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}
