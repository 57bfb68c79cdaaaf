import Foundation

/// Milliseconds since the Unix epoch: how the system database stores every instant.
typealias EpochMilliseconds = Int64

extension Date {
    /// This instant in epoch milliseconds.
    var epochMilliseconds: EpochMilliseconds { EpochMilliseconds((timeIntervalSince1970 * 1000).rounded()) }

    init(epochMilliseconds: EpochMilliseconds) {
        self.init(timeIntervalSince1970: Double(epochMilliseconds) / 1000)
    }
}

/// The lifecycle states of a workflow, exactly as DBOS stores them in `workflow_status.status`.
public enum WorkflowState: String, Sendable, Codable, CaseIterable {
    /// Running, or ready to run on its executor.
    case pending = "PENDING"
    /// Waiting in a queue for a worker.
    case enqueued = "ENQUEUED"
    /// Waiting for its delayed start time.
    case delayed = "DELAYED"
    /// Finished with an output.
    case success = "SUCCESS"
    /// Finished with an error.
    case error = "ERROR"
    /// Cancelled by a call or by its timeout.
    case cancelled = "CANCELLED"
    /// Abandoned after too many recovery attempts.
    case maxRecoveryAttemptsExceeded = "MAX_RECOVERY_ATTEMPTS_EXCEEDED"

    /// Whether the workflow can no longer change by itself.
    public var isTerminal: Bool {
        switch self {
        case .success, .error, .cancelled, .maxRecoveryAttemptsExceeded: true
        case .pending, .enqueued, .delayed: false
        }
    }
}

/// One row of `workflow_status`, as the engine reads it. Payloads stay serialized.
struct WorkflowRecord: Sendable {
    var workflowID: String
    var state: WorkflowState
    var name: String
    var inputs: String?
    var output: String?
    var error: String?
    var executorID: String?
    var applicationVersion: String?
    var queueName: String?
    var createdAt: EpochMilliseconds
    var updatedAt: EpochMilliseconds
    var recoveryAttempts: Int
    var timeoutMilliseconds: Int64?
    var deadline: EpochMilliseconds?
    var parentWorkflowID: String?
    var serialization: String?
    var startedAt: EpochMilliseconds?
    var completedAt: EpochMilliseconds?
    var forkedFrom: String?
    var priority: Int = 0
    var deduplicationID: String?
    var partitionKey: String?
    var delayUntil: EpochMilliseconds?
    var attributes: String?
    /// DBOS's `owner_xid`: who inserted (or last claimed) the row.
    var ownerID: String?
}

/// What to insert when a workflow starts.
struct WorkflowInsert: Sendable {
    var workflowID: String
    var state: WorkflowState
    var name: String
    var inputs: String
    var executorID: String
    var applicationVersion: String?
    var queueName: String?
    var timeoutMilliseconds: Int64?
    var deadline: EpochMilliseconds?
    var parentWorkflowID: String?
    var priority: Int = 0
    var deduplicationID: String?
    var partitionKey: String?
    var delayUntil: EpochMilliseconds?
    var attributes: String?
    /// A token unique to this insert, so a retried insert recognises its own row.
    var ownerID: String = UUID().uuidString
    var now: EpochMilliseconds
    /// For a child workflow: the parent's operation that records the child, written in the same transaction.
    var parentOperation: OperationRecord?
    /// For a run enqueued (not delayed, no deduplication ID, no parent) by a process that serves the
    /// queue and holds a free slot of it: the run starts at once, PENDING and this executor's as if
    /// its worker had claimed it (`WorkflowInsertOutcome.claimed`), unless an older run waits on
    /// the queue, which then keeps its turn and the new run is ENQUEUED like any other.
    var claimsWhenQueueIdle = false
}

