import Synchronization

/// Wakes tasks waiting for something to change in the system database (a message, an event, a
/// workflow's completion) as soon as this process writes it, so waits are not busy polls.
///
/// A waiter takes a ticket *before* checking the database and waits on it after; a signal that
/// arrives in between is kept, so no wake-up is lost.
final class WakeupRegistry: Sendable {
    /// A registered interest in one key.
    struct Ticket: Sendable {
        fileprivate let key: String
        fileprivate let id: UInt64
    }

    private struct Waiter {
        var continuation: CheckedContinuation<Void, Never>?
        var fired = false
    }

    private struct State {
        var waiters: [String: [UInt64: Waiter]] = [:]
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    /// Registers interest in `key`.
    func ticket(for key: String) -> Ticket {
        state.withLock { state in
            state.nextID += 1
            state.waiters[key, default: [:]][state.nextID] = Waiter()
            return Ticket(key: key, id: state.nextID)
        }
    }

    /// Waits until `key` is signalled after the ticket was taken, the timeout passes, or the task
    /// is cancelled; then forgets the ticket.
    func wait(_ ticket: Ticket, timeout: Duration) async {
        let timer = Task { [self] in
            try? await Task.sleep(for: timeout)
            fire(ticket)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    guard let waiter = state.waiters[ticket.key]?[ticket.id], !waiter.fired else { return true }
                    state.waiters[ticket.key]?[ticket.id]?.continuation = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            fire(ticket)
        }
        timer.cancel()
        state.withLock { state in
            state.waiters[ticket.key]?[ticket.id] = nil
            if state.waiters[ticket.key]?.isEmpty == true { state.waiters[ticket.key] = nil }
        }
    }

    /// Forgets a ticket that will not be waited on.
    func cancel(_ ticket: Ticket) {
        fire(ticket)
        state.withLock { state in
            state.waiters[ticket.key]?[ticket.id] = nil
            if state.waiters[ticket.key]?.isEmpty == true { state.waiters[ticket.key] = nil }
        }
    }

    /// Wakes every waiter of `key`.
    func signal(_ key: String) {
        let continuations = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard var waiters = state.waiters[key] else { return [] }
            var ready: [CheckedContinuation<Void, Never>] = []
            for (id, waiter) in waiters where !waiter.fired {
                if let continuation = waiter.continuation { ready.append(continuation) }
                waiters[id] = Waiter(continuation: nil, fired: true)
            }
            state.waiters[key] = waiters
            return ready
        }
        for continuation in continuations { continuation.resume() }
    }

    /// Wakes every waiter of every key (after a reconnect, or at shutdown).
    func signalAll() {
        let keys = state.withLock { Array($0.waiters.keys) }
        for key in keys { signal(key) }
    }

    private func fire(_ ticket: Ticket) {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiters[ticket.key]?[ticket.id], !waiter.fired else { return nil }
            state.waiters[ticket.key]?[ticket.id] = Waiter(continuation: nil, fired: true)
            return waiter.continuation
        }
        continuation?.resume()
    }

    /// Keys used by the engine.
    static func messageKey(workflowID: String, topic: String) -> String { "message::\(workflowID)::\(topic)" }
    static func eventKey(workflowID: String, key: String) -> String { "event::\(workflowID)::\(key)" }
    static func completionKey(workflowID: String) -> String { "completion::\(workflowID)" }
    static func queueKey(_ queueName: String) -> String { "queue::\(queueName)" }
    static func streamKey(workflowID: String, key: String) -> String { "stream::\(workflowID)::\(key)" }
}
