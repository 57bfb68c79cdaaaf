import Foundation

/// The engine's system database on any `SQLBackend`: every statement the engine runs, written
/// once for SQLite and PostgreSQL (their differences are in `SQLDialect` and the backends).
///
/// Writes that may be retried after a lost acknowledgement are written so that a retry finds
/// its own earlier effect instead of applying it twice (owner tokens on inserts and claims,
/// checkpoint checks before consuming a message or appending to a stream).
final class SQLSystemDatabase: SystemDatabase {
    let backend: any SQLBackend
    private let workflowThreads = WorkflowThreads(
        threadCount: WorkflowThreads.defaultThreadCount, name: "dbos-workflow")
    var workflowExecutor: any TaskExecutor { workflowThreads }
    private var dialect: SQLDialect { backend.dialect }

    /// The runs of one queue in a state, found through the index of runs in flight
    /// (`idx_workflow_status_in_flight_v2`, partial on `status IN ('ENQUEUED', 'PENDING')`).
    /// SQLite uses a partial index only when the statement repeats the index's condition word for
    /// word (it does not see that `status = 'ENQUEUED'` implies it) and otherwise reads the whole
    /// history of the table, every time; PostgreSQL proves the implication either way.
    private static func inFlight(on queueName: String, _ state: WorkflowState) -> SQL {
        "queue_name = \(queueName) AND status IN ('ENQUEUED', 'PENDING') AND status = '\(unescaped: state.rawValue)'"
    }

    /// Whether a run waits on the queue (ENQUEUED, matching `condition`), as a condition. Written as
    /// the first row in the order of the index of runs in flight rather than as EXISTS: PostgreSQL
    /// costs an EXISTS by how soon it expects a match, and a generic plan (a prepared statement's,
    /// after five runs), which cannot tell one queue from another, may then expect one in the first
    /// pages of the table and read the whole history when none is there. Taken in index order, the
    /// first row costs a scan of every matching row and a sort unless the index is used.
    private static func hasEnqueuedRun(on queueName: String, where condition: SQL? = nil) -> SQL {
        "(SELECT 1 FROM workflow_status WHERE \(inFlight(on: queueName, .enqueued))" + (condition.map { " AND " + $0 } ?? "")
            + " ORDER BY queue_name, status, priority, created_at LIMIT 1) IS NOT NULL"
    }

    /// Whether a delayed run of the queue is due at `now` (and matches `condition`), as a condition;
    /// in the order of the index of delayed runs, for the reason `hasEnqueuedRun` gives.
    private static func hasDueDelayedRun(on queueName: String, at now: EpochMilliseconds, where condition: SQL? = nil) -> SQL {
        "(SELECT 1 FROM workflow_status WHERE status = 'DELAYED' AND delay_until_epoch_ms <= \(now) AND queue_name = \(queueName)"
            + (condition.map { " AND " + $0 } ?? "") + " ORDER BY delay_until_epoch_ms LIMIT 1) IS NOT NULL"
    }

    /// What a step checkpoint found: the checkpoint stored before (nil when this one was written)
    /// and the run's state.
    typealias CheckpointOutcome = (existing: OperationRecord?, state: WorkflowState?)

    /// A finished run's outcome, as `completeWorkflow` writes it.
    struct Completion: Sendable {
        var id: String
        var state: WorkflowState
        var output: String?
        var error: String?
        /// The run's last step's checkpoint, written in the same commit; the outcome is written
        /// only if its slot was free.
        var checkpoint: OperationRecord?
        var now: EpochMilliseconds
    }

    /// Concurrent starts, checkpoints and completions of many workflows, grouped into shared
    /// statements on a backend that does not group commits itself (PostgreSQL; nil on SQLite,
    /// whose one writer thread already commits concurrent jobs together).
    private let batches: Batches?

    private struct Batches {
        let starts: WriteBatcher<WorkflowInsert, Bool>
        let checkpoints: WriteBatcher<OperationRecord, CheckpointOutcome>
        let completions: WriteBatcher<Completion, Bool>
    }

    /// `outcomeLinger`: how long `completeWorkflow(mayLinger:)` may hold an outcome to share a
    /// statement with others (PostgreSQL; on SQLite the backend's writer thread holds it instead,
    /// `SQLBackend.deferrableTransaction`, with the limit given to the backend).
    init(backend: any SQLBackend, outcomeLinger: Duration? = nil) {
        self.backend = backend
        guard !backend.groupsCommits, backend.dialect.writesInCommonTableExpressions else {
            batches = nil
            return
        }
        // A few batches of each kind in flight at once keep the pool's connections busy without
        // taking all of them: reads and other writes still find one.
        let size = 100
        let concurrent = 2
        batches = Batches(
            starts: WriteBatcher(maximumBatchSize: size, concurrentBatches: concurrent) { inserts in
                await Self.outcomes(of: inserts) { try await Self.insertNewWorkflows($0, backend: backend) }
            },
            checkpoints: WriteBatcher(maximumBatchSize: size, concurrentBatches: concurrent) { records in
                await Self.outcomes(of: records) { try await Self.recordOperations($0, backend: backend) }
            },
            completions: WriteBatcher(
                maximumBatchSize: size, concurrentBatches: concurrent, linger: outcomeLinger,
                flushExecutor: workflowThreads
            ) { completions in
                await Self.outcomes(of: completions) { try await Self.completeWorkflows($0, backend: backend) }
            })
    }

    /// The outcomes of `write` on all the items in one statement, or, if that fails as a whole, of
    /// `write` on each item alone: one workflow's bad row must not fail the others.
    static func outcomes<Item, Output>(
        of items: [Item], _ write: ([Item]) async throws -> [Output]
    ) async -> [Result<Output, any Error>] {
        if items.count > 1, let outputs = try? await write(items) { return outputs.map { .success($0) } }
        var outcomes: [Result<Output, any Error>] = []
        for item in items {
            do {
                outcomes.append(.success(try await write([item])[0]))
            } catch {
                outcomes.append(.failure(error))
            }
        }
        return outcomes
    }

    func migrate() async throws {
        try await backend.migrate()
    }

    func close() async {
        await backend.close()
        workflowThreads.stop()
    }

    func startNotifications(
        queues: Bool, _ handler: @escaping @Sendable (DatabaseNotification) -> Void
    ) async throws -> Bool {
        try await backend.startNotifications(queues: queues, handler)
    }

    func awaitCompletion(of workflowID: String) async {
        await backend.awaitCompletion(of: workflowID)
    }

    func stopAwaitingCompletion(of workflowID: String) {
        backend.stopAwaitingCompletion(of: workflowID)
    }

    // MARK: Rows

    /// The columns the engine reads, with inputs and outcomes taken from DBOS's separate
    /// `workflow_input`/`workflow_output` tables when a DBOS SDK wrote them there.
    private static let workflowSelect = workflowSelect(from: "workflow_status")

    /// `workflowSelect` reading `workflow_status` rows from `source`, a table or a CTE's name.
    private static func workflowSelect(from source: String) -> String {
        """
        SELECT ws.workflow_uuid, ws.status, ws.name, COALESCE(wi.inputs, ws.inputs) AS inputs,
            COALESCE(wo.output, ws.output) AS output, COALESCE(wo.error, ws.error) AS error, ws.executor_id,
            ws.application_version, ws.queue_name, ws.created_at, ws.updated_at, ws.recovery_attempts,
            ws.workflow_timeout_ms, ws.workflow_deadline_epoch_ms, ws.parent_workflow_id, ws.serialization,
            ws.started_at_epoch_ms, ws.completed_at, ws.forked_from, ws.priority, ws.deduplication_id,
            ws.queue_partition_key, ws.delay_until_epoch_ms, ws.attributes, ws.owner_xid
        FROM \(source) AS ws
            LEFT JOIN workflow_input AS wi ON wi.workflow_uuid = ws.workflow_uuid
            LEFT JOIN workflow_output AS wo ON wo.workflow_uuid = ws.workflow_uuid
        """
    }

