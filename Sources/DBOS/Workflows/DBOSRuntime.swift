import Foundation
import Synchronization

/// The checkpoint engine of one process: register workflows, `launch()`, start and manage runs,
/// `shutdown(gracePeriod:)`.
///
/// ```swift
/// let runtime = try await DBOSRuntime(configuration: DBOSConfiguration(systemDatabaseURL: "sqlite:app.sqlite"))
/// let greet = try runtime.register("greet") { (ctx: WorkflowContext, name: String) in
///     try await ctx.runStep("shout") { name.uppercased() }
/// }
/// try await runtime.launch()
/// let handle = try await runtime.startWorkflow(greet, input: "world", options: .init(workflowID: "greet-1"))
/// print(try await handle.result())
/// ```
public final class DBOSRuntime: Sendable {
    /// The configuration this runtime was created with.
    public let configuration: DBOSConfiguration
    let database: any SystemDatabase
    let wakeups = WakeupRegistry()
    /// Wakes the runs in a durable sleep.
    let sleepTimer = SleepTimer()
    /// Writes step checkpoints left waiting for their run's next operation; nil when steps write
    /// their checkpoints before returning.
    let deferredCheckpoints: DeferredCheckpointWatch?

    /// Why a local run's task was cancelled, so its end is recorded (or not) correctly.
    enum StopReason: Sendable {
        case cancelled(String?)
        case shutdown
    }

    struct RunningWorkflow {
        var task: Task<RunOutput, any Error>
        /// The run's `created_at`, which bounds the watchdog's query.
        var createdAt: EpochMilliseconds
        var stopReason: StopReason?
        var timer: Task<Void, Never>?
        var queueName: String?
        var partitionKey: String?
        /// The run's code has returned or thrown: its queue slot is free and its deadline no
        /// longer applies, while its outcome may still wait to share a commit.
        var codeEnded = false
        /// A queue runner claimed the run again while this execution was still under way (see
        /// `stopForClaim`): what to execute when this one has ended, if the run is still to finish.
        var claimedAgain: ClaimedAgain?
    }

    /// A run claimed while an earlier execution of it was still under way here, waiting for that
    /// execution to end. It holds a slot of its queue, and counts as a claim in flight (recovery
    /// waits for it), until it executes or is given up.
    struct ClaimedAgain {
        let registered: RegisteredWorkflow
        let queueName: String
    }

    enum Phase { case registering, launched, stopped }

    struct State {
        var phase: Phase = .registering
        var workflows: [String: RegisteredWorkflow] = [:]
        var running: [String: RunningWorkflow] = [:]
        var applicationVersion = ""
        var watchdog: Task<Void, Never>?
        var queues: [String: WorkflowQueue] = [
            WorkflowQueue.internalQueueName: WorkflowQueue(name: WorkflowQueue.internalQueueName)
        ]
        var queueRunners: [Task<Void, Never>] = []
        var schedules: [WorkflowSchedule] = []
        /// Whether the database pushes changes (then waits poll only as a fallback).
        var notificationsActive = false
        /// The last creation time handed out, so rows this process creates keep their order.
        var lastCreationTime: EpochMilliseconds = 0
        /// Outputs of runs this process finished with SUCCESS, so `result()` called after the run
        /// ended needs no database read.
        var recentOutputs = RecentOutputs()
        /// Runs of each queue executing here, and enqueues of this process that hold a slot of
        /// the queue while their insert may claim the run at once (`reserveQueueSlot`).
        var queueSlotsTaken: [String: Int] = [:]
        /// How many callers in this process wait for each run's outcome: such a run's outcome is
        /// written at once, never held to share a commit.
        var outcomeWaiters: [String: Int] = [:]
        /// Queues whose runner found no run waiting at its last look (`dequeueOnce`): a run of
        /// theirs that finishes need not send the runner to look again.
        var queuesSeenIdle: Set<String> = []
        /// Enqueues holding a slot (`reserveQueueSlot`) and queue runners' dequeues under way: each
        /// may claim runs that are not in `running` yet, which recovery must not put back.
        var queueClaimsInFlight = 0
        /// The tasks that execute runs claimed again once their earlier execution ended
        /// (`executeClaimedAgain`), which shutdown waits for.
        var claimsTakenUpAgain: [String: Task<Void, Never>] = [:]
        /// Recoveries under way: while one puts this executor's PENDING queued runs back on their
        /// queues, no claim of this process starts (`recoverPendingWorkflows`).
        var recoveriesInProgress = 0
        /// Reads of just claimed runs' checkpoints that failed and were tried again (diagnostics, tests).
        var checkpointReadFailures = 0
    }

    /// The outputs (up to `largestOutput` bytes each) of the last `capacity` runs this process
    /// completed with SUCCESS. A SUCCESS is final (resume and fork never change it), so a remembered
    /// output stays true. Only the JSON is kept: the value a workflow returned may be far larger, or
    /// hold more than its JSON, and is handed back only while its run's task is alive.
    struct RecentOutputs {
        static let capacity = 1024
        static let largestOutput = 16 * 1024
        private var outputs: [String: String] = [:]
        private var order: [String] = []
        private var oldest = 0

