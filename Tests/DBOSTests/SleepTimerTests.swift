@testable import DBOS
import DBOSTestSupport
import Foundation
import Synchronization
import Testing

/// How early sleepers woke, from any task.
private final class EarlyWakes: Sendable {
    let milliseconds = Mutex<[Int64]>([])
}

@Suite(.timeLimit(.minutes(2)))
struct SleepTimerTests {
    private static var now: Int64 { Date().epochMilliseconds }

    @Test func everySleeperWakesAndNoneBeforeItsTime() async throws {
        let timer = SleepTimer()
        // Registered in an order unrelated to their wake-up times, several due at the same instant.
        let start = Self.now
        let wakeUps = (0..<300).map { start + 50 + Int64(($0 * 37) % 400) }
        let early = EarlyWakes()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for wakeUp in wakeUps {
                group.addTask {
                    try await timer.sleep(until: wakeUp)
                    let woke = Self.now
                    if woke < wakeUp { early.milliseconds.withLock { $0.append(wakeUp - woke) } }
                }
            }
            try await group.waitForAll()
        }
        #expect(early.milliseconds.withLock { $0 }.isEmpty, "sleepers woke this many milliseconds early")
        #expect(timer.sleeperCount == 0)
    }

    @Test func anEarlierSleeperArrivingLaterIsNotHeldBehindALongOne() async throws {
        let timer = SleepTimer()
        let long = Task { try await timer.sleep(until: Self.now + 3_600_000) }
        #expect(await eventually { timer.sleeperCount == 1 })
        // The timer is now armed an hour ahead; this sleep must re-arm it.
        let wakeUp = Self.now + 100
        try await timer.sleep(until: wakeUp)
        #expect(Self.now >= wakeUp)
        #expect(timer.sleeperCount == 1)
        long.cancel()
        await #expect(throws: CancellationError.self) { try await long.value }
        #expect(timer.sleeperCount == 0)
    }

    @Test func cancellingASleeperEndsItsSleepWithCancellationError() async throws {
        let timer = SleepTimer()
        let sleepers = (0..<200).map { _ in Task { try await timer.sleep(until: Self.now + 3_600_000) } }
        #expect(await eventually { timer.sleeperCount == 200 })
        for sleeper in sleepers { sleeper.cancel() }
        for sleeper in sleepers {
            await #expect(throws: CancellationError.self) { try await sleeper.value }
        }
        #expect(timer.sleeperCount == 0)
        // After the cancelled entries are dropped from the heap, a new sleeper still wakes.
        let wakeUp = Self.now + 20
        try await timer.sleep(until: wakeUp)
        #expect(Self.now >= wakeUp)
    }

    @Test func aTaskCancelledBeforeItSleepsDoesNotSleep() async throws {
        let timer = SleepTimer()
        let gate = Counter()
        let sleeper = Task {
            while gate.count == 0 { await Task.yield() }
            try await timer.sleep(until: Self.now + 3_600_000)
        }
        sleeper.cancel()
        gate.increment()
        await #expect(throws: CancellationError.self) { try await sleeper.value }
        #expect(timer.sleeperCount == 0)
    }
}
