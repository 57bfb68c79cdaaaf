import Foundation
import Synchronization

/// What a workflow's code uses to run durable operations: steps, sleeps, messages, events and
/// child workflows. Each operation takes the next checkpoint slot (DBOS's function ID) in call
/// order, so a replay after a crash finds every completed operation's recorded result.
public final class WorkflowContext: Sendable {
    /// The run's ID.
    public let workflowID: String
    /// The registered workflow name.
    public let workflowName: String
    /// The durable deadline of the run, if it has a timeout.
    let deadline: EpochMilliseconds?
    let runtime: DBOSRuntime
    /// The free-form data stored with the run (`WorkflowOptions.attributes`).
    public let attributes: JSONValue?

    private struct State {
        var nextFunctionID = 0
        var checkpoints: [Int: OperationRecord]
        /// Cancels the tasks of steps started with `startStep`, which do not inherit the workflow's cancellation.
        var concurrentStepCancellers: [@Sendable () -> Void] = []
        /// Set once the run was stopped: steps started later are cancelled at once.
        var concurrentStepsCancelled = false
        /// A finished step's checkpoint not written yet (`DBOSConfiguration.StepCheckpointWrites`).
        var deferred = DeferredCheckpoint.none
        /// Set when another execution recorded a different result at an operation whose result
        /// this one had already used: every later operation of this execution throws it.
        var supersession: WorkflowError?
    }

    private enum DeferredCheckpoint {
        case none
        /// Waits for the run's next operation or outcome.
        case waiting(OperationRecord)
        /// A task is writing it; these wait for that write to end.
        case writing(waiters: [CheckedContinuation<Void, Never>])
    }

    private let state: Mutex<State>

    /// The topic used when none is given (DBOS's convention).
    static let nullTopic = "__null__topic__"

    init(
        workflowID: String, workflowName: String, deadline: EpochMilliseconds?, runtime: DBOSRuntime,
        checkpoints: [Int: OperationRecord], attributes: JSONValue? = nil
    ) {
        self.attributes = attributes
        self.workflowID = workflowID
        self.workflowName = workflowName
        self.deadline = deadline
        self.runtime = runtime
        state = Mutex(State(checkpoints: checkpoints))
    }

    /// A step whose body is running.
    struct StepScope: Sendable {
        let name: String
        /// The step's checkpoint slot, which events and stream values written in its body belong to.
        let functionID: Int
    }

    /// Set while a step body runs: most durable operations are not allowed there, nested steps run
    /// inline, and events and stream values are written as part of the step.
    @TaskLocal static var currentStep: StepScope?

    /// In a step's body, that step's checkpoint slot (DBOS's step ID; a nested step's is the outer
    /// step's, as it has none of its own); nil outside steps. With `workflowID`, it makes an
    /// idempotency key for the step's external calls that stays the same when the step runs again.
    public var stepID: Int? { Self.currentStep?.functionID }

    /// Takes the next checkpoint slot. Synchronous, so slots follow call order even when the
    /// operations then run concurrently.
    func reserveFunctionID() -> Int {
        state.withLock { state in
            defer { state.nextFunctionID += 1 }
            return state.nextFunctionID
        }
    }

    /// The checkpoint recorded at a slot in an earlier execution, checked against the operation
    /// the code runs now.
    func recordedOperation(_ functionID: Int, name: String) throws -> OperationRecord? {
        guard let record = state.withLock({ $0.checkpoints[functionID] }) else { return nil }
        guard record.functionName == name else {
            throw WorkflowError.nondeterministicReplay(
                workflowID: workflowID, functionID: functionID, recorded: record.functionName, requested: name)
        }
        return record
    }

    /// The error to throw when this run has been stopped.
    func cancellationError() -> any Error {
        switch runtime.stopReason(of: workflowID) {
        case .shutdown: WorkflowError.notLaunched
        case .cancelled(let reason): WorkflowError.cancelled(workflowID: workflowID, reason: reason)
        case nil: WorkflowError.cancelled(workflowID: workflowID, reason: nil)
        }
    }

    func checkNotCancelled() throws {
        if Task.isCancelled { throw cancellationError() }
    }

    private func requireOutsideStep(_ operation: String) throws {
        if let step = Self.currentStep {
            throw WorkflowError.invalidContext("\(operation) cannot be called inside step '\(step.name)'; call it from the workflow")
        }
    }