        mutating func remember(_ output: String, of id: String) {
            guard output.utf8.count <= Self.largestOutput else { return }
            if outputs.updateValue(output, forKey: id) != nil { return }
            if order.count < Self.capacity {
                order.append(id)
                return
            }
            outputs[order[oldest]] = nil
            order[oldest] = id
            oldest = (oldest + 1) % Self.capacity
        }

        func output(of id: String) -> String? { outputs[id] }

        /// Forgets a deleted run's output: a new run may take its ID.
        mutating func forget(_ id: String) {
            outputs[id] = nil
        }
    }

    let state = Mutex(State())

    /// Opens (and migrates) the system database named by the configuration.
    public convenience init(configuration: DBOSConfiguration = DBOSConfiguration()) async throws {
        try await self.init(configuration: configuration, role: .worker)
    }

    /// What a runtime does besides answering calls.
    enum Role {
        /// Executes workflows: recovers, dequeues, runs schedules.
        case worker
        /// Only reads and writes the database for another process's workflows (`DBOSClient`).
        case client
    }

    let role: Role

    init(configuration: DBOSConfiguration, role: Role) async throws {
        self.configuration = configuration
        self.role = role
        let writeDelay: Duration? =
            switch configuration.stepCheckpointWrites {
            case .beforeReturning: nil
            case .beforeNextOperation(let delay): max(delay, .milliseconds(1))
            }
        deferredCheckpoints = writeDelay.map { DeferredCheckpointWatch(delay: $0) }
        // A client runs no workflows, so it has no outcomes to write.
        let outcomeLinger = writeDelay.map { min($0, configuration.outcomeLingerLimit) }
        database = try SystemDatabaseFactory.open(
            url: configuration.systemDatabaseURL, outcomeLinger: role == .worker ? outcomeLinger : nil)
        do {
            try await database.migrate()
            let wakeups = wakeups
            // A client runs no queue: every enqueue anywhere would wake it for nothing.
            let active = try await database.startNotifications(queues: role != .client) { notification in
                Self.deliver(notification, to: wakeups)
            }
            state.withLock { $0.notificationsActive = active }
        } catch {
            await database.close()
            throw error
        }
    }

    /// Wakes the waiters a database notification concerns.
    private static func deliver(_ notification: DatabaseNotification, to wakeups: WakeupRegistry) {
        switch notification {
        case .message(let workflowID, let topic): wakeups.signal(WakeupRegistry.messageKey(workflowID: workflowID, topic: topic))
        case .event(let workflowID, let key): wakeups.signal(WakeupRegistry.eventKey(workflowID: workflowID, key: key))
        case .stream(let workflowID, let key): wakeups.signal(WakeupRegistry.streamKey(workflowID: workflowID, key: key))
        case .completion(let workflowID): wakeups.signal(WakeupRegistry.completionKey(workflowID: workflowID))
        case .queue(let name): wakeups.signal(WakeupRegistry.queueKey(name))
        case .everything: wakeups.signalAll()
        }
    }

    /// How long a wait may go without re-checking the database: the polling interval, or a slow
    /// fallback when the database pushes notifications (only a lost notification needs it).
    var waitInterval: Duration {
        state.withLock { $0.notificationsActive } ? max(configuration.pollingInterval, configuration.notificationFallbackInterval)
            : configuration.pollingInterval
    }

    /// The current time in epoch milliseconds, strictly increasing within this process, so runs
    /// and messages created one after the other keep their order even within a millisecond. It
    /// never runs more than 100 ms ahead of the clock: past a thousand creations a second, ties
    /// are allowed rather than timestamps drifting into the future.
    func nextCreationTime() -> EpochMilliseconds {
        let now = Date().epochMilliseconds
        return state.withLock { state in
            state.lastCreationTime = max(now, min(state.lastCreationTime + 1, now + 100))
            return state.lastCreationTime
        }
    }

    /// The application version recorded on runs (valid after `launch()`).
    public var applicationVersion: String { state.withLock { $0.applicationVersion } }

    /// The executor ID recorded on runs.
    public var executorID: String { configuration.executorID }

    // MARK: Registration

    /// Registers a workflow under `name`; must happen before `launch()`.
    ///
    /// - Parameter maxRecoveryAttempts: after this many recoveries a run that keeps crashing the
    ///   process is set to `MAX_RECOVERY_ATTEMPTS_EXCEEDED` instead of being started again;
    ///   `nil` never gives up.
    @discardableResult
    public func register<Input: Codable & Sendable, Output: Codable & Sendable>(
        _ name: String,
        maxRecoveryAttempts: Int? = 100,
        _ body: @escaping @Sendable (WorkflowContext, Input) async throws -> Output
    ) throws -> Workflow<Input, Output> {
        let registered = RegisteredWorkflow(name: name, maxRecoveryAttempts: maxRecoveryAttempts) { context, input in
            let value = try input.value as? Input ?? PortableJSON.decodeInput(Input.self, from: input.text)
            let output = try await body(context, value)
            return RunOutput(text: try PortableJSON.encode(output), value: output)
        }
        try state.withLock { state in
            guard state.phase == .registering else { throw WorkflowError.registrationAfterLaunch(name) }
            guard state.workflows[name] == nil else { throw WorkflowError.duplicateRegistration(name) }
            state.workflows[name] = registered
        }
        return Workflow(name: name)
    }