    private static func workflowRecord(_ row: SQLRow) -> WorkflowRecord {
        WorkflowRecord(
            workflowID: row.string("workflow_uuid") ?? "",
            state: WorkflowState(rawValue: row.string("status") ?? "") ?? .pending,
            name: row.string("name") ?? "",
            inputs: row.string("inputs"),
            output: row.string("output"),
            error: row.string("error"),
            executorID: row.string("executor_id"),
            applicationVersion: row.string("application_version"),
            queueName: row.string("queue_name"),
            createdAt: row.int64("created_at") ?? 0,
            updatedAt: row.int64("updated_at") ?? 0,
            recoveryAttempts: row.int("recovery_attempts") ?? 0,
            timeoutMilliseconds: row.int64("workflow_timeout_ms"),
            deadline: row.int64("workflow_deadline_epoch_ms"),
            parentWorkflowID: row.string("parent_workflow_id"),
            serialization: row.string("serialization"),
            startedAt: row.int64("started_at_epoch_ms"),
            completedAt: row.int64("completed_at"),
            forkedFrom: row.string("forked_from"),
            priority: row.int("priority") ?? 0,
            deduplicationID: row.string("deduplication_id"),
            partitionKey: row.string("queue_partition_key"),
            delayUntil: row.int64("delay_until_epoch_ms"),
            attributes: row.string("attributes"),
            ownerID: row.string("owner_xid"))
    }

    private static func selectWorkflow(_ runner: any SQLStatementRunner, id: String) throws -> WorkflowRecord? {
        try runner.query("\(unescaped: workflowSelect) WHERE ws.workflow_uuid = \(id)").first.map(workflowRecord)
    }

    private static let operationColumns = """
        workflow_uuid, function_id, function_name, output, error, child_workflow_id, started_at_epoch_ms, completed_at_epoch_ms
        """

    private static func operationRecord(_ row: SQLRow) -> OperationRecord {
        OperationRecord(
            workflowID: row.string("workflow_uuid") ?? "",
            functionID: row.int("function_id") ?? 0,
            functionName: row.string("function_name") ?? "",
            output: row.string("output"),
            error: row.string("error"),
            childWorkflowID: row.string("child_workflow_id"),
            startedAt: row.int64("started_at_epoch_ms"),
            completedAt: row.int64("completed_at_epoch_ms"))
    }

    /// Inserts a checkpoint; with `ignoringExisting`, a row already at that slot is kept.
    private static func insertOperation(
        _ runner: any SQLStatementRunner, _ record: OperationRecord, ignoringExisting: Bool = false
    ) throws {
        let insert: SQL = """
            INSERT INTO operation_outputs (workflow_uuid, function_id, function_name, output, error, child_workflow_id,
                started_at_epoch_ms, completed_at_epoch_ms, serialization)
            VALUES (\(record.workflowID), \(record.functionID), \(record.functionName), \(record.output), \(record.error),
                \(record.childWorkflowID), \(record.startedAt), \(record.completedAt), \(PortableJSON.formatName))
            """
        try runner.execute(ignoringExisting ? insert + " ON CONFLICT (workflow_uuid, function_id) DO NOTHING" : insert)
    }

    /// Inserts a checkpoint unless its slot is taken or its run no longer exists; whether it did.
    private static func insertCheckpointIfRunExists(_ runner: any SQLStatementRunner, _ record: OperationRecord) throws -> Bool {
        try runner.execute("""
            INSERT INTO operation_outputs (workflow_uuid, function_id, function_name, output, error,
                child_workflow_id, started_at_epoch_ms, completed_at_epoch_ms, serialization)
            SELECT \(record.workflowID), \(record.functionID), \(record.functionName), \(record.output),
                \(record.error), \(record.childWorkflowID), \(record.startedAt), \(record.completedAt),
                \(PortableJSON.formatName)
            WHERE EXISTS (SELECT 1 FROM workflow_status WHERE workflow_uuid = \(record.workflowID))
            ON CONFLICT (workflow_uuid, function_id) DO NOTHING
            """) > 0
    }

    private static func selectOperation(_ runner: any SQLStatementRunner, workflowID: String, functionID: Int) throws -> OperationRecord? {
        try runner.query("""
            SELECT \(unescaped: operationColumns) FROM operation_outputs
            WHERE workflow_uuid = \(workflowID) AND function_id = \(functionID)
            """).first.map(operationRecord)
    }

    // MARK: Workflows

    private static let workflowStatusColumns = """
        workflow_uuid, status, name, inputs, executor_id, application_version, queue_name,
        created_at, updated_at, recovery_attempts, workflow_timeout_ms, workflow_deadline_epoch_ms,
        parent_workflow_id, serialization, started_at_epoch_ms, owner_xid, priority, deduplication_id,
        queue_partition_key, delay_until_epoch_ms, attributes
        """

    /// The parenthesized values of a new `workflow_status` row, in `workflowStatusColumns` order.
    private static func workflowStatusValues(_ insert: WorkflowInsert) -> SQL {
        let attempts = insert.state == .pending ? 1 : 0
        return """
            (\(insert.workflowID), \(insert.state.rawValue), \(insert.name), \(insert.inputs),
                \(insert.executorID), \(insert.applicationVersion), \(insert.queueName),
                \(insert.now), \(insert.now), \(attempts), \(insert.timeoutMilliseconds), \(insert.deadline),
                \(insert.parentWorkflowID), \(PortableJSON.formatName),
                \(insert.state == .pending ? insert.now : nil), \(insert.ownerID), \(insert.priority),
                \(insert.deduplicationID), \(insert.partitionKey), \(insert.delayUntil), \(insert.attributes))
            """
    }

    func insertWorkflow(_ insert: WorkflowInsert) async throws -> WorkflowInsertOutcome {
        if insert.claimsWhenQueueIdle, insert.deduplicationID == nil, insert.parentOperation == nil,
            insert.delayUntil == nil, let queueName = insert.queueName
        {
            return try await insertClaimingWhenQueueIdle(insert, queueName: queueName)
        }
        // The common start (no deduplication ID, no parent slot to write with it) is one statement
        // that commits by itself; when the ID is taken, the checked path below sorts out why.
        var inserted = false
        if insert.deduplicationID == nil, insert.parentOperation == nil {
            if let batches {
                inserted = try await batches.starts.submit(insert)
            } else {
                inserted = try await Self.insertNewWorkflows([insert], backend: backend)[0]
            }
        }
        if inserted {
            // The statement itself told the queue's workers where the dialect lets it.
            if let queueName = insert.queueName, dialect.enqueueNotice == nil {
                await backend.publish([.queue(name: queueName)])
            }
            return .inserted
        }
        let outcome = try await insertWorkflowChecked(insert)
        if case .inserted = outcome, let queueName = insert.queueName {
            await backend.publish([.queue(name: queueName)])
        }
        return outcome
    }

    /// Inserts new rows in one statement; for each insert, whether its row is new (false when the
    /// ID was taken, or is given twice and an earlier row of the batch took it).
    static func insertNewWorkflows(_ inserts: [WorkflowInsert], backend: any SQLBackend) async throws -> [Bool] {
        let statement: SQL = "INSERT INTO workflow_status (\(unescaped: workflowStatusColumns)) VALUES "
            + SQL.joined(inserts.map(workflowStatusValues))
            + " ON CONFLICT (workflow_uuid) DO NOTHING RETURNING workflow_uuid"
            + (backend.dialect.enqueueNotice.map { SQL(stringLiteral: ", \($0) AS notified") } ?? "")
        let operation = inserts.count == 1 ? "starting workflow \(inserts[0].workflowID)" : "starting \(inserts.count) workflows"
        let inserted = try await backend.autocommit(operation) { runner in
            Set(try runner.query(statement).compactMap { $0.string("workflow_uuid") })
        }
        var taken = Set<String>()
        return inserts.map { inserted.contains($0.workflowID) && taken.insert($0.workflowID).inserted }
    }

