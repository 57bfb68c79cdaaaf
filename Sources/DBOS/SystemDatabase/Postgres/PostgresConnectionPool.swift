import Synchronization

/// A bounded set of connections to one database, opened on first need and shared by tasks.
///
/// Each connection has its own owner thread, so the bound is also the number of threads the
/// backend spends on PostgreSQL. A task that finds every connection busy suspends (it does not
/// block a thread) until one is returned. Connections whose link broke are closed rather than
/// returned, so the next borrower opens a fresh one.
final class PostgresConnectionPool: Sendable {
    /// The database every connection points at.
    let url: PostgresURL
    /// The most connections open at once.
    let maximumConnections: Int

    private struct Waiter {
        let id: UInt64
        /// Resumed with a connection handed over directly, or with nil meaning "a slot is free:
        /// open a connection yourself".
        let continuation: CheckedContinuation<PostgresConnection?, any Error>
    }

    private struct State {
        var idle: [PostgresConnection] = []
        var openCount = 0
        var waiters: [Waiter] = []
        var nextWaiterID: UInt64 = 0
        var isClosed = false
    }

    private let state = Mutex(State())

    init(url: PostgresURL, maximumConnections: Int = 10) {
        precondition(maximumConnections > 0, "a pool needs at least one connection")
        self.url = url
        self.maximumConnections = maximumConnections
    }

    deinit { close() }

    /// How many connections are open (idle or lent out); for tests and diagnostics.
    var openConnectionCount: Int { state.withLock { $0.openCount } }

    /// Lends a connection to `body` and takes it back afterwards, even when `body` throws.
    func withConnection<T>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        let connection = try await checkOut()
        do {
            let value = try await body(connection)
            checkIn(connection)
            return value
        } catch {
            checkIn(connection, discard: (error as? PostgresError)?.isConnectionLost == true)
            throw error
        }
    }

    /// Closes idle connections and fails waiting tasks; connections lent out close when returned.
    func close() {
        let (idle, waiters) = state.withLock { state in
            state.isClosed = true
            defer {
                state.openCount -= state.idle.count
                state.idle = []
                state.waiters = []
            }
            return (state.idle, state.waiters)
        }
        for connection in idle { connection.close() }
        for waiter in waiters { waiter.continuation.resume(throwing: PostgresError.closed("connection pool")) }
    }

    private enum Reservation {
        case connection(PostgresConnection)
        case open
        case wait(UInt64)
    }

    private func checkOut() async throws -> PostgresConnection {
        while true {
            let reservation: Reservation = try state.withLock { state in
                if state.isClosed { throw PostgresError.closed("connection pool") }
                if let connection = state.idle.popLast() { return .connection(connection) }
                if state.openCount < maximumConnections {
                    state.openCount += 1
                    return .open
                }
                state.nextWaiterID += 1
                return .wait(state.nextWaiterID)
            }
            switch reservation {
            case .connection(let connection):
                if connection.isConnectionLost {
                    discard(connection)
                    continue
                }
                return connection
            case .open:
                do {
                    return try await PostgresConnection.connect(url)
                } catch {
                    releaseSlot()
                    throw error
                }
            case .wait(let id):
                if let connection = try await wait(id: id) { return connection }
                // Resumed with a free slot: loop and take it (or a connection returned meanwhile).
            }
        }
    }

    private func wait(id: UInt64) async throws -> PostgresConnection? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let refusal: (any Error)? = state.withLock { state in
                    if state.isClosed { return PostgresError.closed("connection pool") }
                    // Cancellation is flagged before its handler runs, so either the handler below
                    // finds this waiter or this check sees the flag.
                    if Task.isCancelled { return CancellationError() }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return nil
                }
                if let refusal { continuation.resume(throwing: refusal) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    private func checkIn(_ connection: PostgresConnection, discard shouldDiscard: Bool = false) {
        if shouldDiscard || connection.isConnectionLost {
            discard(connection)
            return
        }
        enum Destination { case waiter(Waiter), idle, closedPool }
        let destination: Destination = state.withLock { state in
            if state.isClosed {
                state.openCount -= 1
                return .closedPool
            }
            if !state.waiters.isEmpty { return .waiter(state.waiters.removeFirst()) }
            state.idle.append(connection)
            return .idle
        }
        switch destination {
        case .waiter(let waiter): waiter.continuation.resume(returning: connection)
        case .idle: break
        case .closedPool: connection.close()
        }
    }

    private func discard(_ connection: PostgresConnection) {
        connection.close()
        releaseSlot()
    }

    /// Gives up one connection slot and lets the first waiter use it.
    private func releaseSlot() {
        let waiter: Waiter? = state.withLock { state in
            state.openCount -= 1
            return state.waiters.isEmpty ? nil : state.waiters.removeFirst()
        }
        waiter?.continuation.resume(returning: nil)
    }
}

/// How `retryingOnConnectionLoss` spaces its attempts: exponential backoff with jitter, as DBOS
/// Transact does for system-database calls, so a restarting server is not hammered.
struct PostgresRetryPolicy: Sendable {
    /// The wait after the first failure.
    var initialDelay: Duration = .milliseconds(100)
    /// The factor each wait grows by.
    var multiplier: Double = 2
    /// The longest single wait.
    var maximumDelay: Duration = .seconds(5)
    /// Each wait is scaled by a random factor from this range, so many clients do not retry in step.
    var jitter: ClosedRange<Double> = 0.95...1.05
    /// Give up (rethrowing the last error) once this much time has passed; nil retries forever.
    var maximumTotalDuration: Duration? = nil

    /// The wait before retry number `attempt` (0-based), without jitter.
    func delay(afterAttempt attempt: Int) -> Duration {
        var delay = initialDelay
        for _ in 0..<attempt {
            delay = delay * multiplier
            if delay >= maximumDelay { return maximumDelay }
        }
        return min(delay, maximumDelay)
    }
}

/// Runs `operation`, retrying while it fails with a connection loss (`PostgresError.isConnectionLost`)
/// so that a database restart delays the engine instead of failing workflows. Other errors, and
/// cancellation of the calling task, end the retries at once; so does the task's
/// `ConnectionRetryDeadline`, once it has passed.
func retryingOnConnectionLoss<T>(
    policy: PostgresRetryPolicy = PostgresRetryPolicy(),
    isolation: isolated (any Actor)? = #isolation,
    _ operation: () async throws -> T
) async throws -> T {
    let clock = ContinuousClock()
    let start = clock.now
    var attempt = 0
    while true {
        do {
            return try await operation()
        } catch let error as PostgresError where error.isConnectionLost {
            var delay = policy.delay(afterAttempt: attempt) * Double.random(in: policy.jitter)
            if let limit = policy.maximumTotalDuration {
                let remaining = limit - (clock.now - start)
                if remaining <= .zero { throw error }
                delay = min(delay, remaining)
            }
            guard let allowed = ConnectionRetryDeadline.delay(delay) else { throw error }
            delay = allowed
            attempt += 1
            try await Task.sleep(for: delay)
        }
    }
}