    /// Registers a queue this process dequeues from; must happen before `launch()`.
    public func register(queue: WorkflowQueue) throws {
        let problems = queue.configurationProblems
        guard problems.isEmpty else { throw WorkflowError.invalidQueue(queue.name, problems: problems) }
        guard queue.name != WorkflowQueue.internalQueueName else {
            throw WorkflowError.invalidQueue(queue.name, problems: ["this name is reserved for the engine"])
        }
        try state.withLock { state in
            guard state.phase == .registering else { throw WorkflowError.registrationAfterLaunch(queue.name) }
            guard state.queues[queue.name] == nil else {
                throw WorkflowError.invalidQueue(queue.name, problems: ["a queue with this name is already registered"])
            }
            state.queues[queue.name] = queue
        }
    }

    /// The queues this process dequeues from, the engine's internal queue included.
    public var registeredQueues: [WorkflowQueue] { state.withLock { $0.queues.values.sorted { $0.name < $1.name } } }

    /// The names of the registered workflows.
    public var registeredWorkflowNames: [String] { state.withLock { $0.workflows.keys.sorted() } }

    // MARK: Lifecycle

    /// Starts the runtime: fixes the application version, starts the cancellation watchdog and
    /// resumes this executor's unfinished workflows.
    public func launch() async throws {
        let names = try state.withLock { state -> [String] in
            guard state.phase == .registering else { throw WorkflowError.notLaunched }
            return Array(state.workflows.keys)
        }
        let version = configuration.applicationVersion
            ?? (configuration.enablesPatching ? ApplicationVersion.patchingEnabled : ApplicationVersion.derive(workflowNames: names))
        let watchdog = Task { [weak self] in
            while !Task.isCancelled {
                guard let interval = self?.configuration.cancellationCheckInterval else { return }
                try? await Task.sleep(for: interval)
                await self?.stopRunsCancelledElsewhere()
            }
        }
        let queues = state.withLock { state in
            state.applicationVersion = version
            state.phase = .launched
            state.watchdog = watchdog
            return Array(state.queues.values)
        }
        guard role == .worker else {
            watchdog.cancel()
            return
        }
        let now = Date().epochMilliseconds
        for queue in queues { try await database.upsertQueue(queue, at: now) }
        if configuration.recoversPendingWorkflows {
            _ = try await recoverPendingWorkflows()
        }
        var runners = queues.map { queue in
            Task<Void, Never> { [weak self] in
                guard let self else { return }
                await self.runQueue(queue)
            }
        }
        for schedule in state.withLock({ $0.schedules }) {
            runners.append(Task<Void, Never> { [weak self] in
                guard let self else { return }
                await self.runSchedule(schedule)
            })
        }
        state.withLock { $0.queueRunners = runners }
    }

    /// Stops the runtime. Running workflows get `gracePeriod` to finish; the rest are stopped
    /// where they are and stay PENDING, so the next launch resumes them. Nothing is lost.
    public func shutdown(gracePeriod: Duration = .seconds(5)) async {
        let background = state.withLock { state -> [Task<Void, Never>] in
            let background = state.queueRunners + (state.watchdog.map { [$0] } ?? [])
            state.watchdog = nil
            state.queueRunners = []
            if state.phase != .stopped { state.phase = .stopped }
            return background
        }
        // Outcomes held to share a commit are written now, and later ones at once.
        database.stopLingering()
        for task in background { task.cancel() }
        wakeups.signalAll()
        for task in background { await task.value }
        // Runs claimed again are left PENDING for the next launch (those claimed later give up at once).
        let claimsTakenUpAgain = state.withLock { Array($0.claimsTakenUpAgain.values) }
        for task in claimsTakenUpAgain { task.cancel() }
        for task in claimsTakenUpAgain { await task.value }
        let deadline = ContinuousClock.now + gracePeriod
        while ContinuousClock.now < deadline, !state.withLock({ $0.running.isEmpty }) {
            try? await Task.sleep(for: .milliseconds(10))
        }
        let remaining = state.withLock { state -> [Task<RunOutput, any Error>] in
            for id in state.running.keys {
                state.running[id]?.stopReason = .shutdown
                state.running[id]?.task.cancel()
                state.running[id]?.timer?.cancel()
            }
            return state.running.values.map(\.task)
        }
        for task in remaining { _ = try? await task.value }
        deferredCheckpoints?.stop()
        wakeups.signalAll()
        await database.close()
    }

    func ensureLaunched() throws {
        guard state.withLock({ $0.phase == .launched }) else { throw WorkflowError.notLaunched }
    }

    /// The registered workflow a start names, once the runtime is launched (one look at the state).
    private func launchedWorkflow(named name: String) throws -> RegisteredWorkflow {
        let (launched, registered) = state.withLock { ($0.phase == .launched, $0.workflows[name]) }
        guard launched else { throw WorkflowError.notLaunched }
        guard let registered else { throw WorkflowError.unregisteredWorkflow(name) }
        return registered
    }

    // MARK: Starting workflows

    /// Starts a workflow and returns at once with a handle to it.
    ///
    /// With a workflow ID that was used before, nothing new runs: the handle refers to the
    /// existing run (finished or still running).
    public func startWorkflow<Input, Output>(
        _ workflow: Workflow<Input, Output>, input: Input, options: WorkflowOptions = WorkflowOptions()
    ) async throws -> WorkflowHandle<Output> {
        let registered = try launchedWorkflow(named: workflow.name)
        let id = try await start(
            registered, inputText: try PortableJSON.encodeInput(input), inputValue: input, options: options, parent: nil)
        return WorkflowHandle(workflowID: id, runtime: self)
    }

