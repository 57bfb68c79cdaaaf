import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The embedded system database: one SQLite file in WAL mode, shared safely by the processes of
/// one machine (a worker and a client, say). Every call runs on the executor's own thread.
final class SQLiteSystemDatabase: SystemDatabase {
    private let executor: SQLiteExecutor
    /// Where the database lives, for error messages: a path or `:memory:`.
    let location: String

    /// Opens (creating if needed, with mode 0600) the database at `path`, or an in-memory one
    /// for `":memory:"`.
    init(path: String) throws {
        location = path
        if path != ":memory:" {
            try Self.createFileIfMissing(path)
        }
        let connection: SQLiteConnection
        do {
            connection = try SQLiteConnection(path: path)
            try connection.execute(script: "PRAGMA foreign_keys = ON")
            if path != ":memory:" {
                let mode = try connection.query("PRAGMA journal_mode = WAL").first?.string("journal_mode")
                guard mode?.lowercased() == "wal" else {
                    throw SystemDatabaseError.cannotOpen(location: path, reason: "cannot switch to WAL mode (got \(mode ?? "nothing"))")
                }
                try connection.execute(script: "PRAGMA synchronous = FULL")
            }
        } catch let error as SQLiteError {
            throw Self.translate(error, location: path, operation: "opening the database")
        }
        executor = SQLiteExecutor(connection: connection, name: "dbos-sqlite")
    }

    private static func createFileIfMissing(_ path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) {
            do {
                try FileManager.default.createDirectory(
                    atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw SystemDatabaseError.cannotOpen(location: path, reason: "cannot create directory \(directory): \(error.localizedDescription)")
            }
        }
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if descriptor < 0 {
            let reason = String(cString: strerror(errno))
            // A read-only file can still be opened by SQLite for reading; let SQLite report it.
            if errno == EACCES || errno == EROFS, FileManager.default.fileExists(atPath: path) { return }
            throw SystemDatabaseError.cannotOpen(location: path, reason: reason)
        }
        Glibc.close(descriptor)
    }

    static func translate(_ error: SQLiteError, location: String, operation: String) -> SystemDatabaseError {
        if error.isCorruption {
            return .corrupted(location: location, reason: error.message)
        }
        if error.isReadOnlyOrFull {
            return .cannotOpen(location: location, reason: error.message)
        }
        return .queryFailed(operation: operation, reason: error.message)
    }

