import Dispatch
import Synchronization

/// Wakes tasks waiting for something to change in the system database (a message, an event, a
/// workflow's completion) as soon as this process writes it, so waits are not busy polls.
///
/// A waiter takes a ticket *before* checking the database and waits on it after; a signal that
/// arrives in between is kept, so no wake-up is lost.
///
/// The waits' timeouts share one dispatch timer armed for the earliest (a heap of deadlines), so a
/// wait costs no timer task of its own: a `Task.sleep` per wait was a task to start and cancel and
/// a timer to register, two or three thread wake-ups for every `result()` and queue poll.
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
        /// The timer; touched only with the lock held.
        var timer: any DispatchSourceTimer
        /// Timeouts (uptime nanoseconds) by ticket ID; entries of waits that ended stay until
        /// popped or compacted away.
        var timeouts = DeadlineHeap()
        /// The tickets whose timeout is still pending, by ID.
        var timed: [UInt64: Ticket] = [:]
        /// The deadline the timer is armed for, if any.
        var armedFor: Int64?

        /// Arms the timer for `deadline`. Called with the lock held, so the armings of two threads
        /// cannot cross and leave the timer set later than the earliest timeout.
        mutating func arm(for deadline: Int64) {
            armedFor = deadline
            timer.schedule(deadline: DispatchTime(uptimeNanoseconds: UInt64(max(deadline, 1))), leeway: .milliseconds(1))
        }
    }

    private let state: Mutex<State>

    init() {
        state = Mutex(State(timer: DispatchSource.makeTimerSource(queue: DispatchQueue(label: "dbos.wakeup-timeouts"))))
        state.withLock { state in
            state.timer.setEventHandler { [weak self] in self?.fireDueTimeouts() }
            state.timer.activate()
        }
    }

    deinit { state.withLock { $0.timer.cancel() } }

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
        let deadline = Self.uptimeNanoseconds(after: timeout)
        state.withLock { state in
            guard state.waiters[ticket.key]?[ticket.id] != nil else { return }
            state.timeouts.push(DeadlineHeap.Entry(deadline: deadline, id: ticket.id))
            state.timed[ticket.id] = ticket
            if state.armedFor.map({ deadline < $0 }) ?? true { state.arm(for: deadline) }
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
        state.withLock { state in
            state.waiters[ticket.key]?[ticket.id] = nil
            if state.waiters[ticket.key]?.isEmpty == true { state.waiters[ticket.key] = nil }
            state.timed[ticket.id] = nil
            // Drop the entries of ended waits once they are most of the heap.
            if state.timeouts.count > 64, state.timeouts.count > 2 * state.timed.count {
                let timed = state.timed
                state.timeouts.keep { timed[$0.id] != nil }
            }
        }
    }

    /// How many waits have a pending timeout, and how many heap entries they take (for tests).
    var timeoutCounts: (pending: Int, entries: Int) { state.withLock { ($0.timed.count, $0.timeouts.count) } }

    /// The timer's handler: fires every ticket whose timeout has come and arms for the next.
    private func fireDueTimeouts() {
        let now = Int64(clamping: DispatchTime.now().uptimeNanoseconds)
        let due = state.withLock { state -> [Ticket] in
            var due: [Ticket] = []
            while let first = state.timeouts.first, first.deadline <= now {
                state.timeouts.popFirst()
                if let ticket = state.timed.removeValue(forKey: first.id) { due.append(ticket) }
            }
            state.armedFor = nil
            if let next = state.timeouts.first?.deadline { state.arm(for: next) }
            return due
        }
        for ticket in due { fire(ticket) }
    }

    /// The uptime, in nanoseconds, `duration` from now (clamped, for durations of centuries).
    private static func uptimeNanoseconds(after duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let now = Int64(clamping: DispatchTime.now().uptimeNanoseconds)
        let (wholeSeconds, overflow) = max(seconds, 0).multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return .max }
        let (offset, overflowAgain) = wholeSeconds.addingReportingOverflow(max(attoseconds, 0) / 1_000_000_000)
        guard !overflowAgain else { return .max }
        let (deadline, overflowOnceMore) = now.addingReportingOverflow(offset)
        return overflowOnceMore ? .max : deadline
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