    /// Starts a workflow and waits for its output.
    public func runWorkflow<Input, Output>(
        _ workflow: Workflow<Input, Output>, input: Input, options: WorkflowOptions = WorkflowOptions()
    ) async throws -> Output {
        try await startWorkflow(workflow, input: input, options: options).result()
    }

    /// Starts a registered workflow by name with an input given as JSON (for clients and the CLI).
    public func startWorkflow(
        named name: String, input: JSONValue, options: WorkflowOptions = WorkflowOptions()
    ) async throws -> WorkflowHandle<JSONValue> {
        let registered = try launchedWorkflow(named: name)
        let id = try await start(
            registered, inputText: try PortableJSON.encodeInput(input), inputValue: input, options: options, parent: nil)
        return WorkflowHandle(workflowID: id, runtime: self)
    }

    /// A handle to an existing run, whatever process started it.
    public func retrieveWorkflow<Output>(id: String, as type: Output.Type = JSONValue.self) -> WorkflowHandle<Output> {
        WorkflowHandle(workflowID: id, runtime: self)
    }

    func registeredWorkflow(named name: String) throws -> RegisteredWorkflow {
        guard let registered = state.withLock({ $0.workflows[name] }) else {
            throw WorkflowError.unregisteredWorkflow(name)
        }
        return registered
    }

    /// A child's link to its parent: the parent's context and the slot that records the child.
    struct ParentLink {
        let context: WorkflowContext
        let functionID: Int
    }

    /// Inserts the run (or finds the existing one) and executes it if this call created it, or
    /// leaves it ENQUEUED (DELAYED) for a queue's workers when the options name a queue.
    ///
    /// `inputValue` is the input itself, handed to a run this call executes here instead of
    /// decoding `inputText` again.
    func start(
        _ registered: RegisteredWorkflow, inputText: String, inputValue: (any Sendable)? = nil, options: WorkflowOptions,
        parent: ParentLink?
    ) async throws -> String {
        let problems = options.problems
        guard problems.isEmpty else { throw WorkflowError.invalidOptions(problems) }
        if let queueName = options.queueName, options.priority != nil,
            let queue = state.withLock({ $0.queues[queueName] }), !queue.priorityEnabled
        {
            throw WorkflowError.invalidOptions(["queue '\(queueName)' does not have priorities enabled"])
        }
        let now = nextCreationTime()
        let id = options.workflowID ?? parent.map { "\($0.context.workflowID)-\($0.functionID)" } ?? UUID().uuidString
        let queued = options.queueName != nil
        var deadline = queued ? nil : options.timeout.map { now + $0.milliseconds }
        var timeoutMilliseconds = options.timeout?.milliseconds
        if let parentDeadline = parent?.context.deadline {
            if queued {
                // A queued child's deadline is set when it is claimed, from its timeout (as DBOS does):
                // it gets what is left of its parent's time, unless its own timeout is shorter.
                let left = max(1, parentDeadline - now)
                timeoutMilliseconds = min(timeoutMilliseconds ?? left, left)
            } else {
                deadline = min(deadline ?? parentDeadline, parentDeadline)
            }
        }
        let state: WorkflowState = !queued ? .pending : (options.delay != nil ? .delayed : .enqueued)
        // An enqueue on a queue this process serves starts the run at once when a slot is free
        // and no older run waits, saving the queue runner's claim (a round trip and a commit).
        let claimsAtOnce = parent == nil && options.delay == nil && options.deduplicationID == nil
            && (options.applicationVersion == nil || options.applicationVersion == applicationVersion)
            && options.queueName.map(reserveQueueSlot) == true
        // The slot goes back unless the run executes here, which then holds it (`execute`).
        var holdsReservedSlot = claimsAtOnce
        defer { if holdsReservedSlot, let queueName = options.queueName { releaseQueueSlot(queueName) } }
        if claimsAtOnce { deadline = options.timeout.map { now + $0.milliseconds } }
        var insert = WorkflowInsert(
            workflowID: id, state: state, name: registered.name, inputs: inputText,
            executorID: configuration.executorID,
            applicationVersion: options.applicationVersion ?? (role == .client ? nil : applicationVersion),
            queueName: options.queueName, timeoutMilliseconds: timeoutMilliseconds, deadline: deadline,
            parentWorkflowID: parent?.context.workflowID, priority: options.priority ?? 0,
            deduplicationID: options.deduplicationID, partitionKey: options.partitionKey,
            delayUntil: options.delay.map { now + $0.milliseconds }, attributes: options.attributes?.jsonText, now: now,
            parentOperation: parent.map {
                OperationRecord(
                    workflowID: $0.context.workflowID, functionID: $0.functionID, functionName: registered.name,
                    output: nil, error: nil, childWorkflowID: id, startedAt: now, completedAt: now)
            })
        insert.claimsWhenQueueIdle = claimsAtOnce
        let outcome = try await database.insertWorkflow(insert)
        switch outcome {
        case .inserted, .claimed:
            if case .inserted = outcome, let queueName = options.queueName {
                // Left waiting on its queue for the queue's runners.
                _ = self.state.withLock { $0.queuesSeenIdle.remove(queueName) }
                wakeups.signal(WakeupRegistry.queueKey(queueName))
                break
            }
            let record = WorkflowRecord(
                workflowID: id, state: .pending, name: registered.name, inputs: inputText,
                executorID: configuration.executorID, applicationVersion: applicationVersion, queueName: options.queueName,
                createdAt: now, updatedAt: now, recoveryAttempts: 1, timeoutMilliseconds: insert.timeoutMilliseconds,
                deadline: deadline, parentWorkflowID: parent?.context.workflowID, priority: insert.priority,
                partitionKey: insert.partitionKey, attributes: insert.attributes)
            execute(record, registered: registered, checkpoints: [:], input: inputValue, holdingReservedSlot: holdsReservedSlot)
            holdsReservedSlot = false
        case .existing(let record):
            guard record.name == registered.name else {
                throw WorkflowError.conflictingWorkflowID(id: id, existingName: record.name, requestedName: registered.name)
            }
        case .deduplicated(let existingID):
            switch options.deduplicationPolicy {
            case .reject:
                throw WorkflowError.queueDeduplicated(
                    queue: options.queueName ?? "", deduplicationID: options.deduplicationID ?? "", holder: existingID)
            case .returnExisting:
                return existingID
            }
        }
        return id
    }