/// The result of inserting a workflow row.
enum WorkflowInsertOutcome: Sendable {
    /// The row is new: the caller owns it and runs the workflow (a queued run: it waits, ENQUEUED or
    /// DELAYED, for the queue's workers).
    case inserted
    /// The row is new, enqueued and claimed at once by the inserting executor (see
    /// `WorkflowInsert.claimsWhenQueueIdle`): PENDING, `recovery_attempts` 1, started now, its
    /// deadline the insert's; the caller runs it.
    case claimed
    /// A row with this ID already existed; it is returned as stored.
    case existing(WorkflowRecord)
    /// Another run holds the deduplication ID on this queue; nothing was inserted.
    case deduplicated(existingWorkflowID: String)
}

/// What a worker asks of one queue when it looks for runs to start.
struct DequeueRequest: Sendable {
    var queue: WorkflowQueue
    var executorID: String
    var applicationVersion: String
    /// Only runs of these workflows are claimed: this process can execute nothing else.
    var workflowNames: [String]
    /// Runs of this queue this process is executing now, by partition key ("" for none).
    var localRunning: [String: Int]
    /// When set, called once the queue has runs to claim, right before the claim, for the count
    /// to use instead of `localRunning` (the caller may hold the free slots from then on).
    var localRunningAtClaim: (@Sendable () -> [String: Int])? = nil
    /// When set, only runs enqueued by this executor ID, or with one of these IDs, are claimed.
    var onlyEnqueuedBy: (executorID: String, workflowIDs: [String])?
    var now: EpochMilliseconds
}

/// A fork: a new run that reuses the original's checkpoints before `startStep`.
struct ForkRequest: Sendable {
    var originalID: String
    var forkedID: String
    var startStep: Int
    var applicationVersion: String?
    var queueName: String
    /// The fork's partition of `queueName`, when that queue is partitioned.
    var partitionKey: String? = nil
    var now: EpochMilliseconds
}

/// One value of a stream.
struct StreamEntry: Sendable, Equatable {
    var offset: Int
    var value: String
}

/// One row of `operation_outputs`: a step's checkpoint.
struct OperationRecord: Sendable, Equatable {
    var workflowID: String
    var functionID: Int
    var functionName: String
    var output: String?
    var error: String?
    var childWorkflowID: String?
    var startedAt: EpochMilliseconds?
    var completedAt: EpochMilliseconds?
}

/// A message to insert into `notifications`.
struct MessageInsert: Sendable {
    var destinationID: String
    var topic: String
    var message: String
    var messageID: String
    var now: EpochMilliseconds
}

/// What a recovery claim found.
enum RecoveryClaim: Sendable {
    /// The workflow may run; it now counts this many attempts.
    case claimed(attempts: Int)
    /// The attempts exceeded the limit: the row is now MAX_RECOVERY_ATTEMPTS_EXCEEDED.
    case exceeded(attempts: Int)
    /// The row is no longer PENDING (finished, cancelled, or claimed by someone else).
    case notPending
}

/// Filters for listing workflows; `nil` fields do not filter.
public struct WorkflowFilter: Sendable {
    /// Only workflows in one of these states.
    public var states: [WorkflowState]?
    /// Only workflows with this registered name.
    public var name: String?
    /// Only workflows on this queue.
    public var queueName: String?
    /// Only workflows created at or after this instant.
    public var createdAfter: Date?
    /// Only workflows created at or before this instant.
    public var createdBefore: Date?
    /// Only workflows whose ID starts with this prefix.
    public var workflowIDPrefix: String?
    /// Only children of this workflow.
    public var parentWorkflowID: String?
    /// Only the workflows with one of these IDs.
    public var workflowIDs: [String]?
    /// Only workflows last run (or to be run) by one of these executors.
    public var executorIDs: [String]?
    /// Only workflows of this application version.
    public var applicationVersion: String?
    /// Only forks of this workflow.
    public var forkedFrom: String?
    /// Only workflows on a queue (true), or only those on none (false). The engine's internal queue
    /// counts: resumed, forked and scheduled runs wait on it.
    public var queuesOnly: Bool?
    /// Only the workflow enqueued with this deduplication ID (while it holds it: until it ends).
    public var deduplicationID: String?
    /// Only workflows that were forked (true) or never were (false).
    public var wasForkedFrom: Bool?
    /// Only children (true) or only top-level workflows (false).
    public var hasParent: Bool?
    /// Only workflows that finished at or after this instant.
    public var completedAfter: Date?
    /// Only workflows that finished at or before this instant.
    public var completedBefore: Date?
    /// At most this many rows.
    public var limit: Int?
    /// Skip this many rows first (for paging, with `limit`).
    public var offset: Int?
    /// Newest first (the default) or oldest first.
    public var newestFirst: Bool

