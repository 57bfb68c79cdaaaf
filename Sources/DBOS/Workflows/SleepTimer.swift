import Dispatch
import Foundation
import Synchronization

/// One timer for every durable sleep of this process: a heap of wake-up times and a single
/// dispatch timer armed for the earliest.
///
/// `Task.sleep` costs each sleeper a task of its own, a dispatch timer source and its call frames,
/// kept for as long as it sleeps; a run asleep here holds one heap entry and one continuation.
final class SleepTimer: Sendable {
    private struct Sleeper {
        var continuation: CheckedContinuation<Void, any Error>?
        /// Set when the task was cancelled before its continuation was registered.
        var cancelled = false
    }

    private struct State {
        /// The one timer; touched only with the lock held.
        var source: any DispatchSourceTimer
        var sleepers: [UInt64: Sleeper] = [:]
        /// Wake-up times (epoch milliseconds) by sleeper.
        var heap = DeadlineHeap()
        var nextID: UInt64 = 0
        /// The wake-up time the dispatch timer is armed for, if any.
        var armedFor: EpochMilliseconds?

        /// Rebuilds the heap from the live sleepers once most of its entries belong to sleepers that
        /// were cancelled, so a burst of cancelled long sleeps does not hold memory until they expire.
        mutating func compactIfMostlyStale() {
            guard heap.count > 64, heap.count > 2 * sleepers.count else { return }
            let sleepers = sleepers
            heap.keep { sleepers[$0.id] != nil }
        }
    }

    private let state: Mutex<State>

    init() {
        state = Mutex(State(source: DispatchSource.makeTimerSource(queue: DispatchQueue(label: "dbos.sleep-timer"))))
        state.withLock { state in
            state.source.setEventHandler { [weak self] in self?.wakeDueSleepers() }
            state.source.activate()
        }
    }

    deinit { state.withLock { $0.source.cancel() } }

    /// How many sleepers are registered (for tests).
    var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    /// Suspends the calling task until the wall clock reaches `wakeUp` (epoch milliseconds).
    /// Throws `CancellationError` as soon as the task is cancelled, and at once if it already was.
    func sleep(until wakeUp: EpochMilliseconds) async throws {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            state.sleepers[state.nextID] = Sleeper()
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let cancelled = state.withLock { state -> Bool in
                    if state.sleepers[id]?.cancelled == true {
                        state.sleepers[id] = nil
                        return true
                    }
                    state.sleepers[id]?.continuation = continuation
                    state.heap.push(DeadlineHeap.Entry(deadline: wakeUp, id: id))
                    if state.armedFor.map({ wakeUp < $0 }) ?? true { arm(for: wakeUp, in: &state) }
                    return false
                }
                if cancelled { continuation.resume(throwing: CancellationError()) }
            }
        } onCancel: {
            let continuation = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                guard let sleeper = state.sleepers[id] else { return nil }
                guard let continuation = sleeper.continuation else {
                    state.sleepers[id]?.cancelled = true
                    return nil
                }
                state.sleepers[id] = nil
                state.compactIfMostlyStale()
                return continuation
            }
            continuation?.resume(throwing: CancellationError())
        }
    }

    /// The timer's handler: resumes every sleeper whose time has come and arms for the next.
    private func wakeDueSleepers() {
        let now = Date().epochMilliseconds
        let due = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            var due: [CheckedContinuation<Void, any Error>] = []
            while let first = state.heap.first, first.deadline <= now {
                state.heap.popFirst()
                if let continuation = state.sleepers.removeValue(forKey: first.id)?.continuation {
                    due.append(continuation)
                }
            }
            state.armedFor = nil
            if let next = state.heap.first?.deadline { arm(for: next, in: &state) }
            return due
        }
        for continuation in due { continuation.resume() }
    }

    /// Arms the dispatch timer for `wakeUp`. Called with the lock held, so the armings of two
    /// threads cannot cross and leave the timer set later than the earliest sleeper.
    private func arm(for wakeUp: EpochMilliseconds, in state: inout State) {
        state.armedFor = wakeUp
        let wait = max(0, wakeUp - Date().epochMilliseconds)
        state.source.schedule(deadline: .now() + .milliseconds(Int(clamping: wait)), leeway: .milliseconds(1))
    }
}