    /// A run enqueued by a process that serves its queue: one statement inserts it PENDING and
    /// claimed by this executor when no older run it could claim waits on the queue (ENQUEUED, or
    /// DELAYED and due; of its application version or of none), else ENQUEUED. The caller checked the local limit (a free slot of the queue's worker
    /// concurrency); queues with limits that workers count together never get here.
    private func insertClaimingWhenQueueIdle(_ insert: WorkflowInsert, queueName: String) async throws -> WorkflowInsertOutcome {
        // Values under a CASE have no column to take their type from, hence the casts.
        let claimed = "(SELECT NOT waiting FROM queue_state)"
        // Only runs this executor's runners could claim keep their turn: a run of another application
        // version waits for a worker of that version, which would otherwise hold this queue's
        // shortcut off for as long as none comes.
        let claimable: SQL = "(application_version = \(insert.applicationVersion) OR application_version IS NULL)"
        let notice = dialect.enqueueNotice.map { ", CASE WHEN status = 'ENQUEUED' THEN \($0) END AS notified" } ?? ""
        let statement: SQL = """
            WITH queue_state AS (
                SELECT \(Self.hasEnqueuedRun(on: queueName, where: claimable))
                    OR \(Self.hasDueDelayedRun(on: queueName, at: insert.now, where: claimable)) AS waiting)
            INSERT INTO workflow_status (\(unescaped: Self.workflowStatusColumns)) VALUES
                (\(insert.workflowID), CASE WHEN \(unescaped: claimed) THEN 'PENDING' ELSE 'ENQUEUED' END, \(insert.name),
                \(insert.inputs), \(insert.executorID), \(insert.applicationVersion), \(queueName), \(insert.now),
                \(insert.now), CASE WHEN \(unescaped: claimed) THEN 1 ELSE 0 END, \(insert.timeoutMilliseconds),
                CASE WHEN \(unescaped: claimed) THEN CAST(\(insert.deadline) AS BIGINT) END, \(insert.parentWorkflowID),
                \(PortableJSON.formatName), CASE WHEN \(unescaped: claimed) THEN CAST(\(insert.now) AS BIGINT) END,
                \(insert.ownerID), \(insert.priority), NULL, \(insert.partitionKey), NULL, \(insert.attributes))
            ON CONFLICT (workflow_uuid) DO NOTHING RETURNING status\(unescaped: notice)
            """
        let status = try await backend.autocommit("enqueueing workflow \(insert.workflowID)") { runner in
            try runner.query(statement).first.map { $0.string("status") }
        }
        switch status {
        case WorkflowState.pending.rawValue:
            return .claimed
        case .some:
            if dialect.enqueueNotice == nil { await backend.publish([.queue(name: queueName)]) }
            return .inserted
        case nil:
            // The ID was taken (by this insert before a lost acknowledgement, or by another run).
            // Should the row be gone since, it is inserted ENQUEUED, and a deadline starts at its claim.
            var insert = insert
            insert.deadline = nil
            let outcome = try await insertWorkflowChecked(insert)
            if case .inserted = outcome { await backend.publish([.queue(name: queueName)]) }
            return outcome
        }
    }

    private func insertWorkflowChecked(_ insert: WorkflowInsert) async throws -> WorkflowInsertOutcome {
        try await backend.transaction("starting workflow \(insert.workflowID)") { runner in
            if let existing = try Self.selectWorkflow(runner, id: insert.workflowID) {
                // Our own insert, committed before a lost acknowledgement: it is still ours. A
                // worker's claim replaces the owner token, so a PENDING row with it is our claim.
                if existing.ownerID == insert.ownerID {
                    return insert.claimsWhenQueueIdle && existing.state == .pending ? .claimed : .inserted
                }
                // A child started earlier under an explicit ID is still linked to this parent slot.
                if let operation = insert.parentOperation {
                    try Self.insertOperation(runner, operation, ignoringExisting: true)
                }
                return .existing(existing)
            }
            if let deduplicationID = insert.deduplicationID, let queueName = insert.queueName,
                let holder = try runner.query("""
                    SELECT workflow_uuid FROM workflow_status
                    WHERE queue_name = \(queueName) AND deduplication_id = \(deduplicationID)
                    """).first?.string("workflow_uuid")
            {
                return .deduplicated(existingWorkflowID: holder)
            }
            try runner.execute("INSERT INTO workflow_status (\(unescaped: Self.workflowStatusColumns)) VALUES "
                + Self.workflowStatusValues(insert))
            if let operation = insert.parentOperation {
                try Self.insertOperation(runner, operation, ignoringExisting: true)
            }
            return .inserted
        }
    }

    func workflow(id: String) async throws -> WorkflowRecord? {
        try await backend.autocommit("reading workflow \(id)") { runner in
            try Self.selectWorkflow(runner, id: id)
        }
    }

    func stoppedWorkflowIDs(createdIn ranges: [ClosedRange<EpochMilliseconds>]) async throws -> [String] {
        guard !ranges.isEmpty else { return [] }
        return try await backend.autocommit("reading cancelled workflows") { runner in
            // The first IN repeats the predicate of the partial index on (status, created_at), so
            // that SQLite, which has no statistics, uses it too instead of the created_at index
            // (which would visit every run created in the range, running or not).
            try ranges.flatMap { range in
                try runner.query("""
                    SELECT workflow_uuid FROM workflow_status
                    WHERE status IN ('ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')
                        AND status IN ('CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')
                        AND created_at >= \(range.lowerBound) AND created_at <= \(range.upperBound)
                    """).compactMap { $0.string("workflow_uuid") }
            }
        }
    }

    func completeWorkflow(
        id: String, state: WorkflowState, output: String?, error: String?, checkpoint: OperationRecord?,
        at now: EpochMilliseconds, mayLinger: @escaping @Sendable () -> Bool
    ) async throws -> Bool {
        precondition(checkpoint.map { $0.workflowID == id } ?? true, "a run's outcome carries only its own checkpoint")
        let completion = Completion(id: id, state: state, output: output, error: error, checkpoint: checkpoint, now: now)
        let completed =
            if let batches {
                try await batches.completions.submit(completion, lingeringIf: mayLinger)
            } else {
                try await Self.completeWorkflows(
                    [completion], backend: backend, deferringIf: backend.defersWrites ? mayLinger : nil)[0]
            }
        if completed, dialect.completionNotice == nil { await backend.publish([.completion(workflowID: id)]) }
        return completed
    }

    func expediteCompletions() {
        if let batches { batches.completions.expedite() } else { backend.expediteDeferred() }
    }

    func stopLingering() {
        if let batches { batches.completions.stopLingering() } else { backend.stopDeferring() }
    }