    /// Takes a slot of `queueName` for an enqueue that may start its run at once: only for a
    /// launched worker serving the queue, whose limits are local (worker concurrency, no global
    /// concurrency, rate limit or partitions), with a slot free. `releaseQueueSlot` gives it back
    /// once the run is executing (and counted as such) or left ENQUEUED.
    private func reserveQueueSlot(_ queueName: String) -> Bool {
        guard role == .worker else { return false }
        return state.withLock { state in
            guard state.phase == .launched, state.recoveriesInProgress == 0, let queue = state.queues[queueName],
                queue.globalConcurrency == nil, queue.rateLimit == nil, !queue.partitioned,
                state.queueSlotsTaken[queueName, default: 0] < queue.workerConcurrency ?? Int.max
            else { return false }
            state.queueSlotsTaken[queueName, default: 0] += 1
            state.queueClaimsInFlight += 1
            return true
        }
    }

    func releaseQueueSlot(_ queueName: String) {
        state.withLock { state in
            state.queueSlotsTaken[queueName, default: 1] -= 1
            state.queueClaimsInFlight -= 1
        }
    }

    // MARK: Executing

    /// Runs a workflow's code in a task of its own, tracked so it can be cancelled, awaited and
    /// stopped at shutdown. The task records the outcome when the code returns or throws.
    ///
    /// `holdingReservedSlot`: the caller reserved a slot of the run's queue (`reserveQueueSlot`),
    /// which the run takes over (or, if it does not start, gives back).
    func execute(
        _ record: WorkflowRecord, registered: RegisteredWorkflow, checkpoints: [Int: OperationRecord],
        input value: (any Sendable)? = nil, holdingReservedSlot: Bool = false
    ) {
        let id = record.workflowID
        let context = WorkflowContext(
            workflowID: id, workflowName: registered.name, deadline: record.deadline, runtime: self,
            checkpoints: checkpoints, attributes: record.attributes.flatMap { try? JSONValue(parsing: $0) })
        // The tasks capture these fields, not the whole record: a captured value is copied into
        // the closure and into its frames, which a run keeps for as long as it is (say) asleep.
        let input = RunInput(text: record.inputs, value: value)
        let timeoutMilliseconds = record.timeoutMilliseconds
        // The task is created under the lock, so that its end (`finishRunning`, which takes the
        // lock) always finds it registered; the thread that will run it is woken after the unlock.
        WorkflowThreads.withWakeupsDeferred { state.withLock { state in
            if holdingReservedSlot, let queueName = record.queueName {
                // The reservation ends here: the slot is the run's from now on (counted below) or free.
                state.queueSlotsTaken[queueName, default: 1] -= 1
                state.queueClaimsInFlight -= 1
            }
            // After shutdown began (a run claimed by its enqueue meanwhile), the run stays PENDING
            // for the next launch rather than start on a database about to close.
            guard state.running[id] == nil, state.phase != .stopped else { return }
            // On the database's workflow threads, a statement can often run without a thread hop.
            let task = Task<RunOutput, any Error>(executorPreference: database.workflowExecutor) {
                defer { self.finishRunning(id) }
                do {
                    let output = try await withTaskCancellationHandler {
                        try await registered.run(context, input)
                    } onCancel: {
                        context.cancelConcurrentSteps()
                    }
                    self.endCode(of: id)
                    guard try await self.recordOutcome(of: context, state: .success, output: output.text, error: nil) else {
                        throw OutcomeStoredElsewhere()
                    }
                    self.state.withLock { $0.recentOutputs.remember(output.text, of: id) }
                    return output
                } catch let elsewhere as OutcomeStoredElsewhere {
                    throw elsewhere
                } catch {
                    self.endCode(of: id)
                    switch self.stopReason(of: id) {
                    case .shutdown:
                        // A step's checkpoint still waiting is written, so the next launch does not run it again.
                        await context.writeDeferredCheckpointInTaskOfItsOwn()
                        throw WorkflowError.notLaunched
                    case .cancelled(let reason):
                        await context.writeDeferredCheckpointInTaskOfItsOwn()
                        throw WorkflowError.cancelled(workflowID: id, reason: reason)
                    case nil:
                        // This run's own cancellation is recorded by whoever cancelled it. Another
                        // run's cancellation (an awaited child that timed out or was cancelled) is
                        // this run's failure and is recorded like any other error.
                        if case WorkflowError.cancelled(let cancelledID, _) = error, cancelledID == id {
                            await context.writeDeferredCheckpointInTaskOfItsOwn()
                            throw error
                        }
                        guard try await self.recordOutcome(
                            of: context, state: .error, output: nil, error: PortableError(error).storedText)
                        else { throw OutcomeStoredElsewhere() }
                        throw error
                    }
                }
            }
            var running = RunningWorkflow(
                task: task, createdAt: record.createdAt, queueName: record.queueName, partitionKey: record.partitionKey)
            if let deadline = record.deadline {
                running.timer = Task { [weak self] in
                    let wait = deadline - Date().epochMilliseconds
                    if wait > 0 { try? await Task.sleep(for: .milliseconds(wait)) }
                    guard !Task.isCancelled else { return }
                    await self?.cancelForTimeout(id, timeoutMilliseconds: timeoutMilliseconds)
                }
            }
            state.running[id] = running
            if let queueName = record.queueName { state.queueSlotsTaken[queueName, default: 0] += 1 }
        } }
    }

