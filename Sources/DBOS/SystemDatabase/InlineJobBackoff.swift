/// Decides whether a database job may run inline on its caller's (workflow) thread, from how
/// recent jobs went.
///
/// - A job that took longer than `slowJob` was probably slowed by something that may last (a lock
///   held by another process or transaction, a slow fsync, a server under load): after one such
///   job the connection's next `handOffsAfterSlowJob` jobs go through its own thread, where waiting
///   holds up no workflow, and then one is tried inline again (if that one is slow too, the count
///   starts over). On PostgreSQL each connection counts for itself; a server farther away than
///   `slowJob` per round trip thus gets one inline job in 65. And never do all workflow threads
///   block at once (`WorkflowThreads.reserveInlineSlot`).
/// - Contention (SQLite: callers queued while an inline job ran, or a group-commit batch of
///   several jobs): other tasks are writing too (an enqueue from outside a workflow, say), and the
///   connection's thread groups their writes into one commit where inline jobs would commit one by
///   one. (A PostgreSQL connection is lent to one task at a time, so it sees no contention.)
///
/// After contention, the next `handOffsAfterContention` jobs go through the thread (fewer: contention
/// that lasts keeps resetting the count, and one overlap of two jobs, e.g. a run's outcome and the
/// next run's start, should not cost a sequential caller many hand-offs). Used under the
/// executor's lock (SQLiteExecutor, PostgresOwnerThread). Workflow work waiting for a thread also
/// sends jobs to the connection's thread (`WorkflowThreads.reserveInlineSlot`).
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