    /// Writes outcomes of runs that are still PENDING, with their checkpoints, in one commit; for
    /// each, whether it was written. PostgreSQL writes any number of them in one statement; SQLite
    /// writes one (its writer thread commits concurrent ones together), which, while `mayDefer`
    /// holds, may wait to share the writer's next commit.
    static func completeWorkflows(
        _ completions: [Completion], backend: any SQLBackend, deferringIf mayDefer: (@Sendable () -> Bool)? = nil
    ) async throws -> [Bool] {
        let notice = backend.dialect.completionNotice.map { ", \($0) AS notified" } ?? ""
        let operation =
            completions.count == 1
            ? "recording the outcome of workflow \(completions[0].id)" : "recording the outcomes of \(completions.count) workflows"
        if completions.count == 1, let completion = completions.first,
            completion.checkpoint == nil || !backend.dialect.writesInCommonTableExpressions
        {
            let update: SQL = """
                UPDATE workflow_status AS ws
                SET status = \(completion.state.rawValue), output = \(completion.output), error = \(completion.error),
                    updated_at = \(completion.now), completed_at = \(completion.now), deduplication_id = NULL
                WHERE workflow_uuid = \(completion.id) AND status = 'PENDING'
                RETURNING workflow_uuid\(unescaped: notice)
                """
            let checkpoint = completion.checkpoint
            if let mayDefer {
                return [try await backend.deferrableTransaction(operation, deferringIf: mayDefer) { runner in
                    let checkpointStored = try checkpoint.map { try insertCheckpointIfRunExists(runner, $0) } ?? true
                    return try checkpointStored && !runner.query(update).isEmpty
                }]
            }
            guard let checkpoint else {
                return [try await backend.autocommit(operation) { runner in try !runner.query(update).isEmpty }]
            }
            return [try await backend.transaction(operation) { runner in
                try insertCheckpointIfRunExists(runner, checkpoint) && !runner.query(update).isEmpty
            }]
        }
        precondition(backend.dialect.writesInCommonTableExpressions, "SQLite names no columns of a VALUES list")
        // PostgreSQL: the checkpoints' insert is a CTE, whose RETURNING the UPDATE reads (a CTE's
        // writes are not visible to the rest of the statement otherwise).
        let hasCheckpoints = completions.contains { $0.checkpoint != nil }
        // Padded to a power of two with rows that match no run, so that batches of any size take
        // one of a few statement shapes, each prepared once per connection: PostgreSQL planned
        // a new 100-row statement on every batch otherwise, about as costly as running it.
        let emptyRow: SQL =
            hasCheckpoints
            ? "(CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS BIGINT), "
                + "CAST(NULL AS INTEGER), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS BIGINT), "
                + "CAST(NULL AS BIGINT))"
            : "(CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS BIGINT))"
        let padding = Array(repeating: emptyRow, count: Self.paddedRowCount(completions.count) - completions.count)
        let values = SQL.joined(completions.map { completion in
            let checkpoint = completion.checkpoint
            let row: SQL = """
                (CAST(\(completion.id) AS TEXT), CAST(\(completion.state.rawValue) AS TEXT), CAST(\(completion.output) AS TEXT),
                    CAST(\(completion.error) AS TEXT), CAST(\(completion.now) AS BIGINT)
                """
            guard hasCheckpoints else { return row + ")" }
            return row + """
                , CAST(\(checkpoint?.functionID) AS INTEGER), CAST(\(checkpoint?.functionName) AS TEXT),
                    CAST(\(checkpoint?.output) AS TEXT), CAST(\(checkpoint?.error) AS TEXT),
                    CAST(\(checkpoint?.startedAt) AS BIGINT), CAST(\(checkpoint?.completedAt) AS BIGINT))
                """
        } + padding)
        var statement: SQL
        if hasCheckpoints {
            statement = """
                WITH input (workflow_uuid, status, output, error, completed_at, function_id, function_name, step_output,
                    step_error, step_started_at, step_completed_at) AS (VALUES 
                """ + values + """
                ), checkpoint AS (
                    INSERT INTO operation_outputs (workflow_uuid, function_id, function_name, output, error,
                        started_at_epoch_ms, completed_at_epoch_ms, serialization)
                    SELECT input.workflow_uuid, input.function_id, input.function_name, input.step_output, input.step_error,
                        input.step_started_at, input.step_completed_at, CAST(\(PortableJSON.formatName) AS TEXT)
                    FROM input
                    WHERE input.function_id IS NOT NULL
                        AND EXISTS (SELECT 1 FROM workflow_status AS run WHERE run.workflow_uuid = input.workflow_uuid)
                    ON CONFLICT (workflow_uuid, function_id) DO NOTHING
                    RETURNING workflow_uuid)
                UPDATE workflow_status AS ws
                SET status = input.status, output = input.output, error = input.error, updated_at = input.completed_at,
                    completed_at = input.completed_at, deduplication_id = NULL
                FROM input
                WHERE ws.workflow_uuid = input.workflow_uuid AND ws.status = 'PENDING'
                    AND (input.function_id IS NULL OR input.workflow_uuid IN (SELECT workflow_uuid FROM checkpoint))
                RETURNING ws.workflow_uuid\(unescaped: notice)
                """
        } else {
            statement = """
                UPDATE workflow_status AS ws
                SET status = input.status, output = input.output, error = input.error, updated_at = input.completed_at,
                    completed_at = input.completed_at, deduplication_id = NULL
                FROM (VALUES 
                """ + values + """
                ) AS input (workflow_uuid, status, output, error, completed_at)
                WHERE ws.workflow_uuid = input.workflow_uuid AND ws.status = 'PENDING'
                RETURNING ws.workflow_uuid\(unescaped: notice)
                """
        }
        statement.hasFewShapes = true
        let completed = try await backend.autocommit(operation) { [statement] runner in
            Set(try runner.query(statement).compactMap { $0.string("workflow_uuid") })
        }
        return completions.map { completed.contains($0.id) }
    }

    /// The row count a batch of `count` rows is padded to: the next power of two.
    static func paddedRowCount(_ count: Int) -> Int {
        var size = 1
        while size < count { size *= 2 }
        return size
    }

    func cancelWorkflows(
        ids: [String], includeDescendants: Bool, error: String?, at now: EpochMilliseconds
    ) async throws -> [String] {
        let cancelled = try await backend.transaction("cancelling workflows") { runner -> [String] in
            let targets = includeDescendants ? try Self.withDescendants(ids, runner) : ids
            var cancelled: [String] = []
            for id in targets {
                let reason: String? = ids.contains(id) ? error : nil
                let changed = try runner.execute("""
                    UPDATE workflow_status
                    SET status = 'CANCELLED', updated_at = \(now), completed_at = \(now), started_at_epoch_ms = NULL,
                        deduplication_id = NULL, error = COALESCE(\(reason), error)
                    WHERE workflow_uuid = \(id)
                        AND status NOT IN ('SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')
                    """)
                if changed > 0 { cancelled.append(id) }
            }
            return cancelled
        }
        if !cancelled.isEmpty { await backend.publish(cancelled.map { .completion(workflowID: $0) }) }
        return cancelled
    }

    /// `ids` followed by every workflow descended from them (through `parent_workflow_id`), each once.
    private static func withDescendants(_ ids: [String], _ runner: any SQLStatementRunner) throws -> [String] {
        var all = ids
        var frontier = ids
        var seen = Set(ids)
        while !frontier.isEmpty {
            let children = try runner.query(
                "SELECT workflow_uuid FROM workflow_status WHERE parent_workflow_id IN (\(list: frontier))"
            ).compactMap { $0.string("workflow_uuid") }.filter { seen.insert($0).inserted }
            all += children
            frontier = children
        }
        return all
    }

    func deleteWorkflows(ids: [String], includeDescendants: Bool) async throws -> [String] {
        guard !ids.isEmpty else { return [] }
        let deleted = try await backend.transaction("deleting workflows") { runner -> [String] in
            let targets = includeDescendants ? try Self.withDescendants(ids, runner) : ids
            var deleted: [String] = []
            for id in targets {
                // These tables have no foreign key to the status row; messages, events and streams cascade from it.
                try runner.execute("DELETE FROM operation_outputs WHERE workflow_uuid = \(id)")
                try runner.execute("DELETE FROM workflow_input WHERE workflow_uuid = \(id)")
                try runner.execute("DELETE FROM workflow_output WHERE workflow_uuid = \(id)")
                if try runner.execute("DELETE FROM workflow_status WHERE workflow_uuid = \(id)") > 0 { deleted.append(id) }
            }
            return deleted
        }
        // Whoever waits for a deleted run's outcome looks again (and finds no run).
        if !deleted.isEmpty { await backend.publish(deleted.map { .completion(workflowID: $0) }) }
        return deleted
    }

    func pendingWorkflows(executorID: String, applicationVersion: String) async throws -> [WorkflowRecord] {
        try await backend.autocommit("listing workflows to recover") { runner in
            try runner.query("""
                \(unescaped: Self.workflowSelect)
                WHERE ws.status = 'PENDING' AND ws.executor_id = \(executorID)
                    AND ws.application_version = \(applicationVersion)
                ORDER BY ws.created_at
                """).map(Self.workflowRecord)
        }
    }

    func claimForRecovery(
        id: String, executorID: String, maxAttempts: Int?, at now: EpochMilliseconds
    ) async throws -> RecoveryClaim {
        let claim = try await backend.transaction("recovering workflow \(id)") { runner -> RecoveryClaim in
            guard let row = try runner.query("""
                UPDATE workflow_status SET recovery_attempts = recovery_attempts + 1, executor_id = \(executorID),
                    updated_at = \(now)
                WHERE workflow_uuid = \(id) AND status = 'PENDING'
                RETURNING recovery_attempts
                """).first, let attempts = row.int("recovery_attempts")
            else { return .notPending }
            if let maxAttempts, attempts > maxAttempts + 1 {
                try runner.execute("""
                    UPDATE workflow_status SET status = 'MAX_RECOVERY_ATTEMPTS_EXCEEDED', deduplication_id = NULL,
                        started_at_epoch_ms = NULL, updated_at = \(now)
                    WHERE workflow_uuid = \(id) AND status = 'PENDING'
                    """)
                return .exceeded(attempts: attempts)
            }
            return .claimed(attempts: attempts)
        }
        if case .exceeded = claim { await backend.publish([.completion(workflowID: id)]) }
        return claim
    }