    /// Records a run's outcome, with the checkpoint of its last step when that one still waits
    /// (one commit for both); returns whether the run was still PENDING.
    ///
    /// When it was not, the checkpoint is checked as a step's own write would have been: a run
    /// cancelled meanwhile throws its cancellation, and another execution that recorded a
    /// different result at that step supersedes this one. When the shared commit fails, the
    /// checkpoint is written alone first, as the step would have: if that fails too, a run about
    /// to succeed fails with that error instead (the caller records it), as after a step whose
    /// checkpoint could not be written.
    private func recordOutcome(
        of context: WorkflowContext, state: WorkflowState, output: String?, error: String?
    ) async throws -> Bool {
        // An execution another one superseded leaves the outcome to that one.
        if let supersession = context.supersession { throw supersession }
        let id = context.workflowID
        if let checkpoint = try await context.takeDeferredCheckpoint() {
            do {
                let completed = try await database.completeWorkflow(
                    id: id, state: state, output: output, error: error, checkpoint: checkpoint, at: Date().epochMilliseconds,
                    mayLinger: { [weak self] in self?.outcomeMayLinger(id) ?? false })
                if completed {
                    context.remember(checkpoint)
                    return true
                }
                // The slot was taken: by this checkpoint (a commit whose acknowledgement was lost) or
                // an equal one, and the outcome is still to write; or the run is no longer PENDING.
                try await context.confirmWritten(checkpoint)
            } catch let failure where !(failure is WorkflowError) {
                do {
                    try await context.confirmWritten(checkpoint)
                } catch let stepFailure where !(stepFailure is WorkflowError) {
                    // Kept for a stopped run's last write (a cancellation that interrupted this one).
                    context.restoreDeferredCheckpoint(checkpoint)
                    if state == .success { throw stepFailure }
                }
            }
        }
        return try await database.completeWorkflow(
            id: id, state: state, output: output, error: error, checkpoint: nil, at: Date().epochMilliseconds,
            mayLinger: { [weak self] in self?.outcomeMayLinger(id) ?? false })
    }

    /// Whether a run's outcome may wait to share a commit: nobody in this process waits for it (a
    /// waiter that comes later ends the wait, `waitingForOutcome`), and its queue's slots are not
    /// counted in the database (global concurrency), where a held outcome would hold one for every
    /// worker. Others (another process's `result()`, a client) see it up to that linger later.
    private func outcomeMayLinger(_ id: String) -> Bool {
        state.withLock { state in
            guard state.phase == .launched, state.outcomeWaiters[id] == nil, let run = state.running[id] else {
                return false
            }
            return run.queueName.flatMap { state.queues[$0]?.globalConcurrency } == nil
        }
    }

    /// Runs `body` while counted as a caller waiting for the run's outcome: from then on the
    /// run's outcome is written at once, and one already held is written now.
    private func waitingForOutcome<T>(of id: String, _ body: () async throws -> T) async throws -> T {
        let isLocal = state.withLock { state -> Bool in
            state.outcomeWaiters[id, default: 0] += 1
            return state.running[id] != nil
        }
        defer {
            state.withLock { state in
                let left = state.outcomeWaiters[id, default: 1] - 1
                state.outcomeWaiters[id] = left > 0 ? left : nil
            }
        }
        if isLocal { database.expediteCompletions() }
        return try await body()
    }

    /// Marks that a run's code has ended. Its queue slot is free from now on (its outcome may
    /// still wait to share a commit: a short run on a queue of concurrency 1 must not hold the
    /// next one back meanwhile), and its deadline no longer turns it into a timeout.
    private func endCode(of id: String) {
        let wakesQueue = state.withLock { state -> String? in
            guard let run = state.running[id], !run.codeEnded else { return nil }
            state.running[id]?.codeEnded = true
            guard let queueName = run.queueName else { return nil }
            return Self.freeQueueSlot(of: queueName, in: &state)
        }
        if let wakesQueue { wakeups.signal(WakeupRegistry.queueKey(wakesQueue)) }
    }

