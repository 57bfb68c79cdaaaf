import Foundation

/// The engine's system database on any `SQLBackend`: every statement the engine runs, written
/// once for SQLite and PostgreSQL (their differences are in `SQLDialect` and the backends).
///
/// Writes that may be retried after a lost acknowledgement are written so that a retry finds
/// its own earlier effect instead of applying it twice (owner tokens on inserts and claims,
/// checkpoint checks before consuming a message or appending to a stream).
final class SQLSystemDatabase: SystemDatabase {
    let backend: any SQLBackend
    private var dialect: SQLDialect { backend.dialect }

    init(backend: any SQLBackend) {
        self.backend = backend
    }

    func migrate() async throws {
        try await backend.migrate()
    }

    func close() async {
        await backend.close()
    }

    func startNotifications(_ handler: @escaping @Sendable (DatabaseNotification) -> Void) async throws -> Bool {
        try await backend.startNotifications(handler)
    }

    // MARK: Rows

    /// The columns the engine reads, with inputs and outcomes taken from DBOS's separate
    /// `workflow_input`/`workflow_output` tables when a DBOS SDK wrote them there.
    private static let workflowSelect = """
        SELECT ws.workflow_uuid, ws.status, ws.name, COALESCE(wi.inputs, ws.inputs) AS inputs,
            COALESCE(wo.output, ws.output) AS output, COALESCE(wo.error, ws.error) AS error, ws.executor_id,
            ws.application_version, ws.queue_name, ws.created_at, ws.updated_at, ws.recovery_attempts,
            ws.workflow_timeout_ms, ws.workflow_deadline_epoch_ms, ws.parent_workflow_id, ws.serialization,
            ws.started_at_epoch_ms, ws.completed_at, ws.forked_from, ws.priority, ws.deduplication_id,
            ws.queue_partition_key, ws.delay_until_epoch_ms, ws.attributes, ws.owner_xid
        FROM workflow_status AS ws
            LEFT JOIN workflow_input AS wi ON wi.workflow_uuid = ws.workflow_uuid
            LEFT JOIN workflow_output AS wo ON wo.workflow_uuid = ws.workflow_uuid
        """

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

    private static func selectOperation(_ runner: any SQLStatementRunner, workflowID: String, functionID: Int) throws -> OperationRecord? {
        try runner.query("""
            SELECT \(unescaped: operationColumns) FROM operation_outputs
            WHERE workflow_uuid = \(workflowID) AND function_id = \(functionID)
            """).first.map(operationRecord)
    }

    // MARK: Workflows

    /// The INSERT of a new `workflow_status` row.
    private static func insertWorkflowStatement(_ insert: WorkflowInsert) -> SQL {
        let attempts = insert.state == .pending ? 1 : 0
        return """
            INSERT INTO workflow_status (
                workflow_uuid, status, name, inputs, executor_id, application_version, queue_name,
                created_at, updated_at, recovery_attempts, workflow_timeout_ms, workflow_deadline_epoch_ms,
                parent_workflow_id, serialization, started_at_epoch_ms, owner_xid, priority, deduplication_id,
                queue_partition_key, delay_until_epoch_ms, attributes)
            VALUES (
                \(insert.workflowID), \(insert.state.rawValue), \(insert.name), \(insert.inputs),
                \(insert.executorID), \(insert.applicationVersion), \(insert.queueName),
                \(insert.now), \(insert.now), \(attempts), \(insert.timeoutMilliseconds), \(insert.deadline),
                \(insert.parentWorkflowID), \(PortableJSON.formatName),
                \(insert.state == .pending ? insert.now : nil), \(insert.ownerID), \(insert.priority),
                \(insert.deduplicationID), \(insert.partitionKey), \(insert.delayUntil), \(insert.attributes))
            """
    }

    func insertWorkflow(_ insert: WorkflowInsert) async throws -> WorkflowInsertOutcome {
        let outcome = try await insertNewWorkflow(insert) ? .inserted : insertWorkflowChecked(insert)
        if case .inserted = outcome, let queueName = insert.queueName {
            await backend.publish([.queue(name: queueName)])
        }
        return outcome
    }