    func listWorkflows(_ filter: WorkflowFilter) async throws -> [WorkflowRecord] {
        let order = dialect.insertionOrder
        return try await backend.autocommit("listing workflows") { runner in
            var statement: SQL = "\(unescaped: Self.workflowSelect) WHERE 1 = 1"
            if let states = filter.states {
                statement = statement + " AND ws.status IN (\(list: states.map(\.rawValue)))"
            }
            if let name = filter.name { statement = statement + " AND ws.name = \(name)" }
            if let queue = filter.queueName { statement = statement + " AND ws.queue_name = \(queue)" }
            if let after = filter.createdAfter { statement = statement + " AND ws.created_at >= \(after.epochMilliseconds)" }
            if let before = filter.createdBefore { statement = statement + " AND ws.created_at <= \(before.epochMilliseconds)" }
            if let prefix = filter.workflowIDPrefix {
                // SQL's substr counts code points; Swift's `count` counts grapheme clusters ("\r\n" is one).
                let length = prefix.unicodeScalars.count
                statement = statement + " AND substr(ws.workflow_uuid, 1, \(length)) = \(prefix)"
            }
            if let parent = filter.parentWorkflowID { statement = statement + " AND ws.parent_workflow_id = \(parent)" }
            if let ids = filter.workflowIDs { statement = statement + Self.and(column: "ws.workflow_uuid", isIn: ids) }
            if let executors = filter.executorIDs { statement = statement + Self.and(column: "ws.executor_id", isIn: executors) }
            if let version = filter.applicationVersion { statement = statement + " AND ws.application_version = \(version)" }
            if let original = filter.forkedFrom { statement = statement + " AND ws.forked_from = \(original)" }
            if let queued = filter.queuesOnly {
                statement = statement + (queued ? " AND ws.queue_name IS NOT NULL" : " AND ws.queue_name IS NULL")
            }
            if let deduplicationID = filter.deduplicationID { statement = statement + " AND ws.deduplication_id = \(deduplicationID)" }
            if let forked = filter.wasForkedFrom {
                statement = statement + (forked ? " AND ws.was_forked_from" : " AND NOT ws.was_forked_from")
            }
            if let hasParent = filter.hasParent {
                statement = statement + (hasParent ? " AND ws.parent_workflow_id IS NOT NULL" : " AND ws.parent_workflow_id IS NULL")
            }
            if let after = filter.completedAfter {
                statement = statement + " AND ws.completed_at >= \(after.epochMilliseconds)"
            }
            if let before = filter.completedBefore {
                statement = statement + " AND ws.completed_at <= \(before.epochMilliseconds)"
            }
            let direction = filter.newestFirst ? "DESC" : "ASC"
            statement = statement + " ORDER BY ws.created_at \(unescaped: direction), ws.\(unescaped: order) \(unescaped: direction)"
            // Both databases need a LIMIT before an OFFSET; Int.max stands for none.
            if filter.limit != nil || filter.offset != nil { statement = statement + " LIMIT \(filter.limit ?? Int.max)" }
            if let offset = filter.offset { statement = statement + " OFFSET \(offset)" }
            return try runner.query(statement).map(Self.workflowRecord)
        }
    }

    /// ` AND column IN (values)`, or a condition no row meets for no values (`IN ()` is not SQL).
    private static func and(column: String, isIn values: [String]) -> SQL {
        values.isEmpty ? " AND 1 = 0" : " AND \(unescaped: column) IN (\(list: values))"
    }

    // MARK: Operations

    func operations(workflowID: String) async throws -> [OperationRecord] {
        try await backend.autocommit("reading the steps of workflow \(workflowID)") { runner in
            try runner.query("""
                SELECT \(unescaped: Self.operationColumns) FROM operation_outputs
                WHERE workflow_uuid = \(workflowID) ORDER BY function_id
                """).map(Self.operationRecord)
        }
    }

    func operations(workflowIDs: [String]) async throws -> [String: [OperationRecord]] {
        guard !workflowIDs.isEmpty else { return [:] }
        // Chunks keep each statement well below the databases' limits on bound parameters.
        let chunks = stride(from: 0, to: workflowIDs.count, by: 500).map {
            Array(workflowIDs[$0..<min($0 + 500, workflowIDs.count)])
        }
        let records = try await backend.autocommit("reading the steps of \(workflowIDs.count) workflows") { runner in
            try chunks.flatMap { ids in
                try runner.query("""
                    SELECT \(unescaped: Self.operationColumns) FROM operation_outputs
                    WHERE workflow_uuid IN (\(list: ids)) ORDER BY workflow_uuid, function_id
                    """).map(Self.operationRecord)
            }
        }
        return Dictionary(grouping: records, by: \.workflowID)
    }

    func operation(workflowID: String, functionID: Int) async throws -> OperationRecord? {
        try await backend.autocommit("reading a step of workflow \(workflowID)") { runner in
            try Self.selectOperation(runner, workflowID: workflowID, functionID: functionID)
        }
    }

    func recordOperation(_ record: OperationRecord) async throws -> CheckpointOutcome {
        if let batches { return try await batches.checkpoints.submit(record) }
        return try await Self.recordOperations([record], backend: backend)[0]
    }

    /// The hot path of every step: inserts checkpoints and reads their runs' states (to notice a
    /// cancellation). An insert keeps a checkpoint that exists already (then read back) and writes
    /// nothing for a run that no longer exists. PostgreSQL does it all in one statement, one round
    /// trip, for any number of checkpoints; SQLite runs two statements per checkpoint in one job
    /// of its own thread, which costs no round trip.
    static func recordOperations(
        _ records: [OperationRecord], backend: any SQLBackend
    ) async throws -> [CheckpointOutcome] {
        let operation = records.count == 1
            ? "checkpointing step \(records[0].functionID) of workflow \(records[0].workflowID)"
            : "checkpointing \(records.count) steps"
        guard backend.dialect.writesInCommonTableExpressions else {
            return try await backend.autocommit(operation) { runner in
                try records.map { record in
                    let inserted = try insertCheckpointIfRunExists(runner, record)
                    let state = try runner.query("SELECT status FROM workflow_status WHERE workflow_uuid = \(record.workflowID)")
                        .first?.string("status").flatMap(WorkflowState.init(rawValue:))
                    if inserted { return (nil, state) }
                    return (try selectOperation(runner, workflowID: record.workflowID, functionID: record.functionID), state)
                }
            }
        }
        @Sendable func key(_ workflowID: String?, _ functionID: Int?) -> String { "\(functionID ?? -1):\(workflowID ?? "")" }
        guard Set(records.map { key($0.workflowID, $0.functionID) }).count == records.count else {
            // Two checkpoints of one slot cannot share a statement: each must see the other's row.
            throw SystemDatabaseError.queryFailed(operation: operation, reason: "a checkpoint slot is written twice at once")
        }
        let values = SQL.joined(records.map { record in
            """
            (CAST(\(record.workflowID) AS TEXT), CAST(\(record.functionID) AS INTEGER), CAST(\(record.functionName) AS TEXT),
                CAST(\(record.output) AS TEXT), CAST(\(record.error) AS TEXT), CAST(\(record.childWorkflowID) AS TEXT),
                CAST(\(record.startedAt) AS BIGINT), CAST(\(record.completedAt) AS BIGINT))
            """
        })
        // The final SELECT reads the statement's snapshot: each run's state as of the insert.
        let statement: SQL = """
            WITH input (workflow_uuid, function_id, function_name, output, error, child_workflow_id,
                started_at_epoch_ms, completed_at_epoch_ms) AS (VALUES 
            """ + values + """
            ), inserted AS (
                INSERT INTO operation_outputs (workflow_uuid, function_id, function_name, output, error, child_workflow_id,
                    started_at_epoch_ms, completed_at_epoch_ms, serialization)
                SELECT input.workflow_uuid, input.function_id, input.function_name, input.output, input.error,
                    input.child_workflow_id, input.started_at_epoch_ms, input.completed_at_epoch_ms,
                    CAST(\(PortableJSON.formatName) AS TEXT)
                FROM input WHERE EXISTS (SELECT 1 FROM workflow_status AS ws WHERE ws.workflow_uuid = input.workflow_uuid)
                ON CONFLICT (workflow_uuid, function_id) DO NOTHING
                RETURNING workflow_uuid, function_id)
            SELECT input.workflow_uuid, input.function_id, ws.status, inserted.function_id IS NOT NULL AS inserted
            FROM input LEFT JOIN workflow_status AS ws ON ws.workflow_uuid = input.workflow_uuid
                LEFT JOIN inserted ON inserted.workflow_uuid = input.workflow_uuid
                    AND inserted.function_id = input.function_id
            """
        return try await backend.autocommit(operation) { runner in
            var rows: [String: SQLRow] = [:]
            for row in try runner.query(statement) { rows[key(row.string("workflow_uuid"), row.int("function_id"))] = row }
            return try records.map { record in
                let row = rows[key(record.workflowID, record.functionID)]
                let state = row?.string("status").flatMap(WorkflowState.init(rawValue:))
                if row?.bool("inserted") == true { return (nil, state) }
                return (try selectOperation(runner, workflowID: record.workflowID, functionID: record.functionID), state)
            }
        }
    }