    /// Writes a checkpoint. When another execution already wrote this slot, its result wins and is
    /// returned, so every execution continues with the same value.
    func record(_ record: OperationRecord) async throws -> OperationRecord {
        let (existing, workflowState) = try await runtime.database.recordOperation(record)
        if let existing {
            guard existing.functionName == record.functionName else {
                throw WorkflowError.nondeterministicReplay(
                    workflowID: workflowID, functionID: record.functionID, recorded: existing.functionName,
                    requested: record.functionName)
            }
            remember(existing)
            return existing
        }
        guard let workflowState else { throw WorkflowError.nonexistentWorkflow(workflowID) }
        remember(record)
        if workflowState == .cancelled || workflowState == .maxRecoveryAttemptsExceeded {
            runtime.stopLocalRuns([workflowID], reason: nil)
            throw cancellationError()
        }
        return record
    }

    /// The operations recorded for this run, by slot: those loaded when this execution began (after a
    /// crash, a fork) and those it wrote since. What `DBOSRuntime.listSteps` reads, without its two
    /// round trips to the database.
    package var recordedSteps: [StepInfo] {
        state.withLock { Array($0.checkpoints.values) }.sorted { $0.functionID < $1.functionID }.map(StepInfo.init)
    }

    func remember(_ record: OperationRecord) {
        state.withLock { $0.checkpoints[record.functionID] = record }
    }

    private static var now: EpochMilliseconds { Date().epochMilliseconds }

    // MARK: Deferred step checkpoints

    /// The error that stopped this execution when another one took the run over, if that happened.
    var supersession: WorkflowError? { state.withLock { $0.supersession } }

    /// Keeps a finished step's checkpoint for the run's next operation or outcome instead of
    /// writing it now. False when steps write their checkpoints before returning, or when another
    /// step's checkpoint already waits (concurrent steps): the caller writes its own at once.
    private func deferCheckpoint(_ record: OperationRecord) -> Bool {
        guard let watch = runtime.deferredCheckpoints else { return false }
        let deferred = state.withLock { state -> Bool in
            guard case .none = state.deferred else { return false }
            state.deferred = .waiting(record)
            return true
        }
        if deferred { watch.watch(self) }
        return deferred
    }

