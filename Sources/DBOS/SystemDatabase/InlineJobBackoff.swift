/// Decides whether a database job may run inline on its caller's (workflow) thread, from how
/// recent jobs went.
///
/// - A job that took longer than `slowJob` was probably slowed by something that may last (a lock
///   held by another process or transaction, a slow fsync, a server under load): a workflow
///   thread is blocked that long at most once, then jobs go through the connection's own thread,
///   where waiting holds up no workflow.
/// - Contention (callers queued while an inline job ran, or a group-commit batch of several
///   jobs): other tasks are writing too (an enqueue from outside a workflow, say), and the
///   connection's thread groups their writes into one commit where inline jobs would commit one
///   by one.
///
/// After a slow job, the next `handOffsAfterSlowJob` jobs that find the connection idle still go
/// through its thread; after contention, the next `handOffsAfterContention` (fewer: contention
/// that lasts keeps resetting the count, and one overlap of two jobs, e.g. a run's outcome and the
/// next run's start, should not cost a sequential caller many hand-offs). Used under the
/// executor's lock (SQLiteExecutor, PostgresOwnerThread). Workflow work waiting for a thread also
/// sends jobs to the connection's thread (`WorkflowThreads.mayRunBlockingJobInline`).
struct InlineJobBackoff {
    static let slowJob = Duration.milliseconds(2)
    static let handOffsAfterSlowJob = 64
    static let handOffsAfterContention = 8

    private var handOffsLeft = 0

    /// True if the next job may run inline; counts the job as handed off otherwise.
    mutating func allowsInline() -> Bool {
        guard handOffsLeft == 0 else {
            handOffsLeft -= 1
            return false
        }
        return true
    }

    /// Notes how long an inline job took.
    mutating func record(_ duration: Duration) {
        if duration > Self.slowJob { handOffsLeft = Self.handOffsAfterSlowJob }
    }

    /// Notes that callers had to queue behind another job.
    mutating func recordContention() {
        handOffsLeft = max(handOffsLeft, Self.handOffsAfterContention)
    }
}