    private func finishRunning(_ id: String) {
        let (finished, wakesQueue) = state.withLock { state -> (RunningWorkflow?, String?) in
            let finished = state.running.removeValue(forKey: id)
            guard let finished, let queueName = finished.queueName else { return (finished, nil) }
            guard finished.codeEnded else { return (finished, Self.freeQueueSlot(of: queueName, in: &state)) }
            // The slot here was freed when the code ended; a global limit counts the run until its outcome
            // is written, which is now: runs waiting for that limit may start.
            let counted = state.queues[queueName].map { $0.globalConcurrency != nil } ?? false
            return (finished, counted && !state.queuesSeenIdle.contains(queueName) ? queueName : nil)
        }
        finished?.timer?.cancel()
        wakeups.signal(WakeupRegistry.completionKey(workflowID: id))
        if let wakesQueue { wakeups.signal(WakeupRegistry.queueKey(wakesQueue)) }
        if let claim = finished?.claimedAgain {
            state.withLock { state in
                // Created under the lock, so its own removal (which takes the lock) comes after.
                state.claimsTakenUpAgain[id] = Task {
                    await self.executeClaimedAgain(id, claim)
                    _ = self.state.withLock { $0.claimsTakenUpAgain.removeValue(forKey: id) }
                }
            }
        }
    }

    /// A queued run freed a slot: returns the queue whose runner should look again, unless it
    /// found nothing waiting last time (whatever was enqueued since woke it, or its polling finds it).
    private static func freeQueueSlot(of queueName: String, in state: inout State) -> String? {
        state.queueSlotsTaken[queueName, default: 1] -= 1
        return state.queuesSeenIdle.contains(queueName) ? nil : queueName
    }

    func stopReason(of id: String) -> StopReason? {
        state.withLock { $0.running[id]?.stopReason }
    }

    func localTask(of id: String) -> Task<RunOutput, any Error>? {
        state.withLock { $0.running[id]?.task }
    }

    /// Stops local runs (already marked CANCELLED in the database) at their next operation.
    func stopLocalRuns(_ ids: [String], reason: String?) {
        state.withLock { state in
            for id in ids where state.running[id] != nil {
                if state.running[id]?.stopReason == nil { state.running[id]?.stopReason = .cancelled(reason) }
                state.running[id]?.task.cancel()
            }
        }
        for id in ids { wakeups.signal(WakeupRegistry.completionKey(workflowID: id)) }
    }

    private func cancelForTimeout(_ id: String, timeoutMilliseconds: Int64?) async {
        // A run whose code ended in time is not timed out while its outcome is being written.
        guard state.withLock({ $0.running[id].map { !$0.codeEnded } ?? true }) else { return }
        // A child that inherited its deadline times out with the ancestor it inherited it from: the ancestor
        // is cancelled with its whole tree in one statement, as its own timer would, whichever timer fires
        // first. The tree then ends CANCELLED together (not the parent ERROR for a cancelled child), and
        // resuming the ancestor resumes the descendants cancelled with it.
        var (target, timeout) = (id, timeoutMilliseconds)
        if var current = try? await database.workflow(id: id), let deadline = current.deadline {
            while let parentID = current.parentWorkflowID, let parent = try? await database.workflow(id: parentID),
                parent.deadline == deadline, !parent.state.isTerminal
            {
                (target, timeout, current) = (parentID, parent.timeoutMilliseconds, parent)
            }
        }
        let reason = "timed out" + (timeout.map { " after \(Duration.milliseconds($0))" } ?? " (deadline passed)")
        let error = PortableError(name: "DBOSTimeout", message: "workflow '\(target)' \(reason)")
        let cancelled = (try? await database.cancelWorkflows(
            ids: [target], includeDescendants: true, error: error.storedText, at: Date().epochMilliseconds)) ?? []
        stopLocalRuns(cancelled.isEmpty ? [id] : cancelled, reason: reason)
    }

    /// The watchdog's check: runs of this process that another process cancelled stop here too.
    /// It asks for the stopped runs created in the spans of time this process's running runs were
    /// created in, from an index, rather than for the state of every running run: with many runs
    /// asleep, a list of all their IDs grew each query past the databases' parameter limits.
    private func stopRunsCancelledElsewhere() async {
        let createdAt = state.withLock { $0.running.values.map(\.createdAt) }
        let ranges = Self.createdAtRanges(createdAt, maximumCount: Self.watchdogRangeCount)
        guard !ranges.isEmpty, let stopped = try? await database.stoppedWorkflowIDs(createdIn: ranges) else { return }
        let running = state.withLock { state in stopped.filter { state.running[$0] != nil } }
        if !running.isEmpty { stopLocalRuns(running, reason: nil) }
    }

    /// How many creation-time ranges the watchdog asks about at most.
    static let watchdogRangeCount = 8