    /// A filter; every criterion is optional.
    public init(
        states: [WorkflowState]? = nil, name: String? = nil, queueName: String? = nil,
        createdAfter: Date? = nil, createdBefore: Date? = nil, workflowIDPrefix: String? = nil,
        parentWorkflowID: String? = nil, workflowIDs: [String]? = nil, executorIDs: [String]? = nil,
        applicationVersion: String? = nil, forkedFrom: String? = nil, completedAfter: Date? = nil,
        completedBefore: Date? = nil, queuesOnly: Bool? = nil, deduplicationID: String? = nil,
        wasForkedFrom: Bool? = nil, hasParent: Bool? = nil, limit: Int? = nil, offset: Int? = nil,
        newestFirst: Bool = true
    ) {
        self.states = states
        self.name = name
        self.queueName = queueName
        self.createdAfter = createdAfter
        self.createdBefore = createdBefore
        self.workflowIDPrefix = workflowIDPrefix
        self.parentWorkflowID = parentWorkflowID
        self.workflowIDs = workflowIDs
        self.executorIDs = executorIDs
        self.applicationVersion = applicationVersion
        self.forkedFrom = forkedFrom
        self.completedAfter = completedAfter
        self.completedBefore = completedBefore
        self.queuesOnly = queuesOnly
        self.deduplicationID = deduplicationID
        self.wasForkedFrom = wasForkedFrom
        self.hasParent = hasParent
        self.limit = limit
        self.offset = offset
        self.newestFirst = newestFirst
    }
}

/// The one protocol every system-database backend implements. The engine speaks only to it;
/// SQL lives in the backends.
protocol SystemDatabase: Sendable {
    /// Creates or upgrades the schema. Safe to call from several processes at once.
    func migrate() async throws

    /// Closes every connection; later calls fail with `SystemDatabaseError.closed`.
    func close() async

    /// The executor that workflow code prefers: threads of the database's own on which a
    /// statement may run without a hand-off to its connection's thread (`WorkflowThreads`).
    var workflowExecutor: any TaskExecutor { get }

    /// Starts pushing changes made by any process to `handler`; returns false when the database
    /// cannot push them (then waiters poll). Without `queues`, enqueues are not pushed: a process
    /// that runs no queue (a client) is then not woken by every enqueue of every process.
    func startNotifications(
        queues: Bool, _ handler: @escaping @Sendable (DatabaseNotification) -> Void
    ) async throws -> Bool

    /// Makes sure this process is notified when `workflowID` finishes in any process, from now
    /// until `stopAwaitingCompletion(of:)` (a completion notifies only processes that wait for it).
    func awaitCompletion(of workflowID: String) async

    /// Ends one `awaitCompletion(of:)`.
    func stopAwaitingCompletion(of workflowID: String)

    /// Inserts a workflow row, or returns the existing row with that ID (idempotent start).
    /// A child's `parentOperation` is written in the same transaction as a new row.
    func insertWorkflow(_ insert: WorkflowInsert) async throws -> WorkflowInsertOutcome

    /// Reads one workflow row.
    func workflow(id: String) async throws -> WorkflowRecord?

    /// The IDs of the workflows created within `ranges` (each inclusive) that were cancelled or gave
    /// up after too many recoveries. One index range each, however many workflows are running: the
    /// cancellation watchdog asks this every second.
    func stoppedWorkflowIDs(createdIn ranges: [ClosedRange<EpochMilliseconds>]) async throws -> [String]