    // MARK: Messages and events

    func sendMessage(_ message: MessageInsert, checkpoint: OperationRecord?) async throws -> Bool {
        // The PostgreSQL schema's insert trigger notifies listeners; SQLite waiters poll.
        try await backend.transaction("sending a message to \(message.destinationID)") { runner in
            guard try !runner.query(
                "SELECT 1 AS present FROM workflow_status WHERE workflow_uuid = \(message.destinationID)"
            ).isEmpty else {
                throw WorkflowError.nonexistentWorkflow(message.destinationID)
            }
            let inserted = try runner.execute("""
                INSERT INTO notifications (destination_uuid, topic, message, created_at_epoch_ms, message_uuid, serialization)
                VALUES (\(message.destinationID), \(message.topic), \(message.message), \(message.now),
                    \(message.messageID), \(PortableJSON.formatName))
                ON CONFLICT (message_uuid) DO NOTHING
                """) > 0
            if let checkpoint { try Self.insertOperation(runner, checkpoint, ignoringExisting: true) }
            return inserted
        }
    }

    func consumeMessage(destinationID: String, topic: String, checkpoint: OperationRecord) async throws -> String? {
        let order = dialect.insertionOrder == "rowid" ? "rowid" : "message_uuid"
        return try await backend.transaction("receiving a message for \(destinationID)") { runner -> String? in
            // A retry after a lost acknowledgement finds its own checkpoint, not the next message.
            if let recorded = try Self.selectOperation(runner, workflowID: destinationID, functionID: checkpoint.functionID) {
                return recorded.output
            }
            guard let row = try runner.query("""
                SELECT message_uuid, message FROM notifications
                WHERE destination_uuid = \(destinationID) AND topic = \(topic) AND consumed = FALSE
                ORDER BY created_at_epoch_ms, \(unescaped: order) LIMIT 1
                """).first, let messageID = row.string("message_uuid")
            else { return nil }
            try runner.execute("""
                UPDATE notifications SET consumed = TRUE, consumed_by_function_id = \(checkpoint.functionID)
                WHERE message_uuid = \(messageID)
                """)
            let message = row.string("message")
            var record = checkpoint
            record.output = message
            try Self.insertOperation(runner, record)
            return message
        }
    }

    func setEvent(workflowID: String, key: String, value: String, functionID: Int, checkpoint: OperationRecord?) async throws {
        try await backend.transaction("setting event \(key) of workflow \(workflowID)") { runner in
            try runner.execute("""
                INSERT INTO workflow_events (workflow_uuid, key, value, serialization)
                VALUES (\(workflowID), \(key), \(value), \(PortableJSON.formatName))
                ON CONFLICT (workflow_uuid, key) DO UPDATE SET value = excluded.value, serialization = excluded.serialization
                """)
            try runner.execute("""
                INSERT INTO workflow_events_history (workflow_uuid, function_id, key, value, serialization)
                VALUES (\(workflowID), \(functionID), \(key), \(value), \(PortableJSON.formatName))
                ON CONFLICT (workflow_uuid, function_id, key) DO UPDATE SET value = excluded.value
                """)
            if let checkpoint { try Self.insertOperation(runner, checkpoint, ignoringExisting: true) }
        }
        await backend.publish([.event(workflowID: workflowID, key: key)])
    }

    func event(workflowID: String, key: String) async throws -> String? {
        try await backend.autocommit("reading event \(key) of workflow \(workflowID)") { runner in
            try runner.query("SELECT value FROM workflow_events WHERE workflow_uuid = \(workflowID) AND key = \(key)")
                .first?.string("value")
        }
    }

    // MARK: Queues

    func upsertQueue(_ queue: WorkflowQueue, at now: EpochMilliseconds) async throws {
        _ = try await backend.transaction("registering queue \(queue.name)") { runner in
            try runner.execute("""
                INSERT INTO queues (queue_id, name, concurrency, worker_concurrency, rate_limit_max,
                    rate_limit_period_sec, priority_enabled, partition_queue, polling_interval_sec, created_at, updated_at)
                VALUES (\(UUID().uuidString), \(queue.name), \(queue.globalConcurrency), \(queue.workerConcurrency),
                    \(queue.rateLimit?.limit), \(queue.rateLimit.map { Double($0.period.milliseconds) / 1000 }),
                    \(queue.priorityEnabled), \(queue.partitioned), \(Double(queue.pollingInterval.milliseconds) / 1000),
                    \(now), \(now))
                ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency,
                    worker_concurrency = excluded.worker_concurrency, rate_limit_max = excluded.rate_limit_max,
                    rate_limit_period_sec = excluded.rate_limit_period_sec, priority_enabled = excluded.priority_enabled,
                    partition_queue = excluded.partition_queue, polling_interval_sec = excluded.polling_interval_sec,
                    updated_at = excluded.updated_at
                """)
        }
    }