    /// At most `maximumCount` ranges that together hold every time of `times`, split at the widest
    /// gaps between them: one run still running since last week among thousands started in the
    /// last minute makes the watchdog read the runs cancelled at those two moments, not every run
    /// cancelled in the week between.
    static func createdAtRanges(_ times: [EpochMilliseconds], maximumCount: Int) -> [ClosedRange<EpochMilliseconds>] {
        guard maximumCount > 0, !times.isEmpty else { return [] }
        let sorted = times.sorted()
        // The indices after which the widest gaps are, kept in a short list ordered widest first.
        let wanted = maximumCount - 1
        var splits: [(gap: EpochMilliseconds, after: Int)] = []
        for index in sorted.indices.dropLast() where wanted > 0 {
            // Times this far apart are not real creation times, but must not crash the watchdog.
            let (difference, overflowed) = sorted[index + 1].subtractingReportingOverflow(sorted[index])
            let gap = overflowed ? EpochMilliseconds.max : difference
            guard gap > 0, splits.count < wanted || gap > splits[splits.count - 1].gap else { continue }
            let position = splits.firstIndex { $0.gap < gap } ?? splits.count
            splits.insert((gap, index), at: position)
            if splits.count > wanted { splits.removeLast() }
        }
        var ranges: [ClosedRange<EpochMilliseconds>] = []
        var start = 0
        for split in splits.map(\.after).sorted() {
            ranges.append(sorted[start]...sorted[split])
            start = split + 1
        }
        ranges.append(sorted[start]...sorted[sorted.count - 1])
        return ranges
    }

    // MARK: Waiting for outcomes

    /// Waits until the run reaches a final state and returns its row.
    func awaitOutcome(of id: String) async throws -> WorkflowRecord {
        try await waitingForOutcome(of: id) { try await awaitStoredOutcome(of: id) }
    }

    private func awaitStoredOutcome(of id: String) async throws -> WorkflowRecord {
        try await waitForLocalRunToEnd(id)
        // A run that has ended is read once; only a wait needs the outcome to notify this process.
        guard let first = try await database.workflow(id: id) else { throw WorkflowError.nonexistentWorkflow(id) }
        if first.state.isTerminal { return first }
        // Before the next read: an outcome committed after it notifies this process.
        await database.awaitCompletion(of: id)
        defer { database.stopAwaitingCompletion(of: id) }
        while true {
            let ticket = wakeups.ticket(for: WakeupRegistry.completionKey(workflowID: id))
            guard let record = try await database.workflow(id: id) else {
                wakeups.cancel(ticket)
                throw WorkflowError.nonexistentWorkflow(id)
            }
            if record.state.isTerminal {
                wakeups.cancel(ticket)
                return record
            }
            await wakeups.wait(ticket, timeout: waitInterval)
            try Task.checkCancellation()
        }
    }

    /// Waits until this process's task for the run (if any) has ended. The caller's cancellation
    /// ends the wait with `CancellationError` but not the run: awaiting `task.value` directly
    /// would ignore it, so a timed-out or cancelled workflow waiting for another run's result, or
    /// a client giving up on `result()`, would be held until that run finished.
    private func waitForLocalRunToEnd(_ id: String) async throws {
        while true {
            let ticket = wakeups.ticket(for: WakeupRegistry.completionKey(workflowID: id))
            guard localTask(of: id) != nil else {
                wakeups.cancel(ticket)
                return
            }
            await wakeups.wait(ticket, timeout: configuration.pollingInterval)
            try Task.checkCancellation()
        }
    }

    /// A local run's output as `Output`: the value it returned when that is one, else decoded from
    /// its JSON (a handle that asks for another type, `JSONValue` say).
    private static func typed<Output: Decodable>(_ output: RunOutput, as type: Output.Type) throws -> Output {
        if let value = output.value as? Output { return value }
        return try PortableJSON.decode(Output.self, from: output.text)
    }

    /// The output of a finished run, or the error that ended it.
    func outcome<Output: Decodable>(of id: String, as type: Output.Type) async throws -> Output {
        try await waitingForOutcome(of: id) { try await localOrStoredOutcome(of: id, as: type) }
    }

    private func localOrStoredOutcome<Output: Decodable>(of id: String, as type: Output.Type) async throws -> Output {
        if let task = localTask(of: id) {
            try await waitForLocalRunToEnd(id)
            // A local run hands back its own output or error values; a cancelled one, and one whose
            // outcome another writer decided first, are reported as stored.
            do {
                return try Self.typed(try await task.value, as: Output.self)
            } catch let error as WorkflowError where error.isCancellation || error.isSupersededExecution {
            } catch is OutcomeStoredElsewhere {}
        }
        if let output = state.withLock({ $0.recentOutputs.output(of: id) }) {
            return try PortableJSON.decode(Output.self, from: output)
        }
        let record = try await awaitOutcome(of: id)
        switch record.state {
        case .success:
            return try PortableJSON.decode(Output.self, from: record.output)
        case .error:
            throw WorkflowError.failed(workflowID: id, error: PortableError(storedText: record.error ?? "unknown error"))
        case .cancelled:
            throw WorkflowError.cancelled(workflowID: id, reason: record.error.map { PortableError(storedText: $0).message })
        case .maxRecoveryAttemptsExceeded:
            throw WorkflowError.maxRecoveryAttemptsExceeded(workflowID: id, attempts: record.recoveryAttempts)
        case .pending, .enqueued, .delayed:
            throw WorkflowError.nonexistentWorkflow(id)
        }
    }

}

/// Thrown by a run's task whose outcome was not written because the run was no longer PENDING: a
/// cancellation (this process's or another's) or another execution decided it first, possibly
/// while this outcome waited to share a commit. The run's handles then report what is stored.
struct OutcomeStoredElsewhere: Error {}