    /// Every checkpoint of a workflow, by function ID.
    func operations(workflowID: String) async throws -> [OperationRecord]

    /// Every checkpoint of each of several workflows, by workflow ID (a run without any has no
    /// entry): one read for all the runs a queue claimed at once.
    func operations(workflowIDs: [String]) async throws -> [String: [OperationRecord]]

    /// One checkpoint, if recorded.
    func operation(workflowID: String, functionID: Int) async throws -> OperationRecord?

    /// Records a checkpoint unless one exists at that slot. Returns the stored checkpoint when one
    /// already existed (so the caller can tell a lost acknowledgement from a conflict) and the
    /// workflow's state as of the commit.
    func recordOperation(_ record: OperationRecord) async throws -> (existing: OperationRecord?, state: WorkflowState?)

    /// Writes a finished workflow's outcome if it is still PENDING; returns whether it was.
    ///
    /// With `checkpoint` (its last step's, not written yet), both are written in one commit, and
    /// the outcome only if the checkpoint's slot was free: false when another checkpoint is there.
    ///
    /// While `mayLinger` holds (nobody in this process waits for the outcome; asked under the
    /// database's own lock, so a waiter that makes it false and then calls `expediteCompletions()`
    /// cannot miss the outcome), the write may wait up to the database's outcome linger to share a
    /// commit with other outcomes; `expediteCompletions()` ends that wait.
    func completeWorkflow(
        id: String, state: WorkflowState, output: String?, error: String?, checkpoint: OperationRecord?,
        at now: EpochMilliseconds, mayLinger: @escaping @Sendable () -> Bool
    ) async throws -> Bool

    /// Writes the lingering outcomes now (someone began to wait for one), without waiting.
    func expediteCompletions()

    /// Writes the lingering outcomes now and every later one at once (shutdown).
    func stopLingering()

    /// Deletes workflows (and, if asked, all their descendants) with everything recorded for them:
    /// checkpoints, messages, events, stream values. Returns the IDs that existed.
    func deleteWorkflows(ids: [String], includeDescendants: Bool) async throws -> [String]

    /// Marks workflows (and, if asked, all their descendants) CANCELLED unless already finished.
    /// Returns the IDs that changed. `error` is stored as the cancellation reason when given.
    func cancelWorkflows(
        ids: [String], includeDescendants: Bool, error: String?, at now: EpochMilliseconds
    ) async throws -> [String]

    /// PENDING workflows of an executor and application version, oldest first.
    func pendingWorkflows(executorID: String, applicationVersion: String) async throws -> [WorkflowRecord]

    /// Counts one more recovery attempt for a PENDING workflow and dead-letters it past the limit.
    func claimForRecovery(
        id: String, executorID: String, maxAttempts: Int?, at now: EpochMilliseconds
    ) async throws -> RecoveryClaim

    /// Inserts a message and, from a workflow, its `DBOS.send` checkpoint, in one transaction.
    /// Returns false when a message with the same ID existed already.
    func sendMessage(_ message: MessageInsert, checkpoint: OperationRecord?) async throws -> Bool

    /// Consumes the oldest unconsumed message for (destination, topic) and records it as the
    /// checkpoint, in one transaction. Returns nil and records nothing when no message waits.
    func consumeMessage(
        destinationID: String, topic: String, checkpoint: OperationRecord
    ) async throws -> String?

    /// Upserts an event, writes its history row at slot `functionID` and records the checkpoint (none
    /// for an event set in a step's body, which belongs to the step's slot), in one transaction.
    func setEvent(workflowID: String, key: String, value: String, functionID: Int, checkpoint: OperationRecord?) async throws

    /// The latest value of an event.
    func event(workflowID: String, key: String) async throws -> String?

    /// Workflows matching a filter.
    func listWorkflows(_ filter: WorkflowFilter) async throws -> [WorkflowRecord]

    // MARK: Queues

    /// Records a queue's configuration in the `queues` table (insert or update).
    func upsertQueue(_ queue: WorkflowQueue, at now: EpochMilliseconds) async throws

