@testable import DBOS
import DBOSTestSupport
import Foundation
import Synchronization
import Testing

/// `WorkflowThreads.withWakeupsDeferred`: a job queued inside the body is not started by an idle
/// thread before the body returns (the outermost body, when nested), and is started after it.
@Suite struct WakeupDeferralTests {
    /// A workflow executor of one thread, started and idle.
    private func idleThread() async -> WorkflowThreads {
        let threads = WorkflowThreads(threadCount: 1, name: "test-deferral")
        await Task(executorPreference: threads) {}.value
        #expect(await eventually { threads.idleThreadCount == 1 })
        return threads
    }

    /// Queues a job that records that it ran, from `body`'s thread, then gives an idle thread
    /// 200 ms to start it before `body` returns; returns whether it started within them, and
    /// the job's task.
    private static func queueAndWait(on threads: WorkflowThreads, _ ran: Flag) -> (startedMeanwhile: Bool, task: Task<Void, Never>) {
        let task = Task(executorPreference: threads) { ran.set() }
        let deadline = Date().addingTimeInterval(0.2)
        while !ran.isSet, Date() < deadline { usleep(1_000) }
        return (ran.isSet, task)
    }

    @Test func withoutDeferralAnIdleThreadStartsTheJobAtOnce() async throws {
        let threads = await idleThread()
        defer { threads.stop() }
        let ran = Flag()
        let (startedMeanwhile, task) = try await runOnOwnThread { Self.queueAndWait(on: threads, ran) }
        #expect(startedMeanwhile)
        await task.value
    }

    @Test func aJobQueuedWhileWakeupsAreDeferredStartsOnlyAfterTheBody() async throws {
        let threads = await idleThread()
        defer { threads.stop() }
        let ran = Flag()
        let (startedMeanwhile, task) = try await runOnOwnThread {
            WorkflowThreads.withWakeupsDeferred { Self.queueAndWait(on: threads, ran) }
        }
        #expect(!startedMeanwhile, "an idle thread was woken inside the body")
        await task.value
        #expect(ran.isSet)
    }

    @Test func nestedDeferralsWakeAtTheEndOfTheOutermost() async throws {
        let threads = await idleThread()
        defer { threads.stop() }
        let ran = Flag()
        let (startedMeanwhile, task) = try await runOnOwnThread {
            WorkflowThreads.withWakeupsDeferred { () -> (Bool, Task<Void, Never>) in
                let task = WorkflowThreads.withWakeupsDeferred { Task(executorPreference: threads) { ran.set() } }
                let deadline = Date().addingTimeInterval(0.2)
                while !ran.isSet, Date() < deadline { usleep(1_000) }
                return (ran.isSet, task)
            }
        }
        #expect(!startedMeanwhile, "the inner body's end woke a thread while the outer one ran")
        await task.value
        #expect(ran.isSet)
    }

    @Test(.timeLimit(.minutes(1))) func aThrowingBodyStillWakesTheThreadForItsJobs() async throws {
        struct Refused: Error {}
        let threads = await idleThread()
        defer { threads.stop() }
        let ran = Flag()
        let task = try await runOnOwnThread { () -> Task<Void, Never>? in
            var task: Task<Void, Never>?
            do {
                try WorkflowThreads.withWakeupsDeferred { () throws(Refused) in
                    task = Task(executorPreference: threads) { ran.set() }
                    throw Refused()
                }
            } catch {}
            return task
        }
        await task?.value
        #expect(ran.isSet)
    }
}

/// A flag set from one thread and read from others.
private final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}