    /// Writes the checkpoint a finished step left waiting, or waits for the write another task
    /// began; returns at once when none waits. Every durable operation calls it before it does
    /// anything, so a step's checkpoint is durable before the run acts on the step's result; the
    /// spec interpreter calls it before it reports the next step as started.
    package func writeDeferredCheckpoint() async throws {
        enum Turn {
            case done
            case write(OperationRecord)
            case wait
        }
        while true {
            let turn = try state.withLock { state -> Turn in
                if let supersession = state.supersession { throw supersession }
                switch state.deferred {
                case .none:
                    return .done
                case .waiting(let record):
                    state.deferred = .writing(waiters: [])
                    return .write(record)
                case .writing:
                    return .wait
                }
            }
            switch turn {
            case .done:
                return
            case .write(let record):
                runtime.deferredCheckpoints?.unwatch(self)
                try await writeTaken(record)
                return
            case .wait:
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let waits = state.withLock { state -> Bool in
                        guard case .writing(var waiters) = state.deferred else { return false }
                        waiters.append(continuation)
                        state.deferred = .writing(waiters: waiters)
                        return true
                    }
                    if !waits { continuation.resume() }
                }
                // Look again: a write that failed left the checkpoint waiting, for this call to write.
            }
        }
    }

    /// How long a write of a waiting checkpoint that nobody awaits (the watch's, a stopped run's)
    /// may take before it is given up: a database that is away must not hold a shutdown, and a run
    /// waiting for that write (which it cannot cancel) then writes the checkpoint itself.
    static let backgroundWriteTimeLimit: Duration = .seconds(2)

    /// Writes the checkpoint a finished step left waiting in a task of its own, which the caller's
    /// cancellation does not reach (a cancelled or shut-down run's checkpoint is still written, so
    /// a resume does not run the step again), given up after `backgroundWriteTimeLimit`. A failure
    /// is not reported: the checkpoint stays waiting, and the step runs again if nothing writes it.
    func writeDeferredCheckpointInTaskOfItsOwn() async {
        guard state.withLock({ state in if case .none = state.deferred { false } else { true } }) else { return }
        let write = Task { try await self.writeDeferredCheckpoint() }
        let limit = Task {
            try await Task.sleep(for: Self.backgroundWriteTimeLimit)
            write.cancel()
        }
        _ = try? await write.value
        limit.cancel()
    }

    /// Puts back a checkpoint `takeDeferredCheckpoint` took, when the outcome that carried it and
    /// its own write both failed and the database does not have it.
    func restoreDeferredCheckpoint(_ record: OperationRecord) {
        state.withLock { state in
            guard case .none = state.deferred, state.checkpoints[record.functionID] == nil else { return }
            state.deferred = .waiting(record)
        }
    }

    /// Takes the checkpoint a finished step left waiting, for the run's outcome to carry into the
    /// same commit (after waiting for a write another task began).
    func takeDeferredCheckpoint() async throws -> OperationRecord? {
        while true {
            let (record, busy) = state.withLock { state -> (OperationRecord?, Bool) in
                switch state.deferred {
                case .none:
                    return (nil, false)
                case .waiting(let record):
                    state.deferred = .none
                    return (record, false)
                case .writing:
                    return (nil, true)
                }
            }
            guard busy else {
                if record != nil { runtime.deferredCheckpoints?.unwatch(self) }
                return record
            }
            try await writeDeferredCheckpoint()
        }
    }

    /// Writes a deferred checkpoint this call took; a failed write leaves it waiting again, for the
    /// run's next operation or outcome (not for the watch: a write that fails for good, a value
    /// the database refuses, would be tried over and over).
    private func writeTaken(_ record: OperationRecord) async throws {
        do {
            try await confirmWritten(record)
            finishWrite(of: record, stored: true)
        } catch {
            // A checkpoint the database kept (for a run cancelled meanwhile, say) is done with.
            finishWrite(of: record, stored: state.withLock { $0.checkpoints[record.functionID] != nil })
            throw error
        }
    }

    private func finishWrite(of record: OperationRecord, stored: Bool) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard case .writing(let waiters) = state.deferred else { return [] }
            state.deferred = stored ? .none : .waiting(record)
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Writes a checkpoint whose result the workflow already used (or finds it written by the
    /// run's outcome), and checks what a step's own write checks: the run still exists and was
    /// not cancelled meanwhile. When another execution recorded a different result there first,
    /// this execution cannot take its result back: it is superseded, and stops.
    func confirmWritten(_ record: OperationRecord) async throws {
        let (existing, workflowState) = try await runtime.database.recordOperation(record)
        guard let workflowState else { throw WorkflowError.nonexistentWorkflow(workflowID) }
        let stored = existing ?? record
        remember(stored)
        guard stored.functionName == record.functionName, stored.output == record.output, stored.error == record.error else {
            let supersession = WorkflowError.supersededExecution(workflowID: workflowID, functionID: record.functionID)
            state.withLock { $0.supersession = supersession }
            throw supersession
        }
        if workflowState == .cancelled || workflowState == .maxRecoveryAttemptsExceeded {
            runtime.stopLocalRuns([workflowID], reason: nil)
            throw cancellationError()
        }
    }

    // MARK: Steps

    /// Runs `body` as a step: its output (or final error) is checkpointed before the run's next
    /// durable operation starts, or with its outcome (`DBOSConfiguration.stepCheckpointWrites`);
    /// after a crash the recorded result is returned without running `body` again.
    ///
    /// A step whose body throws is retried as `retry` says. Inside another step's body it runs
    /// inline, without a checkpoint of its own.
    public func runStep<T: Codable & Sendable>(
        _ name: String, retry: StepRetryPolicy = .none, _ body: @Sendable () async throws -> T
    ) async throws -> T {
        if Self.currentStep != nil { return try await body() }
        return try await executeStep(functionID: reserveFunctionID(), name: name, retry: retry, body: body)
    }

    /// Runs a step that returns nothing.
    public func runStep(
        _ name: String, retry: StepRetryPolicy = .none, _ body: @Sendable () async throws -> Void
    ) async throws {
        let _: JSONValue = try await runStep(name, retry: retry) {
            try await body()
            return .null
        }
    }

    /// Starts a step concurrently with the workflow's other work. Its checkpoint slot is taken
    /// now, in call order, so concurrent steps replay exactly; await the returned task's `value`.
    ///
    /// Inside another step's body it runs concurrently but, like a nested `runStep`, takes no slot
    /// and writes no checkpoint of its own: a replay returns the outer step's recorded output
    /// without running its body, so a slot taken there would shift every later one.
    public func startStep<T: Codable & Sendable>(
        _ name: String, retry: StepRetryPolicy = .none, _ body: @escaping @Sendable () async throws -> T
    ) -> StepTask<T> {
        let functionID: Int
        let task: Task<T, any Error>
        if Self.currentStep != nil {
            functionID = StepTask<T>.noSlot
            task = Task { try await body() }
        } else {
            let reserved = reserveFunctionID()
            functionID = reserved
            task = Task { try await self.executeStep(functionID: reserved, name: name, retry: retry, body: body) }
        }
        let alreadyStopped = state.withLock { state -> Bool in
            state.concurrentStepCancellers.append { task.cancel() }
            return state.concurrentStepsCancelled
        }
        if alreadyStopped { task.cancel() }
        return StepTask(functionID: functionID, task: task)
    }

    /// Cancels every step started with `startStep`, when the run is cancelled, times out or is
    /// stopped by shutdown, so no step keeps running (and retrying) for a run that has ended.
    func cancelConcurrentSteps() {
        let cancellers = state.withLock { state -> [@Sendable () -> Void] in
            state.concurrentStepsCancelled = true
            return state.concurrentStepCancellers
        }
        for cancel in cancellers { cancel() }
    }

    /// Runs a step at an explicit checkpoint slot (for callers that fix slots themselves, like the
    /// spec interpreter, whose slots come from the step graph).
    package func executeStep<T: Codable & Sendable>(
        functionID: Int, name: String, retry: StepRetryPolicy, body: @Sendable () async throws -> T
    ) async throws -> T {
        if let recorded = try recordedOperation(functionID, name: name) {
            return try replay(recorded, as: T.self)
        }
        try await writeDeferredCheckpoint()
        try checkNotCancelled()
        let startedAt = Self.now
        var attempt = 0
        while true {
            attempt += 1
            do {
                let value = try await Self.$currentStep.withValue(StepScope(name: name, functionID: functionID)) {
                    try await body()
                }
                let output = try PortableJSON.encode(value)
                let checkpoint = OperationRecord(
                    workflowID: workflowID, functionID: functionID, functionName: name, output: output, error: nil,
                    childWorkflowID: nil, startedAt: startedAt, completedAt: Self.now)
                if deferCheckpoint(checkpoint) { return value }
                let stored = try await record(checkpoint)
                return stored.output == output ? value : try replay(stored, as: T.self)
            } catch {
                if Task.isCancelled { throw cancellationError() }
                if error is WorkflowError, case .cancelled = error as? WorkflowError { throw error }
                guard attempt < retry.maxAttempts, retry.retryIf(error) else {
                    let finalError: any Error =
                        attempt > 1 && attempt == retry.maxAttempts
                        ? WorkflowError.maxStepRetriesExceeded(step: name, attempts: attempt, lastError: "\(error)")
                        : error
                    let checkpoint = OperationRecord(
                        workflowID: workflowID, functionID: functionID, functionName: name, output: nil,
                        error: PortableError(finalError).storedText, childWorkflowID: nil, startedAt: startedAt,
                        completedAt: Self.now)
                    if deferCheckpoint(checkpoint) { throw finalError }
                    let stored = try await record(checkpoint)
                    if stored.output != nil { return try replay(stored, as: T.self) }
                    throw finalError
                }
                let interval = retry.interval(afterAttempt: attempt)
                let jittered = Double(interval.milliseconds) * Double.random(in: 0.95...1.05)
                do {
                    try await Task.sleep(for: .milliseconds(Int64(jittered)))
                } catch {
                    throw cancellationError()
                }
            }
        }
    }

    /// The result an earlier execution recorded: its output, or its error rethrown.
    private func replay<T: Decodable>(_ record: OperationRecord, as type: T.Type) throws -> T {
        if let error = record.error {
            throw PortableError(storedText: error)
        }
        return try PortableJSON.decode(T.self, from: record.output)
    }

    // MARK: Patching

    /// Whether this run takes the code added under the patch `name` (DBOS's `Patch`), for changing
    /// a workflow while runs of its older code are still unfinished:
    ///
    /// ```swift
    /// if try await context.patch("charge-in-two-steps") {
    ///     try await context.runStep("authorize") { ... }
    ///     try await context.runStep("capture") { ... }
    /// } else {
    ///     try await context.runStep("charge") { ... }
    /// }
    /// ```
    ///
    /// True for a run that reaches this point now: the choice is checkpointed (as `DBOS.patch-NAME`),
    /// so it replays the same. False for a run that older code already took past this point (its
    /// checkpoint here is another operation's): that takes no slot, and the run replays as the old
    /// code recorded it. Needs `DBOSConfiguration.enablesPatching`; not inside a step.
    public func patch(_ name: String) async throws -> Bool {
        try requireOutsideStep("patch(_:)")
        try requirePatching("patch(_:)")
        let marker = Self.patchMarker(name)
        // The slot is looked at and taken in one step: a step started concurrently takes the next one.
        let (patched, newSlot) = state.withLock { state -> (Bool, Int?) in
            let slot = state.nextFunctionID
            if let recorded = state.checkpoints[slot] {
                guard recorded.functionName == marker else { return (false, nil) }
                state.nextFunctionID += 1
                return (true, nil)
            }
            state.nextFunctionID += 1
            return (true, slot)
        }
        guard let functionID = newSlot else { return patched }
        // Another execution of the run may have written this slot since this one loaded its checkpoints
        // (two executions at once): the marker's write then throws `nondeterministicReplay`, where
        // DBOS's patch would return false.
        try await writeDeferredCheckpoint()
        try checkNotCancelled()
        let now = Self.now
        _ = try await record(OperationRecord(
            workflowID: workflowID, functionID: functionID, functionName: marker, output: nil, error: nil,
            childWorkflowID: nil, startedAt: now, completedAt: now))
        return true
    }

    /// Retires the patch `name` once no unfinished run predates it (DBOS's `DeprecatePatch`): the
    /// code keeps only the patched branch, and this call stands where `patch(name)` stood. A run
    /// that recorded the patch skips its checkpoint, so it replays as recorded; any other run
    /// takes no slot and writes nothing. Always true. Needs `DBOSConfiguration.enablesPatching`.
    @discardableResult
    public func deprecatePatch(_ name: String) throws -> Bool {
        try requireOutsideStep("deprecatePatch(_:)")
        try requirePatching("deprecatePatch(_:)")
        let marker = Self.patchMarker(name)
        state.withLock { state in
            if state.checkpoints[state.nextFunctionID]?.functionName == marker { state.nextFunctionID += 1 }
        }
        return true
    }

    /// The name of a patch's checkpoint, as DBOS writes it.
    static func patchMarker(_ name: String) -> String { "DBOS.patch-\(name)" }

    private func requirePatching(_ operation: String) throws {
        guard runtime.configuration.enablesPatching else {
            throw WorkflowError.invalidContext("\(operation) needs DBOSConfiguration.enablesPatching")
        }
    }

    // MARK: Sleep

    /// Sleeps durably: the wake-up time is checkpointed, so after a restart the workflow sleeps
    /// only what is left.
    public func sleep(for duration: Duration) async throws {
        try await sleep(for: duration, functionID: reserveFunctionID())
    }

    /// A durable sleep at an explicit checkpoint slot.
    package func sleep(for duration: Duration, functionID: Int) async throws {
        try requireOutsideStep("sleep(for:)")
        let wakeUp: EpochMilliseconds
        if let recorded = try recordedOperation(functionID, name: Self.sleepName) {
            wakeUp = try PortableJSON.decode(EpochMilliseconds.self, from: recorded.output)
        } else {
            try checkNotCancelled()
            // A task keeps the memory its deepest chain of calls needed until it ends (the task
            // allocator does not give it back), so the checkpoint's database call runs in a task
            // of its own and a run asleep holds little more than its own frames.
            // Cancelling the run cancels that task too (a retry waiting for the database ends).
            let checkpoint = Task {
                try await self.writeDeferredCheckpoint()
                return try await self.durableWakeUpTime(functionID: functionID, after: duration)
            }
            wakeUp = try await withTaskCancellationHandler {
                try await checkpoint.value
            } onCancel: {
                checkpoint.cancel()
            }
        }
        guard wakeUp > Self.now else { return }
        do {
            try await runtime.sleepTimer.sleep(until: wakeUp)
        } catch {
            throw cancellationError()
        }
    }

    private static let sleepName = "DBOS.sleep"

    /// The wake-up time recorded at a `DBOS.sleep` slot, recording now + `duration` first if absent.
    func durableWakeUpTime(functionID: Int, after duration: Duration) async throws -> EpochMilliseconds {
        let name = Self.sleepName
        if let recorded = try recordedOperation(functionID, name: name) {
            return try PortableJSON.decode(EpochMilliseconds.self, from: recorded.output)
        }
        try checkNotCancelled()
        let now = Self.now
        let wakeUp = now + duration.milliseconds
        let stored = try await record(OperationRecord(
            workflowID: workflowID, functionID: functionID, functionName: name, output: String(wakeUp), error: nil,
            childWorkflowID: nil, startedAt: now, completedAt: wakeUp))
        return try PortableJSON.decode(EpochMilliseconds.self, from: stored.output)
    }

    // MARK: Messages

    /// Sends a message to another workflow, exactly once: the message and this operation's
    /// checkpoint are written in one transaction.
    public func send<Message: Encodable & Sendable>(
        to destinationID: String, topic: String? = nil, message: Message
    ) async throws {
        try await send(to: destinationID, topic: topic, message: message, functionID: reserveFunctionID())
    }

    /// Sends a message from an explicit checkpoint slot.
    package func send<Message: Encodable & Sendable>(
        to destinationID: String, topic: String?, message: Message, functionID: Int
    ) async throws {
        try requireOutsideStep("send(to:topic:message:)")
        let name = "DBOS.send"
        if try recordedOperation(functionID, name: name) != nil { return }
        try await writeDeferredCheckpoint()
        try checkNotCancelled()
        let topic = topic ?? Self.nullTopic
        let now = runtime.nextCreationTime()
        let checkpoint = OperationRecord(
            workflowID: workflowID, functionID: functionID, functionName: name, output: "null", error: nil,
            childWorkflowID: nil, startedAt: now, completedAt: now)
        let insert = MessageInsert(
            destinationID: destinationID, topic: topic, message: try PortableJSON.encode(message),
            messageID: "\(workflowID)::\(functionID)", now: now)
        do {
            _ = try await runtime.database.sendMessage(insert, checkpoint: checkpoint)
        } catch let error as SystemDatabaseError {
            // A lost acknowledgement: the send may have committed. The checkpoint tells.
            if try await runtime.database.operation(workflowID: workflowID, functionID: functionID) == nil { throw error }
        }
        remember(checkpoint)
        runtime.wakeups.signal(WakeupRegistry.messageKey(workflowID: destinationID, topic: topic))
    }

    /// Receives the next message sent to this workflow on `topic`, waiting up to `timeout`;
    /// returns nil when none arrived in time. Each message is consumed exactly once.
    public func recv<Message: Decodable & Sendable>(
        _ type: Message.Type = JSONValue.self, topic: String? = nil, timeout: Duration = .seconds(60)
    ) async throws -> Message? {
        let functionID = reserveFunctionID()
        return try await recv(
            type, topic: topic, timeout: timeout, functionID: functionID, timeoutFunctionID: reserveFunctionID())
    }

    /// Receives a message at an explicit checkpoint slot; its durable deadline is recorded at
    /// `timeoutFunctionID`.
    package func recv<Message: Decodable & Sendable>(
        _ type: Message.Type, topic: String?, timeout: Duration, functionID: Int, timeoutFunctionID sleepFunctionID: Int
    ) async throws -> Message? {
        try requireOutsideStep("recv(topic:timeout:)")
        let name = "DBOS.recv"
        if let recorded = try recordedOperation(functionID, name: name) {
            return try decodeOptional(Message.self, from: recorded.output)
        }
        try await writeDeferredCheckpoint()
        let topic = topic ?? Self.nullTopic
        let deadline = try await durableWakeUpTime(functionID: sleepFunctionID, after: timeout)
        let startedAt = Self.now
        let key = WakeupRegistry.messageKey(workflowID: workflowID, topic: topic)
        while true {
            try checkNotCancelled()
            let ticket = runtime.wakeups.ticket(for: key)
            let checkpoint = OperationRecord(
                workflowID: workflowID, functionID: functionID, functionName: name, output: nil, error: nil,
                childWorkflowID: nil, startedAt: startedAt, completedAt: Self.now)
            if let message = try await runtime.database.consumeMessage(
                destinationID: workflowID, topic: topic, checkpoint: checkpoint)
            {
                runtime.wakeups.cancel(ticket)
                var stored = checkpoint
                stored.output = message
                remember(stored)
                return try decodeOptional(Message.self, from: message)
            }
            let remaining = deadline - Self.now
            if remaining <= 0 {
                runtime.wakeups.cancel(ticket)
                var timedOut = checkpoint
                timedOut.output = "null"
                let stored = try await record(timedOut)
                return try decodeOptional(Message.self, from: stored.output)
            }
            await runtime.wakeups.wait(ticket, timeout: min(.milliseconds(remaining), runtime.waitInterval))
        }
    }

    private func decodeOptional<T: Decodable>(_ type: T.Type, from text: String?) throws -> T? {
        guard let text, text != "null" else { return nil }
        return try PortableJSON.decode(T.self, from: text)
    }

    // MARK: Events

    /// Publishes (or overwrites) a key-value event of this workflow, readable from anywhere.
    ///
    /// Called from the workflow, it is an operation of its own, written once. Called in a step's
    /// body (as DBOS allows), it is part of that step: it takes no checkpoint slot, and a step that
    /// runs again (a retry, a recovery) sets it again.
    public func setEvent<Value: Encodable & Sendable>(key: String, value: Value) async throws {
        guard let step = Self.currentStep else {
            return try await setEvent(key: key, value: value, functionID: reserveFunctionID())
        }
        try await runtime.database.setEvent(
            workflowID: workflowID, key: key, value: try PortableJSON.encode(value), functionID: step.functionID,
            checkpoint: nil)
        runtime.wakeups.signal(WakeupRegistry.eventKey(workflowID: workflowID, key: key))
    }

    /// Publishes an event from an explicit checkpoint slot.
    package func setEvent<Value: Encodable & Sendable>(key: String, value: Value, functionID: Int) async throws {
        try requireOutsideStep("setEvent(key:value:)")
        let name = "DBOS.setEvent"
        if try recordedOperation(functionID, name: name) != nil { return }
        try await writeDeferredCheckpoint()
        try checkNotCancelled()
        let now = Self.now
        let checkpoint = OperationRecord(
            workflowID: workflowID, functionID: functionID, functionName: name, output: "null", error: nil,
            childWorkflowID: nil, startedAt: now, completedAt: now)
        try await runtime.database.setEvent(
            workflowID: workflowID, key: key, value: try PortableJSON.encode(value), functionID: functionID,
            checkpoint: checkpoint)
        remember(checkpoint)
        runtime.wakeups.signal(WakeupRegistry.eventKey(workflowID: workflowID, key: key))
    }

    /// Waits up to `timeout` for another workflow's event; the value read (or nil on timeout) is
    /// checkpointed, so a replay sees the same value.
    public func getEvent<Value: Decodable & Sendable>(
        workflowID otherID: String, key: String, as type: Value.Type = JSONValue.self, timeout: Duration = .seconds(60)
    ) async throws -> Value? {
        let functionID = reserveFunctionID()
        return try await getEvent(
            workflowID: otherID, key: key, as: type, timeout: timeout, functionID: functionID,
            timeoutFunctionID: reserveFunctionID())
    }

    /// Reads another workflow's event at an explicit checkpoint slot; the wait's durable deadline
    /// is recorded at `timeoutFunctionID`.
    package func getEvent<Value: Decodable & Sendable>(
        workflowID otherID: String, key: String, as type: Value.Type, timeout: Duration, functionID: Int,
        timeoutFunctionID sleepFunctionID: Int
    ) async throws -> Value? {
        try requireOutsideStep("getEvent(workflowID:key:timeout:)")
        let name = "DBOS.getEvent"
        if let recorded = try recordedOperation(functionID, name: name) {
            return try decodeOptional(Value.self, from: recorded.output)
        }
        try await writeDeferredCheckpoint()
        let deadline = try await durableWakeUpTime(functionID: sleepFunctionID, after: timeout)
        let startedAt = Self.now
        let value: String?
        do {
            value = try await runtime.waitForEvent(workflowID: otherID, key: key, until: deadline)
        } catch is CancellationError {
            throw cancellationError()
        }
        let stored = try await record(OperationRecord(
            workflowID: workflowID, functionID: functionID, functionName: name, output: value ?? "null", error: nil,
            childWorkflowID: nil, startedAt: startedAt, completedAt: Self.now))
        return try decodeOptional(Value.self, from: stored.output)
    }

    // MARK: Streams

    /// Appends a value to this workflow's stream `key`; readers in any process see it in order.
    ///
    /// Called in a step's body (as DBOS allows), the value is part of that step: it takes no
    /// checkpoint slot, and a step that runs again (a retry, a recovery) appends it again.
    public func writeStream<Value: Encodable & Sendable>(key: String, value: Value) async throws {
        let text = try PortableJSON.encode(value)
        guard let step = Self.currentStep else {
            return try await appendToStream(key: key, text: text, operation: "DBOS.writeStream")
        }
        try await runtime.database.writeStream(
            workflowID: workflowID, key: key, value: text, functionID: step.functionID, checkpoint: nil)
        runtime.wakeups.signal(WakeupRegistry.streamKey(workflowID: workflowID, key: key))
    }

    /// Closes stream `key`: readers finish after the values written so far.
    public func closeStream(key: String) async throws {
        try await appendToStream(key: key, text: StreamMarker.closed, operation: "DBOS.closeStream")
    }

    private func appendToStream(key: String, text: String, operation name: String) async throws {
        try requireOutsideStep(name)
        let functionID = reserveFunctionID()
        if try recordedOperation(functionID, name: name) != nil { return }
        try await writeDeferredCheckpoint()
        try checkNotCancelled()
        let now = Self.now
        let checkpoint = OperationRecord(
            workflowID: workflowID, functionID: functionID, functionName: name, output: "null", error: nil,
            childWorkflowID: nil, startedAt: now, completedAt: now)
        try await runtime.database.writeStream(
            workflowID: workflowID, key: key, value: text, functionID: functionID, checkpoint: checkpoint)
        remember(checkpoint)
        runtime.wakeups.signal(WakeupRegistry.streamKey(workflowID: workflowID, key: key))
    }

    // MARK: Child workflows

    /// Starts a child workflow. The child is recorded at this operation's slot in the same
    /// transaction that creates it, so a recovered parent re-attaches to the same child instead of
    /// starting a second one. Cancelling the parent cancels the child.
    public func startChildWorkflow<Input, Output>(
        _ workflow: Workflow<Input, Output>, input: Input, options: WorkflowOptions = WorkflowOptions()
    ) async throws -> WorkflowHandle<Output> {
        try await startChildWorkflow(
            named: workflow.name, input: input, options: options, functionID: reserveFunctionID(), as: Output.self)
    }

    /// Starts a child workflow registered as `name` from an explicit checkpoint slot. With a
    /// queue in `options` the child is enqueued there, so the queue's limits bound the fan-out.
    package func startChildWorkflow<Input: Encodable & Sendable, Output>(
        named name: String, input: Input, options: WorkflowOptions, functionID: Int, as type: Output.Type
    ) async throws -> WorkflowHandle<Output> {
        try requireOutsideStep("startChildWorkflow")
        if let recorded = try recordedOperation(functionID, name: name), let childID = recorded.childWorkflowID {
            return WorkflowHandle(workflowID: childID, runtime: runtime)
        }
        try await writeDeferredCheckpoint()
        try checkNotCancelled()
        let registered = try runtime.registeredWorkflow(named: name)
        let childID = try await runtime.start(
            registered, inputText: try PortableJSON.encodeInput(input), inputValue: input, options: options,
            parent: DBOSRuntime.ParentLink(context: self, functionID: functionID))
        remember(OperationRecord(
            workflowID: workflowID, functionID: functionID, functionName: name, output: nil, error: nil,
            childWorkflowID: childID, startedAt: nil, completedAt: nil))
        return WorkflowHandle(workflowID: childID, runtime: runtime)
    }

    /// Starts a child workflow and waits for its output.
    public func runChildWorkflow<Input, Output>(
        _ workflow: Workflow<Input, Output>, input: Input, options: WorkflowOptions = WorkflowOptions()
    ) async throws -> Output {
        let handle = try await startChildWorkflow(workflow, input: input, options: options)
        do {
            return try await handle.result()
        } catch is CancellationError {
            throw cancellationError()
        }
    }
}

/// A step started with `WorkflowContext.startStep`, running concurrently.
public struct StepTask<T: Codable & Sendable>: Sendable {
    /// The checkpoint slot the step took when it was started; `noSlot` for a step started inside
    /// another step's body, which is not checkpointed on its own.
    public let functionID: Int
    /// The `functionID` of a step that took no checkpoint slot.
    public static var noSlot: Int { -1 }
    let task: Task<T, any Error>

    /// Waits for the step's output.
    ///
    /// The step runs in a task of its own, which does not inherit the workflow's cancellation; a
    /// workflow cancelled or timed out while waiting here passes the cancellation on, so the step
    /// stops as a `runStep` body would instead of holding the workflow until it finishes.
    public var value: T {
        get async throws {
            try await withTaskCancellationHandler {
                try await task.value
            } onCancel: {
                task.cancel()
            }
        }
    }
}