    /// Runs `body` on the connection's thread, translating SQLite errors.
    private func perform<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (SQLiteConnection) throws -> T
    ) async throws -> T {
        let location = location
        do {
            return try await executor.perform(body)
        } catch let error as SQLiteError {
            throw Self.translate(error, location: location, operation: operation)
        }
    }

    func close() async {
        executor.shutdown()
    }

    // MARK: Schema

    func migrate() async throws {
        try await perform("migrating the schema") { connection in
            try connection.writeTransaction {
                try connection.execute(script: """
                    CREATE TABLE IF NOT EXISTS dbos_swift_migrations (version INTEGER NOT NULL PRIMARY KEY);
                    CREATE TABLE IF NOT EXISTS dbos_migrations (version INTEGER NOT NULL PRIMARY KEY);
                    """)
                let current = try connection.query("SELECT max(version) AS version FROM dbos_swift_migrations").first?.int("version") ?? 0
                let latest = SQLiteSchema.migrations.count
                if current > latest {
                    throw SystemDatabaseError.schemaTooNew(found: current, supported: latest)
                }
                for migration in SQLiteSchema.migrations[current...] {
                    try connection.execute(script: migration)
                }
                if current < latest {
                    try connection.execute("DELETE FROM dbos_swift_migrations")
                    try connection.execute("INSERT INTO dbos_swift_migrations (version) VALUES (\(latest))")
                }
                // DBOS tools read this level; a newer DBOS that raised it keeps its number.
                let level = try connection.query("SELECT max(version) AS version FROM dbos_migrations").first?.int("version") ?? 0
                if level < SQLiteSchema.dbosSchemaLevel {
                    try connection.execute("DELETE FROM dbos_migrations")
                    try connection.execute("INSERT INTO dbos_migrations (version) VALUES (\(SQLiteSchema.dbosSchemaLevel))")
                }
            }
        }
    }

    // MARK: Workflows

    private static let workflowColumns = """
        workflow_uuid, status, name, inputs, output, error, executor_id, application_version, queue_name, \
        created_at, updated_at, recovery_attempts, workflow_timeout_ms, workflow_deadline_epoch_ms, \
        parent_workflow_id, serialization, started_at_epoch_ms, completed_at, forked_from, priority, \
        deduplication_id, queue_partition_key, delay_until_epoch_ms, attributes
        """

    static func workflowRecord(_ row: SQLRow) -> WorkflowRecord {
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
            attributes: row.string("attributes"))
    }

    private static func selectWorkflow(_ connection: SQLiteConnection, id: String) throws -> WorkflowRecord? {
        try connection.query("SELECT \(unescaped: workflowColumns) FROM workflow_status WHERE workflow_uuid = \(id)")
            .first.map(workflowRecord)
    }

    func insertWorkflow(_ insert: WorkflowInsert) async throws -> WorkflowInsertOutcome {
        try await perform("starting workflow \(insert.workflowID)") { connection in
            try connection.writeTransaction {
                if let existing = try Self.selectWorkflow(connection, id: insert.workflowID) {
                    // A child started earlier under an explicit ID is still linked to this parent slot.
                    if let operation = insert.parentOperation,
                        try Self.selectOperation(connection, workflowID: operation.workflowID, functionID: operation.functionID) == nil
                    {
                        try Self.insertOperation(connection, operation)
                    }
                    return .existing(existing)
                }
                if let deduplicationID = insert.deduplicationID, let queueName = insert.queueName,
                    let holder = try connection.query("""
                        SELECT workflow_uuid FROM workflow_status
                        WHERE queue_name = \(queueName) AND deduplication_id = \(deduplicationID)
                        """).first?.string("workflow_uuid")
                {
                    return .deduplicated(existingWorkflowID: holder)
                }
                let attempts = insert.state == .pending ? 1 : 0
                try connection.execute("""
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
                        \(insert.state == .pending ? insert.now : nil), \(UUID().uuidString), \(insert.priority),
                        \(insert.deduplicationID), \(insert.partitionKey), \(insert.delayUntil), \(insert.attributes))
                    """)
                if let operation = insert.parentOperation {
                    try Self.insertOperation(connection, operation)
                }
                return .inserted
            }
        }
    }

    func workflow(id: String) async throws -> WorkflowRecord? {
        try await perform("reading workflow \(id)") { connection in
            try Self.selectWorkflow(connection, id: id)
        }
    }

    func workflowStates(ids: [String]) async throws -> [String: WorkflowState] {
        guard !ids.isEmpty else { return [:] }
        return try await perform("reading workflow states") { connection in
            var states: [String: WorkflowState] = [:]
            for row in try connection.query("SELECT workflow_uuid, status FROM workflow_status WHERE workflow_uuid IN (\(list: ids))") {
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
        try await perform("recording the outcome of workflow \(id)") { connection in
            try connection.writeTransaction {
                try connection.execute("""
                    UPDATE workflow_status
                    SET status = \(state.rawValue), output = \(output), error = \(error), updated_at = \(now),
                        completed_at = \(now), deduplication_id = NULL
                    WHERE workflow_uuid = \(id) AND status = 'PENDING'
                    """) > 0
            }
        }
    }

    func cancelWorkflows(
        ids: [String], includeDescendants: Bool, error: String?, at now: EpochMilliseconds
    ) async throws -> [String] {
        try await perform("cancelling workflows") { connection in
            try connection.writeTransaction {
                var targets = ids
                if includeDescendants {
                    var frontier = ids
                    var seen = Set(ids)
                    while !frontier.isEmpty {
                        let children = try connection.query(
                            "SELECT workflow_uuid FROM workflow_status WHERE parent_workflow_id IN (\(list: frontier))"
                        ).compactMap { $0.string("workflow_uuid") }.filter { seen.insert($0).inserted }
                        targets += children
                        frontier = children
                    }
                }
                var cancelled: [String] = []
                for id in targets {
                    let reason: String? = ids.contains(id) ? error : nil
                    let changed = try connection.execute("""
                        UPDATE workflow_status
                        SET status = 'CANCELLED', updated_at = \(now), completed_at = \(now), started_at_epoch_ms = NULL,
                            queue_name = NULL, deduplication_id = NULL, error = COALESCE(\(reason), error)
                        WHERE workflow_uuid = \(id) AND status NOT IN ('SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')
                        """)
                    if changed > 0 { cancelled.append(id) }
                }
                return cancelled
            }
        }
    }

    func pendingWorkflows(executorID: String, applicationVersion: String) async throws -> [WorkflowRecord] {
        try await perform("listing workflows to recover") { connection in
            try connection.query("""
                SELECT \(unescaped: Self.workflowColumns) FROM workflow_status
                WHERE status = 'PENDING' AND executor_id = \(executorID) AND application_version = \(applicationVersion)
                ORDER BY created_at
                """).map(Self.workflowRecord)
        }
    }

    func claimForRecovery(
        id: String, executorID: String, maxAttempts: Int?, at now: EpochMilliseconds
    ) async throws -> RecoveryClaim {
        try await perform("recovering workflow \(id)") { connection in
            try connection.writeTransaction {
                guard let row = try connection.query("""
                    UPDATE workflow_status SET recovery_attempts = recovery_attempts + 1, executor_id = \(executorID),
                        updated_at = \(now)
                    WHERE workflow_uuid = \(id) AND status = 'PENDING'
                    RETURNING recovery_attempts
                    """).first, let attempts = row.int("recovery_attempts")
                else { return .notPending }
                if let maxAttempts, attempts > maxAttempts + 1 {
                    try connection.execute("""
                        UPDATE workflow_status SET status = 'MAX_RECOVERY_ATTEMPTS_EXCEEDED', deduplication_id = NULL,
                            started_at_epoch_ms = NULL, queue_name = NULL, updated_at = \(now)
                        WHERE workflow_uuid = \(id) AND status = 'PENDING'
                        """)
                    return .exceeded(attempts: attempts)
                }
                return .claimed(attempts: attempts)
            }
        }
    }

    func listWorkflows(_ filter: WorkflowFilter) async throws -> [WorkflowRecord] {
        try await perform("listing workflows") { connection in
            var statement: SQL = "SELECT \(unescaped: Self.workflowColumns) FROM workflow_status WHERE 1 = 1"
            if let states = filter.states {
                statement = statement + " AND status IN (\(list: states.map(\.rawValue)))"
            }
            if let name = filter.name { statement = statement + " AND name = \(name)" }
            if let queue = filter.queueName { statement = statement + " AND queue_name = \(queue)" }
            if let after = filter.createdAfter { statement = statement + " AND created_at >= \(after.epochMilliseconds)" }
            if let before = filter.createdBefore { statement = statement + " AND created_at <= \(before.epochMilliseconds)" }
            if let prefix = filter.workflowIDPrefix {
                statement = statement + " AND substr(workflow_uuid, 1, \(prefix.count)) = \(prefix)"
            }
            if let parent = filter.parentWorkflowID { statement = statement + " AND parent_workflow_id = \(parent)" }
            statement = statement + (filter.newestFirst ? " ORDER BY created_at DESC, rowid DESC" : " ORDER BY created_at, rowid")
            if let limit = filter.limit { statement = statement + " LIMIT \(limit)" }
            return try connection.query(statement).map(Self.workflowRecord)
        }
    }

    // MARK: Operations

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

    private static func insertOperation(_ connection: SQLiteConnection, _ record: OperationRecord) throws {
        try connection.execute("""
            INSERT INTO operation_outputs (workflow_uuid, function_id, function_name, output, error, child_workflow_id,
                started_at_epoch_ms, completed_at_epoch_ms, serialization)
            VALUES (\(record.workflowID), \(record.functionID), \(record.functionName), \(record.output), \(record.error),
                \(record.childWorkflowID), \(record.startedAt), \(record.completedAt), \(PortableJSON.formatName))
            """)
    }

    private static func selectOperation(_ connection: SQLiteConnection, workflowID: String, functionID: Int) throws -> OperationRecord? {
        try connection.query("""
            SELECT \(unescaped: operationColumns) FROM operation_outputs
            WHERE workflow_uuid = \(workflowID) AND function_id = \(functionID)
            """).first.map(operationRecord)
    }

    func operations(workflowID: String) async throws -> [OperationRecord] {
        try await perform("reading the steps of workflow \(workflowID)") { connection in
            try connection.query("""
                SELECT \(unescaped: Self.operationColumns) FROM operation_outputs
                WHERE workflow_uuid = \(workflowID) ORDER BY function_id
                """).map(Self.operationRecord)
        }
    }

    func operation(workflowID: String, functionID: Int) async throws -> OperationRecord? {
        try await perform("reading a step of workflow \(workflowID)") { connection in
            try Self.selectOperation(connection, workflowID: workflowID, functionID: functionID)
        }
    }

    func recordOperation(_ record: OperationRecord) async throws -> (existing: OperationRecord?, state: WorkflowState?) {
        try await perform("checkpointing step \(record.functionID) of workflow \(record.workflowID)") { connection in
            try connection.writeTransaction {
                let stateText = try connection.query(
                    "SELECT status FROM workflow_status WHERE workflow_uuid = \(record.workflowID)"
                ).first?.string("status")
                let state = stateText.flatMap(WorkflowState.init(rawValue:))
                if let existing = try Self.selectOperation(connection, workflowID: record.workflowID, functionID: record.functionID) {
                    return (existing, state)
                }
                if state != nil { try Self.insertOperation(connection, record) }
                return (nil, state)
            }
        }
    }

    // MARK: Messages and events

    func sendMessage(_ message: MessageInsert, checkpoint: OperationRecord?) async throws -> Bool {
        do {
            return try await executor.perform { connection in
                try connection.writeTransaction {
                    let inserted = try connection.execute("""
                        INSERT INTO notifications (destination_uuid, topic, message, created_at_epoch_ms, message_uuid, serialization)
                        VALUES (\(message.destinationID), \(message.topic), \(message.message), \(message.now),
                            \(message.messageID), \(PortableJSON.formatName))
                        ON CONFLICT (message_uuid) DO NOTHING
                        """) > 0
                    if let checkpoint { try Self.insertOperation(connection, checkpoint) }
                    return inserted
                }
            }
        } catch let error as SQLiteError where error.isForeignKeyViolation {
            throw WorkflowError.nonexistentWorkflow(message.destinationID)
        } catch let error as SQLiteError {
            throw Self.translate(error, location: location, operation: "sending a message to \(message.destinationID)")
        }
    }

    func consumeMessage(destinationID: String, topic: String, checkpoint: OperationRecord) async throws -> String? {
        try await perform("receiving a message for \(destinationID)") { connection in
            try connection.writeTransaction {
                guard let row = try connection.query("""
                    SELECT message_uuid, message FROM notifications
                    WHERE destination_uuid = \(destinationID) AND topic = \(topic) AND consumed = 0
                    ORDER BY created_at_epoch_ms, rowid LIMIT 1
                    """).first, let messageID = row.string("message_uuid")
                else { return nil }
                try connection.execute("UPDATE notifications SET consumed = 1 WHERE message_uuid = \(messageID)")
                let message = row.string("message")
                var record = checkpoint
                record.output = message
                try Self.insertOperation(connection, record)
                return message
            }
        }
    }

    func setEvent(workflowID: String, key: String, value: String, checkpoint: OperationRecord) async throws {
        try await perform("setting event \(key) of workflow \(workflowID)") { connection in
            try connection.writeTransaction {
                try connection.execute("""
                    INSERT INTO workflow_events (workflow_uuid, key, value, serialization)
                    VALUES (\(workflowID), \(key), \(value), \(PortableJSON.formatName))
                    ON CONFLICT (workflow_uuid, key) DO UPDATE SET value = excluded.value, serialization = excluded.serialization
                    """)
                try connection.execute("""
                    INSERT INTO workflow_events_history (workflow_uuid, function_id, key, value, serialization)
                    VALUES (\(workflowID), \(checkpoint.functionID), \(key), \(value), \(PortableJSON.formatName))
                    ON CONFLICT (workflow_uuid, function_id, key) DO UPDATE SET value = excluded.value
                    """)
                try Self.insertOperation(connection, checkpoint)
            }
        }
    }

    func event(workflowID: String, key: String) async throws -> String? {
        try await perform("reading event \(key) of workflow \(workflowID)") { connection in
            try connection.query("SELECT value FROM workflow_events WHERE workflow_uuid = \(workflowID) AND key = \(key)")
                .first?.string("value")
        }
    }

    // MARK: Queues

    func upsertQueue(_ queue: WorkflowQueue, at now: EpochMilliseconds) async throws {
        _ = try await perform("registering queue \(queue.name)") { connection in
            try connection.writeTransaction {
                try connection.execute("""
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
    }

    func dequeue(_ request: DequeueRequest) async throws -> [WorkflowRecord] {
        let queue = request.queue
        return try await perform("dequeueing from \(queue.name)") { connection in
            // A read first, outside any write transaction: an idle queue costs no write lock.
            let waiting = try connection.query("""
                SELECT 1 AS waiting FROM workflow_status
                WHERE queue_name = \(queue.name)
                    AND (status = 'ENQUEUED' OR (status = 'DELAYED' AND delay_until_epoch_ms <= \(request.now)))
                LIMIT 1
                """)
            guard !waiting.isEmpty, !request.workflowNames.isEmpty else { return [] }
            return try connection.writeTransaction {
                try connection.execute("""
                    UPDATE workflow_status SET status = 'ENQUEUED', updated_at = \(request.now)
                    WHERE queue_name = \(queue.name) AND status = 'DELAYED' AND delay_until_epoch_ms <= \(request.now)
                    """)
                let partitions: [String?] =
                    queue.partitioned
                    ? try connection.query("""
                        SELECT DISTINCT queue_partition_key FROM workflow_status
                        WHERE queue_name = \(queue.name) AND status = 'ENQUEUED'
                        """).map { $0.string("queue_partition_key") }
                    : [nil]
                var claimed: [WorkflowRecord] = []
                for partition in partitions {
                    let partitionFilter: SQL =
                        queue.partitioned ? " AND queue_partition_key IS \(partition)" : ""
                    var available = Int.max
                    if let rate = queue.rateLimit {
                        let started: SQL = """
                            SELECT count(*) AS n FROM workflow_status
                            WHERE queue_name = \(queue.name) AND rate_limited = 1
                                AND status NOT IN ('ENQUEUED', 'DELAYED')
                                AND started_at_epoch_ms > \(request.now - rate.period.milliseconds)
                            """
                        let count = try connection.query(started + partitionFilter).first?.int("n") ?? 0
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
                        let count = try connection.query(running + partitionFilter).first?.int("n") ?? 0
                        available = min(available, global - count)
                    }
                    guard available > 0 else { continue }
                    let candidates: SQL = """
                        SELECT workflow_uuid FROM workflow_status
                        WHERE queue_name = \(queue.name) AND status = 'ENQUEUED'
                            AND (application_version = \(request.applicationVersion) OR application_version IS NULL)
                            AND name IN (\(list: request.workflowNames))
                        """
                    let order: SQL = " ORDER BY priority, created_at, rowid LIMIT \(available == Int.max ? -1 : available)"
                    let ids = try connection.query(candidates + partitionFilter + order).compactMap { $0.string("workflow_uuid") }
                    for id in ids {
                        let rows = try connection.query("""
                            UPDATE workflow_status
                            SET status = 'PENDING', executor_id = \(request.executorID),
                                application_version = \(request.applicationVersion), started_at_epoch_ms = \(request.now),
                                updated_at = \(request.now), rate_limited = \(queue.rateLimit != nil),
                                recovery_attempts = recovery_attempts + 1,
                                workflow_deadline_epoch_ms = CASE
                                    WHEN workflow_timeout_ms IS NOT NULL AND workflow_deadline_epoch_ms IS NULL
                                    THEN \(request.now) + workflow_timeout_ms ELSE workflow_deadline_epoch_ms END
                            WHERE workflow_uuid = \(id) AND status = 'ENQUEUED'
                            RETURNING \(unescaped: Self.workflowColumns)
                            """)
                        claimed += rows.map(Self.workflowRecord)
                    }
                }
                return claimed
            }
        }
    }

    func requeuePendingWorkflows(
        executorID: String, applicationVersion: String, excluding runningIDs: [String], at now: EpochMilliseconds
    ) async throws -> [String] {
        try await perform("re-enqueueing workflows to recover") { connection in
            try connection.writeTransaction {
                try connection.query("""
                    UPDATE workflow_status SET status = 'ENQUEUED', started_at_epoch_ms = NULL, updated_at = \(now)
                    WHERE status = 'PENDING' AND executor_id = \(executorID)
                        AND application_version = \(applicationVersion) AND queue_name IS NOT NULL
                        AND workflow_uuid NOT IN (\(list: runningIDs + [""]))
                    RETURNING workflow_uuid
                    """).compactMap { $0.string("workflow_uuid") }
            }
        }
    }

    func deadLetter(id: String, at now: EpochMilliseconds) async throws {
        _ = try await perform("abandoning workflow \(id)") { connection in
            try connection.writeTransaction {
                try connection.execute("""
                    UPDATE workflow_status SET status = 'MAX_RECOVERY_ATTEMPTS_EXCEEDED', deduplication_id = NULL,
                        started_at_epoch_ms = NULL, updated_at = \(now)
                    WHERE workflow_uuid = \(id) AND status = 'PENDING'
                    """)
            }
        }
    }

    func resumeWorkflow(id: String, queueName: String, at now: EpochMilliseconds) async throws -> Bool {
        try await perform("resuming workflow \(id)") { connection in
            try connection.writeTransaction {
                guard let record = try Self.selectWorkflow(connection, id: id),
                    [.cancelled, .error, .maxRecoveryAttemptsExceeded, .enqueued].contains(record.state)
                else { return false }
                if record.state == .error,
                    let last = try connection.query("""
                        SELECT function_id, error FROM operation_outputs WHERE workflow_uuid = \(id)
                        ORDER BY function_id DESC LIMIT 1
                        """).first, last.string("error") != nil, let functionID = last.int("function_id")
                {
                    try connection.execute(
                        "DELETE FROM operation_outputs WHERE workflow_uuid = \(id) AND function_id = \(functionID)")
                }
                return try connection.execute("""
                    UPDATE workflow_status
                    SET status = 'ENQUEUED', queue_name = COALESCE(queue_name, \(queueName)), recovery_attempts = 0,
                        workflow_deadline_epoch_ms = NULL, deduplication_id = NULL, started_at_epoch_ms = NULL,
                        completed_at = NULL, output = NULL, error = NULL, updated_at = \(now)
                    WHERE workflow_uuid = \(id)
                    """) > 0
            }
        }
    }

    func forkWorkflow(_ request: ForkRequest) async throws {
        try await perform("forking workflow \(request.originalID)") { connection in
            try connection.writeTransaction {
                guard let original = try Self.selectWorkflow(connection, id: request.originalID) else {
                    throw WorkflowError.nonexistentWorkflow(request.originalID)
                }
                if try Self.selectWorkflow(connection, id: request.forkedID) != nil {
                    throw WorkflowError.conflictingWorkflowID(
                        id: request.forkedID, existingName: original.name, requestedName: original.name)
                }
                try connection.execute("""
                    INSERT INTO workflow_status (workflow_uuid, status, name, inputs, application_version, queue_name,
                        created_at, updated_at, recovery_attempts, workflow_timeout_ms, serialization, forked_from, priority,
                        attributes)
                    VALUES (\(request.forkedID), 'ENQUEUED', \(original.name), \(original.inputs),
                        \(request.applicationVersion ?? original.applicationVersion), \(request.queueName), \(request.now),
                        \(request.now), 0, \(original.timeoutMilliseconds), \(original.serialization ?? PortableJSON.formatName),
                        \(request.originalID), 0, \(original.attributes))
                    """)
                try connection.execute("""
                    INSERT INTO operation_outputs (workflow_uuid, function_id, function_name, output, error,
                        child_workflow_id, started_at_epoch_ms, completed_at_epoch_ms, serialization)
                    SELECT \(request.forkedID), function_id, function_name, output, error, child_workflow_id,
                        started_at_epoch_ms, completed_at_epoch_ms, serialization
                    FROM operation_outputs WHERE workflow_uuid = \(request.originalID) AND function_id < \(request.startStep)
                    """)
                try connection.execute("""
                    INSERT INTO workflow_events_history (workflow_uuid, function_id, key, value, serialization)
                    SELECT \(request.forkedID), function_id, key, value, serialization FROM workflow_events_history
                    WHERE workflow_uuid = \(request.originalID) AND function_id < \(request.startStep)
                    """)
                try connection.execute("""
                    INSERT INTO workflow_events (workflow_uuid, key, value, serialization)
                    SELECT \(request.forkedID), history.key, history.value, history.serialization
                    FROM workflow_events_history AS history
                    WHERE history.workflow_uuid = \(request.forkedID) AND history.function_id = (
                        SELECT max(latest.function_id) FROM workflow_events_history AS latest
                        WHERE latest.workflow_uuid = history.workflow_uuid AND latest.key = history.key)
                    """)
                try connection.execute("""
                    INSERT INTO streams (workflow_uuid, key, value, "offset", function_id, serialization)
                    SELECT \(request.forkedID), key, value, "offset", function_id, serialization FROM streams
                    WHERE workflow_uuid = \(request.originalID) AND function_id < \(request.startStep)
                    """)
                try connection.execute(
                    "UPDATE workflow_status SET was_forked_from = 1 WHERE workflow_uuid = \(request.originalID)")
            }
        }
    }

    // MARK: Streams

    func writeStream(workflowID: String, key: String, value: String, checkpoint: OperationRecord) async throws {
        try await perform("writing stream \(key) of workflow \(workflowID)") { connection in
            try connection.writeTransaction {
                let closed = try connection.query("""
                    SELECT 1 AS closed FROM streams
                    WHERE workflow_uuid = \(workflowID) AND key = \(key) AND value = \(StreamMarker.closed) LIMIT 1
                    """)
                guard closed.isEmpty else { throw SystemDatabaseError.streamClosed(workflowID: workflowID, key: key) }
                try connection.execute("""
                    INSERT INTO streams (workflow_uuid, key, value, "offset", function_id, serialization)
                    VALUES (\(workflowID), \(key), \(value),
                        (SELECT COALESCE(max("offset"), -1) + 1 FROM streams WHERE workflow_uuid = \(workflowID) AND key = \(key)),
                        \(checkpoint.functionID), \(PortableJSON.formatName))
                    """)
                try Self.insertOperation(connection, checkpoint)
            }
        }
    }

    func readStream(workflowID: String, key: String, from offset: Int) async throws -> [StreamEntry] {
        try await perform("reading stream \(key) of workflow \(workflowID)") { connection in
            try connection.query("""
                SELECT "offset" AS position, value FROM streams
                WHERE workflow_uuid = \(workflowID) AND key = \(key) AND "offset" >= \(offset)
                ORDER BY "offset"
                """).map { StreamEntry(offset: $0.int("position") ?? 0, value: $0.string("value") ?? "null") }
        }
    }
}