    func dequeue(_ request: DequeueRequest) async throws -> [WorkflowRecord] {
        let queue = request.queue
        guard !request.workflowNames.isEmpty else { return [] }
        // A read first, outside any write transaction: an idle queue costs no write lock.
        let (waiting, delayedDue) = try await backend.autocommit("looking at queue \(queue.name)") { runner in
            let row = try runner.query("""
                SELECT \(Self.hasEnqueuedRun(on: queue.name)) AS waiting,
                    \(Self.hasDueDelayedRun(on: queue.name, at: request.now)) AS delayed
                """).first
            return (row?.bool("waiting") == true, row?.bool("delayed") == true)
        }
        guard waiting || delayedDue else { return [] }
        let request = request.localRunningAtClaim.map { count in
            var request = request
            request.localRunning = count()
            return request
        } ?? request
        // The claim token lets a retry after a lost acknowledgement find the rows it claimed.
        let token = UUID().uuidString
        if dialect.writesInCommonTableExpressions, !delayedDue, !queue.partitioned, queue.rateLimit == nil,
            queue.globalConcurrency == nil
        {
            return try await claimInOneStatement(request, token: token)
        }
        let dialect = dialect
        return try await backend.transaction("dequeueing from \(queue.name)") { runner -> [WorkflowRecord] in
            // The claimed rows are read in the same transaction (they are PENDING and ours), in
            // the order the queue starts them.
            func records(_ ids: [String]) throws -> [WorkflowRecord] {
                guard !ids.isEmpty else { return [] }
                return try runner.query("""
                    \(unescaped: Self.workflowSelect) WHERE ws.workflow_uuid IN (\(list: ids))
                    ORDER BY ws.priority, ws.created_at, ws.\(unescaped: dialect.insertionOrder)
                    """).map(Self.workflowRecord)
            }
            if let queueLock = dialect.queueLock, queue.globalConcurrency != nil || queue.rateLimit != nil {
                try runner.query(queueLock(queue.name))
            }
            let alreadyClaimed = try runner.query("""
                SELECT workflow_uuid FROM workflow_status WHERE owner_xid = \(token) AND status = 'PENDING'
                """).compactMap { $0.string("workflow_uuid") }
            if !alreadyClaimed.isEmpty { return try records(alreadyClaimed) }
            if delayedDue {
                try runner.execute("""
                    UPDATE workflow_status SET status = 'ENQUEUED', updated_at = \(request.now)
                    WHERE queue_name = \(queue.name) AND status = 'DELAYED' AND delay_until_epoch_ms <= \(request.now)
                    """)
            }
            let partitions: [String?] =
                queue.partitioned
                ? try runner.query("""
                    SELECT DISTINCT queue_partition_key FROM workflow_status
                    WHERE \(Self.inFlight(on: queue.name, .enqueued))
                    """).map { $0.string("queue_partition_key") }
                : [nil]
            var claimed: [String] = []
            for partition in partitions {
                let partitionFilter: SQL =
                    queue.partitioned ? " AND queue_partition_key IS NOT DISTINCT FROM \(partition)" : ""
                var available = Int.max
                if let rate = queue.rateLimit {
                    let started: SQL = """
                        SELECT count(*) AS n FROM workflow_status
                        WHERE queue_name = \(queue.name) AND rate_limited = TRUE
                            AND status NOT IN ('ENQUEUED', 'DELAYED')
                            AND started_at_epoch_ms > \(request.now - rate.period.milliseconds)
                        """
                    let count = try runner.query(started + partitionFilter).first?.int("n") ?? 0
                    available = min(available, rate.limit - count)
                }
                if let worker = queue.workerConcurrency {
                    available = min(available, worker - (request.localRunning[partition ?? ""] ?? 0))
                }
                if let global = queue.globalConcurrency {
                    let running: SQL = """
                        SELECT count(*) AS n FROM workflow_status WHERE \(Self.inFlight(on: queue.name, .pending))
                        """
                    let count = try runner.query(running + partitionFilter).first?.int("n") ?? 0
                    available = min(available, global - count)
                }
                guard available > 0 else { continue }
                claimed += try runner.query(
                    Self.claim(request, token: token, dialect: dialect, filter: partitionFilter, limit: available)
                        + " RETURNING workflow_uuid"
                ).compactMap { $0.string("workflow_uuid") }
            }
            return try records(claimed)
        }
    }

    /// Claims up to `limit` ENQUEUED runs matching `filter` in one statement. The candidates are
    /// MATERIALIZED so they are selected (and, on PostgreSQL, row-locked) once: a subquery under IN
    /// could be rescanned, and with SKIP LOCKED each scan may find other rows, past the limit.
    private static func claim(
        _ request: DequeueRequest, token: String, dialect: SQLDialect, filter: SQL, limit: Int
    ) -> SQL {
        let queue = request.queue
        var candidates: SQL = """
            SELECT workflow_uuid FROM workflow_status
            WHERE \(inFlight(on: queue.name, .enqueued))
                AND (application_version = \(request.applicationVersion) OR application_version IS NULL)
                AND name IN (\(list: request.workflowNames))
            """
        if let scope = request.onlyEnqueuedBy {
            candidates = candidates
                + " AND (executor_id = \(scope.executorID) OR workflow_uuid IN (\(list: scope.workflowIDs + [""])))"
        }
        candidates = candidates + filter + " ORDER BY priority, created_at, \(unescaped: dialect.insertionOrder)"
        if limit != Int.max { candidates = candidates + " LIMIT \(limit)" }
        candidates = candidates + "\(unescaped: dialect.lockingClause)"
        return "WITH candidates AS MATERIALIZED (" + candidates + ") " + """
            UPDATE workflow_status
            SET status = 'PENDING', executor_id = \(request.executorID),
                application_version = \(request.applicationVersion), started_at_epoch_ms = \(request.now),
                updated_at = \(request.now), rate_limited = \(queue.rateLimit != nil),
                recovery_attempts = recovery_attempts + 1, owner_xid = \(token),
                workflow_deadline_epoch_ms = CASE
                    WHEN workflow_timeout_ms IS NOT NULL AND workflow_deadline_epoch_ms IS NULL
                    THEN \(request.now) + workflow_timeout_ms ELSE workflow_deadline_epoch_ms END
            WHERE status = 'ENQUEUED' AND workflow_uuid IN (SELECT workflow_uuid FROM candidates)
            """
    }

    /// The dequeue of a queue limited only by its worker concurrency, as one statement that
    /// commits by itself (PostgreSQL): claim, then read the claimed rows. A retry after a lost
    /// acknowledgement claims nothing more and returns what the lost attempt claimed.
    func claimInOneStatement(_ request: DequeueRequest, token: String) async throws -> [WorkflowRecord] {
        let queue = request.queue
        let available = queue.workerConcurrency.map { $0 - (request.localRunning[""] ?? 0) } ?? Int.max
        guard available > 0 else { return [] }
        // A lost attempt's claimed rows are PENDING: the condition lets the partial index of pending
        // runs answer instead of a scan of the whole history (owner_xid has no index of its own).
        let unclaimed: SQL = " AND NOT EXISTS (SELECT 1 FROM workflow_status WHERE status = 'PENDING' AND owner_xid = \(token))"
        let statement = "WITH claimed AS (" + Self.claim(request, token: token, dialect: dialect, filter: unclaimed, limit: available)
            + """
             RETURNING *)
            \(unescaped: Self.workflowSelect(from: "claimed"))
            UNION ALL
            \(unescaped: Self.workflowSelect) WHERE ws.owner_xid = \(token) AND ws.status = 'PENDING'
            ORDER BY priority, created_at, workflow_uuid
            """
        return try await backend.autocommit("dequeueing from \(queue.name)") { runner in
            try runner.query(statement).map(Self.workflowRecord)
        }
    }

    func requeuePendingWorkflows(
        executorID: String, applicationVersion: String, excluding runningIDs: [String], at now: EpochMilliseconds
    ) async throws -> [String] {
        let requeued = try await backend.transaction("re-enqueueing workflows to recover") { runner in
            try runner.query("""
                UPDATE workflow_status SET status = 'ENQUEUED', started_at_epoch_ms = NULL, updated_at = \(now)
                WHERE status = 'PENDING' AND executor_id = \(executorID)
                    AND application_version = \(applicationVersion) AND queue_name IS NOT NULL
                    AND workflow_uuid NOT IN (\(list: runningIDs + [""]))
                RETURNING workflow_uuid, queue_name
                """).map { ($0.string("workflow_uuid") ?? "", $0.string("queue_name") ?? "") }
        }
        await backend.publish(Set(requeued.map(\.1)).map { .queue(name: $0) })
        return requeued.map(\.0)
    }

    func setDelay(id: String, until: EpochMilliseconds, at now: EpochMilliseconds) async throws
        -> (state: WorkflowState, queueName: String?)?
    {
        let found = try await backend.transaction("delaying workflow \(id)") { runner -> (WorkflowState, String?)? in
            // The update decides: a queue runner may have started the run since anyone looked.
            let changed = try runner.execute("""
                UPDATE workflow_status SET delay_until_epoch_ms = \(until), updated_at = \(now)
                WHERE workflow_uuid = \(id) AND status = 'DELAYED'
                """)
            guard let row = try runner.query("SELECT status, queue_name FROM workflow_status WHERE workflow_uuid = \(id)").first,
                let state = row.string("status").flatMap(WorkflowState.init(rawValue:))
            else { return nil }
            return (changed > 0 ? .delayed : state, row.string("queue_name"))
        }
        if let found, found.0 == .delayed, let queueName = found.1 { await backend.publish([.queue(name: queueName)]) }
        return found.map { (state: $0.0, queueName: $0.1) }
    }

    func deadLetter(id: String, at now: EpochMilliseconds) async throws {
        _ = try await backend.transaction("abandoning workflow \(id)") { runner in
            try runner.execute("""
                UPDATE workflow_status SET status = 'MAX_RECOVERY_ATTEMPTS_EXCEEDED', deduplication_id = NULL,
                    started_at_epoch_ms = NULL, updated_at = \(now)
                WHERE workflow_uuid = \(id) AND status = 'PENDING'
                """)
        }
        await backend.publish([.completion(workflowID: id)])
    }