    /// The common start in one statement that commits by itself: a new ID, no deduplication ID
    /// and no parent slot to write with it. Returns false when that is not the case or the ID is
    /// taken; then `insertWorkflowChecked` sorts out why, in a transaction.
    private func insertNewWorkflow(_ insert: WorkflowInsert) async throws -> Bool {
        guard insert.deduplicationID == nil, insert.parentOperation == nil else { return false }
        let statement = Self.insertWorkflowStatement(insert)
            + " ON CONFLICT (workflow_uuid) DO NOTHING RETURNING workflow_uuid"
        return try await backend.autocommit("starting workflow \(insert.workflowID)") { runner in
            try !runner.query(statement).isEmpty
        }
    }

    private func insertWorkflowChecked(_ insert: WorkflowInsert) async throws -> WorkflowInsertOutcome {
        try await backend.transaction("starting workflow \(insert.workflowID)") { runner in
            if let existing = try Self.selectWorkflow(runner, id: insert.workflowID) {
                // Our own insert, committed before a lost acknowledgement: it is still ours.
                if existing.ownerID == insert.ownerID { return .inserted }
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
            try runner.execute(Self.insertWorkflowStatement(insert))
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

    func workflowStates(ids: [String]) async throws -> [String: WorkflowState] {
        guard !ids.isEmpty else { return [:] }
        return try await backend.autocommit("reading workflow states") { runner in
            var states: [String: WorkflowState] = [:]
            for row in try runner.query("SELECT workflow_uuid, status FROM workflow_status WHERE workflow_uuid IN (\(list: ids))") {
                if let id = row.string("workflow_uuid"), let state = WorkflowState(rawValue: row.string("status") ?? "") {
                    states[id] = state
                }
            }
            return states
        }
    }

    func completeWorkflow(
        id: String, state: WorkflowState, output: String?, error: String?, at now: EpochMilliseconds
    ) async throws -> Bool {
        // One statement that commits by itself: no explicit transaction needed.
        let completed = try await backend.autocommit("recording the outcome of workflow \(id)") { runner in
            try runner.execute("""
                UPDATE workflow_status
                SET status = \(state.rawValue), output = \(output), error = \(error), updated_at = \(now),
                    completed_at = \(now), deduplication_id = NULL
                WHERE workflow_uuid = \(id) AND status = 'PENDING'
                """) > 0
        }
        if completed { await backend.publish([.completion(workflowID: id)]) }
        return completed
    }

    func cancelWorkflows(
        ids: [String], includeDescendants: Bool, error: String?, at now: EpochMilliseconds
    ) async throws -> [String] {
        let cancelled = try await backend.transaction("cancelling workflows") { runner -> [String] in
            var targets = ids
            if includeDescendants {
                var frontier = ids
                var seen = Set(ids)
                while !frontier.isEmpty {
                    let children = try runner.query(
                        "SELECT workflow_uuid FROM workflow_status WHERE parent_workflow_id IN (\(list: frontier))"
                    ).compactMap { $0.string("workflow_uuid") }.filter { seen.insert($0).inserted }
                    targets += children
                    frontier = children
                }
            }
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
                statement = statement + " AND substr(ws.workflow_uuid, 1, \(prefix.count)) = \(prefix)"
            }
            if let parent = filter.parentWorkflowID { statement = statement + " AND ws.parent_workflow_id = \(parent)" }
            let direction = filter.newestFirst ? "DESC" : "ASC"
            statement = statement + " ORDER BY ws.created_at \(unescaped: direction), ws.\(unescaped: order) \(unescaped: direction)"
            if let limit = filter.limit { statement = statement + " LIMIT \(limit)" }
            return try runner.query(statement).map(Self.workflowRecord)
        }
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

    func operation(workflowID: String, functionID: Int) async throws -> OperationRecord? {
        try await backend.autocommit("reading a step of workflow \(workflowID)") { runner in
            try Self.selectOperation(runner, workflowID: workflowID, functionID: functionID)
        }
    }

    func recordOperation(_ record: OperationRecord) async throws -> (existing: OperationRecord?, state: WorkflowState?) {
        // The hot path of every step. The insert keeps a checkpoint that exists already (then read
        // back below) and writes nothing for a run that no longer exists. PostgreSQL runs it and the
        // read of the run's status (to notice a cancellation) as one statement, one round trip;
        // SQLite runs the two statements in one job of its own thread, which costs no round trip.
        let insert: SQL = """
            INSERT INTO operation_outputs (workflow_uuid, function_id, function_name, output, error, child_workflow_id,
                started_at_epoch_ms, completed_at_epoch_ms, serialization)
            SELECT CAST(\(record.workflowID) AS TEXT), CAST(\(record.functionID) AS INTEGER),
                CAST(\(record.functionName) AS TEXT), CAST(\(record.output) AS TEXT), CAST(\(record.error) AS TEXT),
                CAST(\(record.childWorkflowID) AS TEXT), CAST(\(record.startedAt) AS BIGINT),
                CAST(\(record.completedAt) AS BIGINT), CAST(\(PortableJSON.formatName) AS TEXT)
            WHERE EXISTS (SELECT 1 FROM workflow_status WHERE workflow_uuid = \(record.workflowID))
            ON CONFLICT (workflow_uuid, function_id) DO NOTHING
            """
        let status: SQL = "SELECT status FROM workflow_status WHERE workflow_uuid = \(record.workflowID)"
        let writesInCommonTableExpressions = dialect.writesInCommonTableExpressions
        return try await backend.autocommit("checkpointing step \(record.functionID) of workflow \(record.workflowID)") { runner in
            let inserted: Bool
            let state: WorkflowState?
            if writesInCommonTableExpressions {
                // Both subqueries read the statement's snapshot: the status as of the insert.
                let row = try runner.query(
                    "WITH inserted AS (" + insert + " RETURNING function_id) SELECT (" + status
                        + ") AS status, (SELECT count(*) FROM inserted) AS inserted"
                ).first
                inserted = (row?.int("inserted") ?? 0) > 0
                state = row?.string("status").flatMap(WorkflowState.init(rawValue:))
            } else {
                inserted = try runner.execute(insert) > 0
                state = try runner.query(status).first?.string("status").flatMap(WorkflowState.init(rawValue:))
            }
            if inserted { return (nil, state) }
            return (try Self.selectOperation(runner, workflowID: record.workflowID, functionID: record.functionID), state)
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

    func setEvent(workflowID: String, key: String, value: String, checkpoint: OperationRecord) async throws {
        try await backend.transaction("setting event \(key) of workflow \(workflowID)") { runner in
            try runner.execute("""
                INSERT INTO workflow_events (workflow_uuid, key, value, serialization)
                VALUES (\(workflowID), \(key), \(value), \(PortableJSON.formatName))
                ON CONFLICT (workflow_uuid, key) DO UPDATE SET value = excluded.value, serialization = excluded.serialization
                """)
            try runner.execute("""
                INSERT INTO workflow_events_history (workflow_uuid, function_id, key, value, serialization)
                VALUES (\(workflowID), \(checkpoint.functionID), \(key), \(value), \(PortableJSON.formatName))
                ON CONFLICT (workflow_uuid, function_id, key) DO UPDATE SET value = excluded.value
                """)
            try Self.insertOperation(runner, checkpoint, ignoringExisting: true)
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
        let waiting = try await backend.autocommit("looking at queue \(queue.name)") { runner in
            try !runner.query("""
                SELECT 1 AS waiting FROM workflow_status
                WHERE queue_name = \(queue.name)
                    AND (status = 'ENQUEUED' OR (status = 'DELAYED' AND delay_until_epoch_ms <= \(request.now)))
                LIMIT 1
                """).isEmpty
        }
        guard waiting else { return [] }
        let dialect = dialect
        // The claim token lets a retry after a lost acknowledgement find the rows it claimed.
        let token = UUID().uuidString
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
            try runner.execute("""
                UPDATE workflow_status SET status = 'ENQUEUED', updated_at = \(request.now)
                WHERE queue_name = \(queue.name) AND status = 'DELAYED' AND delay_until_epoch_ms <= \(request.now)
                """)
            let partitions: [String?] =
                queue.partitioned
                ? try runner.query("""
                    SELECT DISTINCT queue_partition_key FROM workflow_status
                    WHERE queue_name = \(queue.name) AND status = 'ENQUEUED'
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
                        SELECT count(*) AS n FROM workflow_status
                        WHERE queue_name = \(queue.name) AND status = 'PENDING'
                        """
                    let count = try runner.query(running + partitionFilter).first?.int("n") ?? 0
                    available = min(available, global - count)
                }
                guard available > 0 else { continue }
                var candidates: SQL = """
                    SELECT workflow_uuid FROM workflow_status
                    WHERE queue_name = \(queue.name) AND status = 'ENQUEUED'
                        AND (application_version = \(request.applicationVersion) OR application_version IS NULL)
                        AND name IN (\(list: request.workflowNames))
                    """
                if let scope = request.onlyEnqueuedBy {
                    candidates = candidates
                        + " AND (executor_id = \(scope.executorID) OR workflow_uuid IN (\(list: scope.workflowIDs + [""])))"
                }
                candidates = candidates + partitionFilter
                    + " ORDER BY priority, created_at, \(unescaped: dialect.insertionOrder)"
                if available != Int.max { candidates = candidates + " LIMIT \(available)" }
                candidates = candidates + "\(unescaped: dialect.lockingClause)"
                // One statement claims them all. The candidates are MATERIALIZED so they are
                // selected (and, on PostgreSQL, row-locked) once: a subquery under IN could be
                // rescanned, and with SKIP LOCKED each scan may find other rows, past the limit.
                let claim: SQL = """
                    UPDATE workflow_status
                    SET status = 'PENDING', executor_id = \(request.executorID),
                        application_version = \(request.applicationVersion), started_at_epoch_ms = \(request.now),
                        updated_at = \(request.now), rate_limited = \(queue.rateLimit != nil),
                        recovery_attempts = recovery_attempts + 1, owner_xid = \(token),
                        workflow_deadline_epoch_ms = CASE
                            WHEN workflow_timeout_ms IS NOT NULL AND workflow_deadline_epoch_ms IS NULL
                            THEN \(request.now) + workflow_timeout_ms ELSE workflow_deadline_epoch_ms END
                    WHERE status = 'ENQUEUED' AND workflow_uuid IN (SELECT workflow_uuid FROM candidates)
                    RETURNING workflow_uuid
                    """
                claimed += try runner.query("WITH candidates AS MATERIALIZED (" + candidates + ") " + claim)
                    .compactMap { $0.string("workflow_uuid") }
            }
            return try records(claimed)
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

    func resumeWorkflow(id: String, queueName: String, at now: EpochMilliseconds) async throws -> Bool {
        let resumedOn = try await backend.transaction("resuming workflow \(id)") { runner -> String? in
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
            try runner.execute("DELETE FROM workflow_output WHERE workflow_uuid = \(id)")
            try runner.execute("""
                UPDATE workflow_status
                SET status = 'ENQUEUED', queue_name = COALESCE(queue_name, \(queueName)), recovery_attempts = 0,
                    workflow_deadline_epoch_ms = NULL, deduplication_id = NULL, started_at_epoch_ms = NULL,
                    completed_at = NULL, output = NULL, error = NULL, updated_at = \(now)
                WHERE workflow_uuid = \(id)
                """)
            return record.queueName ?? queueName
        }
        guard let resumedOn else { return false }
        await backend.publish([.queue(name: resumedOn)])
        return true
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
                    attributes)
                VALUES (\(request.forkedID), 'ENQUEUED', \(original.name), \(original.inputs),
                    \(request.applicationVersion ?? original.applicationVersion), \(request.queueName), \(request.now),
                    \(request.now), 0, \(original.timeoutMilliseconds), \(original.serialization ?? PortableJSON.formatName),
                    \(request.originalID), 0, \(original.attributes))
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

    func writeStream(workflowID: String, key: String, value: String, checkpoint: OperationRecord) async throws {
        try await backend.transaction("writing stream \(key) of workflow \(workflowID)") { runner in
            // A retry after a lost acknowledgement must not append the value a second time.
            if try Self.selectOperation(runner, workflowID: workflowID, functionID: checkpoint.functionID) != nil { return }
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
                VALUES (\(workflowID), \(key), \(value), \(next), \(checkpoint.functionID), \(PortableJSON.formatName))
                """)
            try Self.insertOperation(runner, checkpoint)
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