    /// Claims runs of a queue for this executor within the queue's limits, in one transaction:
    /// each claimed row moves from ENQUEUED to PENDING and is returned. DELAYED runs whose time
    /// has come are promoted to ENQUEUED first.
    func dequeue(_ request: DequeueRequest) async throws -> [WorkflowRecord]

    /// Puts this executor's PENDING queued runs back to ENQUEUED so the queue starts them again
    /// within its limits (recovery). Returns their IDs.
    func requeuePendingWorkflows(
        executorID: String, applicationVersion: String, excluding runningIDs: [String], at now: EpochMilliseconds
    ) async throws -> [String]

    /// Moves the start of a DELAYED run to `until`. Returns the run's state (the run is changed only
    /// when it was DELAYED) and its queue, or nil when no run has this ID.
    func setDelay(id: String, until: EpochMilliseconds, at now: EpochMilliseconds) async throws
        -> (state: WorkflowState, queueName: String?)?

    /// Sets a PENDING run to MAX_RECOVERY_ATTEMPTS_EXCEEDED.
    func deadLetter(id: String, at now: EpochMilliseconds) async throws

    /// Puts a cancelled, failed or abandoned run back on a queue to continue from its checkpoints;
    /// a cancelled run with the descendants cancelled with it (the same `completed_at`). A failed run's last failed
    /// checkpoint is removed so that step runs again. The runs count as enqueued by `executorID`
    /// (a one-off process that claims only its own runs can execute them). Returns the queues the
    /// runs went back on, or nil when the run could not be resumed.
    func resumeWorkflow(id: String, queueName: String, executorID: String, at now: EpochMilliseconds) async throws -> [String]?

    /// Creates the forked run and copies the original's checkpoints, events and stream values
    /// before `startStep`, in one transaction.
    func forkWorkflow(_ request: ForkRequest) async throws

    // MARK: Streams

    /// Appends a value to a stream (at the next offset), written at slot `functionID`, with its
    /// checkpoint (none for a value written in a step's body), in one transaction. Fails if the
    /// stream was closed.
    func writeStream(workflowID: String, key: String, value: String, functionID: Int, checkpoint: OperationRecord?) async throws

    /// The stream's values from `offset` on, in order; the close marker is included as a value.
    func readStream(workflowID: String, key: String, from offset: Int) async throws -> [StreamEntry]
}

/// Errors of the system database layer, with messages a person can act on.
public enum SystemDatabaseError: Error, CustomStringConvertible, Sendable {
    /// The URL is not one the engine understands.
    case invalidURL(String, reason: String)
    /// The database could not be opened or created.
    case cannotOpen(location: String, reason: String)
    /// The file is not a SQLite database, or it is damaged.
    case corrupted(location: String, reason: String)
    /// The schema was written by a newer version of dbos-swift.
    case schemaTooNew(found: Int, supported: Int)
    /// A statement failed.
    case queryFailed(operation: String, reason: String)
    /// The database was closed.
    case closed
    /// A stream was written after it was closed.
    case streamClosed(workflowID: String, key: String)

    public var description: String {
        switch self {
        case .invalidURL(let url, let reason):
            "invalid system database URL '\(url)': \(reason)"
        case .cannotOpen(let location, let reason):
            "cannot open system database \(location): \(reason)"
        case .corrupted(let location, let reason):
            "system database \(location) is not a valid SQLite database or is corrupted: \(reason)"
        case .schemaTooNew(let found, let supported):
            "system database schema version \(found) is newer than this dbos-swift supports (\(supported)); upgrade dbos-swift"
        case .queryFailed(let operation, let reason):
            "system database error while \(OneLineText.quoting(operation, limit: 300)): \(OneLineText.quoting(reason, limit: 2000))"
        case .closed:
            "the system database is closed"
        case .streamClosed(let workflowID, let key):
            "stream '\(key)' of workflow '\(workflowID)' is closed"
        }
    }
}
