@testable import DBOS
import DBOSTestSupport
import Foundation
import Testing

/// The timeouts of `WakeupRegistry` waits share one timer: every wait still ends by its own
/// timeout, a signal still ends it at once, and ended waits do not pile up in the timer's heap.
@Suite(.timeLimit(.minutes(1)))
struct WakeupTimeoutTests {
    @Test func eachWaitEndsByItsOwnTimeoutWhateverOrderTheyStartedIn() async throws {
        let registry = WakeupRegistry()
        let clock = ContinuousClock()
        let start = clock.now
        // The long wait arms the timer first; the shorter ones must re-arm it earlier.
        let timeouts: [Duration] = [.seconds(3), .milliseconds(900), .milliseconds(300)]
        let ended = try await withThrowingTaskGroup(of: (Duration, Duration).self) { group in
            for timeout in timeouts {
                group.addTask {
                    let ticket = registry.ticket(for: "key-\(timeout)")
                    await registry.wait(ticket, timeout: timeout)
                    return (timeout, clock.now - start)
                }
            }
            var ended: [(Duration, Duration)] = []
            for try await result in group { ended.append(result) }
            return ended
        }
        #expect(ended.map(\.0) == [.milliseconds(300), .milliseconds(900), .seconds(3)], "ended out of order")
        for (timeout, elapsed) in ended {
            #expect(elapsed >= timeout, "a wait of \(timeout) ended after \(elapsed)")
        }
        #expect(registry.timeoutCounts.pending == 0)
    }

    @Test func aSignalEndsAWaitOfAnyLengthAndItsTimeoutIsForgotten() async throws {
        let registry = WakeupRegistry()
        for timeout in [Duration.seconds(3600), .seconds(Int64.max), .zero] {
            let ticket = registry.ticket(for: "key")
            let waiter = Task { await registry.wait(ticket, timeout: timeout) }
            if timeout != .zero {
                #expect(await eventually { registry.timeoutCounts.pending == 1 })
                registry.signal("key")
            }
            await waiter.value
            #expect(registry.timeoutCounts.pending == 0, "timeout \(timeout)")
        }
    }

    @Test func endedWaitsDoNotPileUpInTheTimersHeap() async throws {
        let registry = WakeupRegistry()
        for round in 0..<500 {
            let ticket = registry.ticket(for: "key")
            registry.signal("key")
            await registry.wait(ticket, timeout: .seconds(3600))
            let counts = registry.timeoutCounts
            #expect(counts.pending == 0)
            #expect(counts.entries <= 65, "round \(round): \(counts.entries) entries for ended waits")
        }
        // A cancelled wait ends at once and is forgotten too.
        let ticket = registry.ticket(for: "other")
        let waiter = Task { await registry.wait(ticket, timeout: .seconds(3600)) }
        #expect(await eventually { registry.timeoutCounts.pending == 1 })
        waiter.cancel()
        await waiter.value
        #expect(registry.timeoutCounts.pending == 0)
    }
}