    func resumeWorkflow(id: String, queueName: String, executorID: String, at now: EpochMilliseconds) async throws -> [String]? {
        let resumedOn = try await backend.transaction("resuming workflow \(id)") { runner -> [String]? in
            guard let record = try Self.selectWorkflow(runner, id: id),
                [.cancelled, .error, .maxRecoveryAttemptsExceeded, .enqueued].contains(record.state)
            else { return nil }
            if record.state == .error,
                let last = try runner.query("""
                    SELECT function_id, error FROM operation_outputs WHERE workflow_uuid = \(id)
                    ORDER BY function_id DESC LIMIT 1
                    """).first, last.string("error") != nil, let functionID = last.int("function_id")
            {
                try runner.execute("DELETE FROM operation_outputs WHERE workflow_uuid = \(id) AND function_id = \(functionID)")
            }
            try Self.enqueueAgain(runner, id: id, queueName: queueName, executorID: executorID, at: now)
            var queues = [record.queueName ?? queueName]
            // Cancelling a run cancels its unfinished descendants in the same statement (the same
            // completed_at): resuming it resumes those, or the run would find each child it awaits still
            // CANCELLED and fail at once. A descendant cancelled on its own (its timeout, a cancel of just
            // it) stays as it is: the run may have seen and checkpointed that outcome.
            guard record.state == .cancelled, let cancelledAt = record.completedAt else { return queues }
            var frontier = [id]
            var seen: Set<String> = [id]
            while !frontier.isEmpty {
                let children = try runner.query("""
                    SELECT workflow_uuid, status, queue_name, completed_at FROM workflow_status
                    WHERE parent_workflow_id IN (\(list: frontier))
                    """)
                frontier = []
                for child in children {
                    guard let childID = child.string("workflow_uuid"), seen.insert(childID).inserted else { continue }
                    frontier.append(childID)
                    guard child.string("status") == WorkflowState.cancelled.rawValue,
                        child.int64("completed_at") == cancelledAt
                    else { continue }
                    try Self.enqueueAgain(runner, id: childID, queueName: queueName, executorID: executorID, at: now)
                    queues.append(child.string("queue_name") ?? queueName)
                }
            }
            return queues
        }
        guard let resumedOn else { return nil }
        let queues = Set(resumedOn).sorted()
        await backend.publish(queues.map { .queue(name: $0) })
        return queues
    }

    /// Puts a run back on its queue (or `queueName`) as ENQUEUED, to continue from its checkpoints, as
    /// enqueued by `executorID` (what `DequeueRequest.onlyEnqueuedBy` matches).
    private static func enqueueAgain(
        _ runner: any SQLStatementRunner, id: String, queueName: String, executorID: String, at now: EpochMilliseconds
    ) throws {
        try runner.execute("DELETE FROM workflow_output WHERE workflow_uuid = \(id)")
        try runner.execute("""
            UPDATE workflow_status
            SET status = 'ENQUEUED', queue_name = COALESCE(queue_name, \(queueName)), recovery_attempts = 0,
                workflow_deadline_epoch_ms = NULL, deduplication_id = NULL, started_at_epoch_ms = NULL,
                completed_at = NULL, output = NULL, error = NULL, executor_id = \(executorID), updated_at = \(now)
            WHERE workflow_uuid = \(id)
            """)
    }

    func forkWorkflow(_ request: ForkRequest) async throws {
        try await backend.transaction("forking workflow \(request.originalID)") { runner in
            guard let original = try Self.selectWorkflow(runner, id: request.originalID) else {
                throw WorkflowError.nonexistentWorkflow(request.originalID)
            }
            if try Self.selectWorkflow(runner, id: request.forkedID) != nil {
                throw WorkflowError.conflictingWorkflowID(
                    id: request.forkedID, existingName: original.name, requestedName: original.name)
            }
            try runner.execute("""
                INSERT INTO workflow_status (workflow_uuid, status, name, inputs, application_version, queue_name,
                    created_at, updated_at, recovery_attempts, workflow_timeout_ms, serialization, forked_from, priority,
                    attributes, queue_partition_key)
                VALUES (\(request.forkedID), 'ENQUEUED', \(original.name), \(original.inputs),
                    \(request.applicationVersion ?? original.applicationVersion), \(request.queueName), \(request.now),
                    \(request.now), 0, \(original.timeoutMilliseconds), \(original.serialization ?? PortableJSON.formatName),
                    \(request.originalID), 0, \(original.attributes), \(request.partitionKey))
                """)
            try runner.execute("""
                INSERT INTO operation_outputs (workflow_uuid, function_id, function_name, output, error,
                    child_workflow_id, started_at_epoch_ms, completed_at_epoch_ms, serialization)
                SELECT \(request.forkedID), function_id, function_name, output, error, child_workflow_id,
                    started_at_epoch_ms, completed_at_epoch_ms, serialization
                FROM operation_outputs WHERE workflow_uuid = \(request.originalID) AND function_id < \(request.startStep)
                """)
            try runner.execute("""
                INSERT INTO workflow_events_history (workflow_uuid, function_id, key, value, serialization)
                SELECT \(request.forkedID), function_id, key, value, serialization FROM workflow_events_history
                WHERE workflow_uuid = \(request.originalID) AND function_id < \(request.startStep)
                """)
            try runner.execute("""
                INSERT INTO workflow_events (workflow_uuid, key, value, serialization)
                SELECT history.workflow_uuid, history.key, history.value, history.serialization
                FROM workflow_events_history AS history
                WHERE history.workflow_uuid = \(request.forkedID) AND history.function_id = (
                    SELECT max(latest.function_id) FROM workflow_events_history AS latest
                    WHERE latest.workflow_uuid = history.workflow_uuid AND latest.key = history.key)
                """)
            try runner.execute("""
                INSERT INTO streams (workflow_uuid, key, value, "offset", function_id, serialization)
                SELECT \(request.forkedID), key, value, "offset", function_id, serialization FROM streams
                WHERE workflow_uuid = \(request.originalID) AND function_id < \(request.startStep)
                """)
            try runner.execute("UPDATE workflow_status SET was_forked_from = TRUE WHERE workflow_uuid = \(request.originalID)")
        }
        await backend.publish([.queue(name: request.queueName)])
    }

    // MARK: Streams

    func writeStream(workflowID: String, key: String, value: String, functionID: Int, checkpoint: OperationRecord?) async throws {
        try await backend.transaction("writing stream \(key) of workflow \(workflowID)") { runner in
            // A retry after a lost acknowledgement must not append the value a second time.
            if checkpoint != nil, try Self.selectOperation(runner, workflowID: workflowID, functionID: functionID) != nil {
                return
            }
            let closed = try runner.query("""
                SELECT 1 AS closed FROM streams
                WHERE workflow_uuid = \(workflowID) AND key = \(key) AND value = \(StreamMarker.closed) LIMIT 1
                """)
            guard closed.isEmpty else { throw SystemDatabaseError.streamClosed(workflowID: workflowID, key: key) }
            let next = try runner.query("""
                SELECT COALESCE(max("offset"), -1) + 1 AS next FROM streams WHERE workflow_uuid = \(workflowID) AND key = \(key)
                """).first?.int("next") ?? 0
            try runner.execute("""
                INSERT INTO streams (workflow_uuid, key, value, "offset", function_id, serialization)
                VALUES (\(workflowID), \(key), \(value), \(next), \(functionID), \(PortableJSON.formatName))
                """)
            if let checkpoint { try Self.insertOperation(runner, checkpoint) }
        }
        await backend.publish([.stream(workflowID: workflowID, key: key)])
    }

    func readStream(workflowID: String, key: String, from offset: Int) async throws -> [StreamEntry] {
        try await backend.autocommit("reading stream \(key) of workflow \(workflowID)") { runner in
            try runner.query("""
                SELECT "offset" AS position, value FROM streams
                WHERE workflow_uuid = \(workflowID) AND key = \(key) AND "offset" >= \(offset)
                ORDER BY "offset"
                """).map { StreamEntry(offset: $0.int("position") ?? 0, value: $0.string("value") ?? "null") }
        }
    }
}
