import DBOS
import Foundation
import Synchronization

/// Executes one steps list as its `StepGraph` says: every step whose `needs` are met runs concurrently, each at
/// its fixed slot; when a step fails (without `continue_on_error`) no further step starts, the running ones
/// finish, and the completed steps' compensations run in reverse order of completion.
struct StepListExecutor: Sendable {
    let run: RunExecution
    let graph: StepGraph
    /// `input`, `workflow`, `item`, `index`, and the enclosing lists' `steps`.
    let variables: [String: JSONValue]

    /// The output checkpointed at the slot of a step whose `if:` was false.
    static let skippedMarker = SpecInterpreter.skippedStepMarker
    /// A wait with no timeout: about a century.
    static let forever = Duration.seconds(100 * 365 * 24 * 3600)

    /// How one step ended, as the task that ran it reports it.
    private struct Completion: Sendable {
        let id: String
        let outcome: Result<StepOutcome, any Error>
    }

    /// Runs one step and reports how it ended (never throws: the list decides what a failure means).
    private func completion(of node: StepGraph.Node, scope: ExpressionScope) async -> Completion {
        do {
            return Completion(id: node.id, outcome: .success(try await execute(node, scope: scope)))
        } catch {
            return Completion(id: node.id, outcome: .failure(error))
        }
    }

    /// The steps not started yet whose `needs` all have results.
    private func readySteps(started: Set<String>, results: [String: StepOutcome]) -> [StepGraph.Node] {
        // By index, so only the ready nodes are copied (a node holds its whole step).
        graph.nodes.indices.filter { index in
            !started.contains(graph.nodes[index].id) && graph.nodes[index].needs.allSatisfy { results[$0] != nil }
        }.map { graph.nodes[$0] }
    }

    /// What the list has done so far: the steps started, their results, and the first failure.
    private struct Progress {
        var results: [String: StepOutcome] = [:]
        var completionOrder: [String] = []
        var started: Set<String> = []
        var failure: (any Error)?

        mutating func record(_ finished: Completion, run: RunExecution) {
            switch finished.outcome {
            case .success(let result):
                results[finished.id] = result
                if result.status == .success { completionOrder.append(finished.id) }
            case .failure(let error):
                // A stop outranks a step failure: the run is not failing, it is being stopped.
                if failure == nil || run.isStop(error) { failure = error }
            }
        }
    }

    /// Runs the list; returns each step's result, or throws the first failure after compensating.
    func execute() async throws -> [String: StepOutcome] {
        var progress = Progress()
        // Kept deliberately plain (a struct result, `while let`, helpers instead of nested closures over
        // the loop's variables): a denser form of this loop was miscompiled by Swift 6.3.1 in release
        // builds, running only the first step.
        await withTaskGroup(of: Completion.self) { group in
            var running = 0
            while true {
                if progress.failure == nil {
                    let ready = readySteps(started: progress.started, results: progress.results)
                    if running == 0, ready.count == 1 {
                        // One step at a time (a chain, the usual case): run it in this task. A child task
                        // would cost a task and two hand-offs between threads per step.
                        let node = ready[0]
                        progress.started.insert(node.id)
                        let finished = await completion(of: node, scope: run.scope(variables(with: progress.results)))
                        progress.record(finished, run: run)
                        continue
                    }
                    for node in ready {
                        progress.started.insert(node.id)
                        let scope = run.scope(variables(with: progress.results))
                        group.addTask { await self.completion(of: node, scope: scope) }
                        running += 1
                    }
                }
                if running == 0 { break }
                guard let finished = await group.next() else { break }
                running -= 1
                progress.record(finished, run: run)
            }
        }
        if let failure = progress.failure {
            if !run.isStop(failure) {
                try await compensate(progress.completionOrder.reversed(), results: progress.results)
            }
            throw failure
        }
        return progress.results
    }

    /// The variables with `steps` holding the enclosing lists' steps and this list's results so far.
    func variables(with results: [String: StepOutcome]) -> [String: JSONValue] {
        var steps: [String: JSONValue] = [:]
        if case .object(let outer)? = variables["steps"] { steps = outer }
        for (id, result) in results { steps[id] = result.jsonValue }
        var all = variables
        all["steps"] = .object(steps)
        return all
    }

    // MARK: One step

    private func execute(_ node: StepGraph.Node, scope: ExpressionScope) async throws -> StepOutcome {
        let step = node.step
        let slot = node.slot
        if let condition = step.condition {
            let decision: JSONValue
            do {
                decision = try condition.resolve(in: scope)
            } catch {
                throw failed(step, message: "cannot evaluate 'if': \(error.message)")
            }
            if !decision.isTruthy {
                // Checkpoint the decision, so a replay skips the step even if the condition would now differ.
                let recorded: JSONValue = try await run.context.executeStep(functionID: slot, name: step.id, retry: .none) {
                    Self.skippedMarker
                }
                if recorded == Self.skippedMarker {
                    run.emit(.stepSkipped(stepID: step.id))
                    return StepOutcome(output: .null, status: .skipped)
                }
            }
        }
        let replayed = run.completedSlots.contains(slot)
        if replayed {
            run.emit(.stepReplayed(stepID: step.id, slot: slot))
        } else {
            // A step shown as started has every step before it checkpointed: the previous one's
            // checkpoint, if it still waits for this step, is written first. A failure there is the
            // database's, not this step's: it ends the run with that error (`continue_on_error` of
            // this step does not apply).
            try await run.context.writeDeferredCheckpoint()
            run.emit(.stepStarted(stepID: step.id, slot: slot, action: step.action.fieldName))
        }
        let start = ContinuousClock.now
        do {
            let output = try await perform(node, scope: scope)
            if output == Self.skippedMarker {
                run.emit(.stepSkipped(stepID: step.id))
                return StepOutcome(output: .null, status: .skipped)
            }
            run.emit(.stepFinished(stepID: step.id, status: .success, duration: ContinuousClock.now - start, error: nil))
            return StepOutcome(output: output, status: .success)
        } catch {
            if run.isStop(error) { throw error }
            let message = run.masker.mask(Self.message(of: error))
            run.emit(.stepFinished(stepID: step.id, status: .error, duration: ContinuousClock.now - start, error: message))
            if step.continueOnError { return StepOutcome(output: .null, status: .error, errorMessage: message) }
            throw failed(step, message: message)
        }
    }

    private func failed(_ step: StepSpec, message: String) -> SpecRunError {
        .stepFailed(stepID: step.id, location: step.location, message: run.masker.mask(message))
    }

    /// An error as the message recorded for the step (the same text on a replay).
    static func message(of error: any Error) -> String {
        switch error {
        case let failure as StepFailure: failure.message
        case let error as SpecError: error.description
        case let error as WorkflowError: error.description
        default: PortableError(error).message
        }
    }

    private func perform(_ node: StepGraph.Node, scope: ExpressionScope) async throws -> JSONValue {
        let step = node.step
        let slot = node.slot
        let context = run.context
        switch step.action {
        case .run(let command, let format):
            let (retry, timeout) = try await limits(
                retry: step.retry, timeout: step.timeout, name: step.id, slot: slot, scope: scope)
            return try await runCommand(
                name: step.id, stepID: step.id, slot: slot, command: command, format: format,
                environment: step.environment, retry: retry, timeout: timeout, scope: scope)
        case .handler(let name, let input):
            let (retry, timeout) = try await limits(
                retry: step.retry, timeout: step.timeout, name: step.id, slot: slot, scope: scope)
            return try await callHandler(
                name: step.id, stepID: step.id, slot: slot, handler: name, input: input, retry: retry,
                timeout: timeout, scope: scope)
        case .sleep(let value):
            // Once the wake-up time is checkpointed, a template is not evaluated again: the recorded time holds.
            let recorded = value.templateValue != nil && context.recordedSteps.contains { $0.functionID == slot }
            let duration = recorded ? .zero : try resolveDuration(value, field: "sleep", allowsZero: true, scope: scope)
            run.emit(.stepWaiting(stepID: step.id, what: "sleep \(recorded ? SpecDuration.text(value) : SpecDuration.text(duration))"))
            try await context.sleep(for: duration, functionID: slot)
            return .null
        case .recv(let action):
            let topic = try resolveStoredName(action.topic, scope: scope)
            let timeout = try resolveWait(action.timeout ?? step.timeout, scope: scope)
            run.emit(.stepWaiting(stepID: step.id, what: "message on topic '\(topic)'"))
            if let message = try await context.recv(
                JSONValue.self, topic: topic, timeout: timeout, functionID: slot,
                timeoutFunctionID: SpecInterpreter.timeoutSlotOffset + slot)
            {
                return run.masker.mask(message)
            }
            if let fallback = action.defaultValue { return run.masker.mask(try resolve(fallback, scope: scope)) }
            throw StepFailure(message: "no message on topic '\(topic)' within \(SpecDuration.text(timeout))")
        case .send(let action):
            let destination = try resolveText(action.destination, scope: scope)
            let topic = try resolveStoredName(action.topic, scope: scope)
            let message = try action.message.map { try resolve($0, scope: scope) } ?? .null
            try await context.send(to: destination, topic: topic, message: run.masker.mask(message), functionID: slot)
            return .null
        case .setEvent(let key, let value):
            let key = try resolveStoredName(key, scope: scope)
            let value = run.masker.mask(try resolve(value, scope: scope))
            try await context.setEvent(key: key, value: value, functionID: slot)
            return .null
        case .getEvent(let action):
            let source = try resolveText(action.source, scope: scope)
            let key = try resolveStoredName(action.key, scope: scope)
            let timeout = try resolveWait(action.timeout ?? step.timeout, scope: scope)
            run.emit(.stepWaiting(stepID: step.id, what: "event '\(key)' of run '\(source)'"))
            if let value = try await context.getEvent(
                workflowID: source, key: key, as: JSONValue.self, timeout: timeout, functionID: slot,
                timeoutFunctionID: SpecInterpreter.timeoutSlotOffset + slot)
            {
                return run.masker.mask(value)
            }
            throw StepFailure(message: "no event '\(key)' from run '\(source)' within \(SpecDuration.text(timeout))")
        case .workflow(let child):
            return try await startChild(child, step: step, slot: slot, scope: scope)
        case .map(let map):
            return try await startMap(map, step: step, slot: slot, scope: scope)
        case .parallel(let branches):
            let children: [JSONValue] = branches.indices.map { index in
                .object([
                    "workflow": .string(SpecInterpreter.stepsWorkflowName),
                    "input": .object(["variables": run.masker.mask(.object(scope.variables))]),
                    "attributes": run.descendantAttributes(
                        specName: run.spec.name, path: run.path + [.string(step.id), .integer(Int64(index))]),
                ])
            }
            return try await startCoordinator(
                SpecInterpreter.parallelWorkflowName, children: children, label: "branch", step: step, slot: slot,
                scope: scope)
        }
    }

    // MARK: Child runs

    private func startChild(_ child: ChildWorkflowAction, step: StepSpec, slot: Int, scope: ExpressionScope)
        async throws -> JSONValue
    {
        let input = run.masker.mask(try child.input.map { try resolve($0, scope: scope) } ?? .null)
        var options = WorkflowOptions(
            timeout: try resolveTimeout(step.timeout, scope: scope) ?? run.interpreter.specsByName[child.name]?.timeout,
            attributes: run.descendantAttributes(specName: child.name, path: nil))
        if let queue = child.queue { options.queueName = try resolveText(queue, scope: scope) }
        if let priority = child.priority { options.priority = try resolveInteger(priority, scope: scope, field: "priority") }
        if let deduplicationID = child.deduplicationID {
            options.deduplicationID = try resolveText(deduplicationID, scope: scope)
        }
        let handle = try await run.context.startChildWorkflow(
            named: child.name, input: input, options: options, functionID: slot, as: JSONValue.self)
        guard child.wait else { return .object(["workflow_id": .string(handle.workflowID)]) }
        run.emit(.stepWaiting(stepID: step.id, what: "child run '\(handle.workflowID)'"))
        return try await handle.result()
    }

    private func startMap(_ map: MapAction, step: StepSpec, slot: Int, scope: ExpressionScope) async throws -> JSONValue {
        let items = try resolve(map.items, scope: scope)
        guard case .array(let list) = items else {
            throw StepFailure(message: "'map' needs a list, not \(items.typeName)")
        }
        var children: [JSONValue] = []
        for (index, item) in list.enumerated() {
            var itemScope = scope
            itemScope.variables["item"] = item
            itemScope.variables["index"] = .integer(Int64(index))
            var entry: [String: JSONValue] = [:]
            var queue = try map.queue.map { try resolveText($0, scope: itemScope) }
            switch map.body {
            case .workflow(let child):
                entry["workflow"] = .string(child.name)
                entry["input"] = run.masker.mask(try child.input.map { try resolve($0, scope: itemScope) } ?? .null)
                entry["attributes"] = run.descendantAttributes(specName: child.name, path: nil)
                if queue == nil, let childQueue = child.queue { queue = try resolveText(childQueue, scope: itemScope) }
                if let priority = child.priority {
                    entry["priority"] = .integer(Int64(try resolveInteger(priority, scope: itemScope, field: "priority")))
                }
            case .steps:
                entry["workflow"] = .string(SpecInterpreter.stepsWorkflowName)
                entry["input"] = .object(["variables": run.masker.mask(.object(itemScope.variables))])
                entry["attributes"] = run.descendantAttributes(
                    specName: run.spec.name, path: run.path + [.string(step.id), .integer(0)])
            }
            if let queue { entry["queue"] = .string(queue) }
            children.append(.object(entry))
        }
        return try await startCoordinator(
            SpecInterpreter.mapWorkflowName, children: children, label: "item", step: step, slot: slot, scope: scope)
    }

    /// Starts the one coordinator run of a `map` or `parallel` step at its slot and waits for its list of outputs.
    private func startCoordinator(
        _ name: String, children: [JSONValue], label: String, step: StepSpec, slot: Int, scope: ExpressionScope
    ) async throws -> JSONValue {
        let options = WorkflowOptions(
            timeout: try resolveTimeout(step.timeout, scope: scope), attributes: run.descendantAttributes(specName: run.spec.name, path: nil))
        let handle = try await run.context.startChildWorkflow(
            named: name, input: JSONValue.object(["children": .array(children), "label": .string(label)]),
            options: options, functionID: slot, as: JSONValue.self)
        run.emit(.stepWaiting(stepID: step.id, what: "\(children.count) child runs of '\(handle.workflowID)'"))
        return try await handle.result()
    }

    // MARK: Checkpointed actions

    /// A `run:` command as a checkpointed step with retries; each attempt gets `timeout`.
    func runCommand(
        name: String, stepID: String, slot: Int, command: String, format: RunOutputFormat,
        environment: [(name: String, value: SpecValue)], retry: RetrySpec?, timeout: Duration?, scope: ExpressionScope
    ) async throws -> JSONValue {
        let attempts = AttemptCounter()
        let run = run
        return try await run.context.executeStep(functionID: slot, name: name, retry: retry.map(StepRetryPolicy.init) ?? .none) {
            let attempt = attempts.next(run: run, stepID: stepID)
            do {
                var variables: [String: String] = [:]
                for (name, value) in environment { variables[name] = try value.resolve(in: scope).interpolatedText }
                var shell = ShellCommand(script: command, environment: variables, timeout: timeout)
                shell.registration = run.interpreter.stepProcesses.map { ($0, run.context.workflowID, slot) }
                let result = try await shell.run()
                return run.masker.mask(try ShellCommand.output(from: result.standardOutput, format: format))
            } catch {
                if run.isStop(error) { throw error }
                throw attempts.failure(run.masker.mask(Self.message(of: error)), attempt: attempt)
            }
        }
    }

    /// A `handler:` call as a checkpointed step with retries; each attempt gets `timeout`.
    func callHandler(
        name: String, stepID: String, slot: Int, handler handlerName: String, input: SpecValue?, retry: RetrySpec?,
        timeout: Duration?, scope: ExpressionScope
    ) async throws -> JSONValue {
        let attempts = AttemptCounter()
        let run = run
        let workflowID = run.context.workflowID
        return try await run.context.executeStep(functionID: slot, name: name, retry: retry.map(StepRetryPolicy.init) ?? .none) {
            let attempt = attempts.next(run: run, stepID: stepID)
            do {
                guard let handler = run.interpreter.handlers.handler(named: handlerName) else {
                    throw HandlerError.unknownHandler(handlerName)
                }
                let value = try input.map { try $0.resolve(in: scope) } ?? .null
                let context = HandlerContext(workflowID: workflowID, stepID: stepID, slot: slot, attempt: attempt)
                let output = try await Self.withTimeout(timeout) { try await handler(value, context) }
                return run.masker.mask(output)
            } catch {
                if run.isStop(error) { throw error }
                throw attempts.failure(run.masker.mask(Self.message(of: error)), attempt: attempt)
            }
        }
    }

    /// Runs `operation`, failing it after `timeout` (its task is cancelled).
    static func withTimeout(_ timeout: Duration?, _ operation: @escaping @Sendable () async throws -> JSONValue)
        async throws -> JSONValue
    {
        guard let timeout else { return try await operation() }
        return try await withThrowingTaskGroup(of: JSONValue?.self) { group in
            group.addTask { try await operation() }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else { throw CancellationError() }
            guard let value = first else { throw StepFailure(message: "timed out after \(SpecDuration.text(timeout))") }
            return value
        }
    }

    // MARK: Compensation

    /// Runs the compensations of `completed` (newest first), each checkpointed at its compensation slot. A failed
    /// compensation is reported and the others still run; the run keeps its original error.
    private func compensate(_ completed: some Sequence<String>, results: [String: StepOutcome]) async throws {
        let scope = run.scope(variables(with: results))
        // The last step's checkpoint may still wait (the run failed before its next durable
        // operation): written before anything shows as compensating. A failure here is the first
        // compensation's too (its own write tries again), and reported there.
        try? await run.context.writeDeferredCheckpoint()
        for id in completed {
            guard let node = graph.node(id), let compensation = node.step.compensation, let slot = node.compensationSlot
            else { continue }
            run.emit(.compensationStarted(stepID: id, slot: slot))
            let name = "\(id).compensate"
            do {
                let (retry, timeout) = try await limits(
                    retry: compensation.retry, timeout: compensation.timeout, name: name, slot: slot, scope: scope)
                switch compensation.action {
                case .run(let command, let format):
                    _ = try await runCommand(
                        name: name, stepID: id, slot: slot, command: command, format: format,
                        environment: compensation.environment, retry: retry, timeout: timeout, scope: scope)
                case .handler(let handler, let input):
                    _ = try await callHandler(
                        name: name, stepID: id, slot: slot, handler: handler, input: input, retry: retry,
                        timeout: timeout, scope: scope)
                default:
                    continue
                }
                run.emit(.compensationFinished(stepID: id, status: .success, error: nil))
            } catch {
                if run.isStop(error) { throw error }
                run.emit(.compensationFinished(stepID: id, status: .error, error: run.masker.mask(Self.message(of: error))))
            }
        }
    }

    // MARK: Values

    private func resolve(_ value: SpecValue, scope: ExpressionScope) throws -> JSONValue {
        do {
            return try value.resolve(in: scope)
        } catch {
            throw StepFailure(message: error.description)
        }
    }

    private func resolveText(_ value: SpecValue, scope: ExpressionScope) throws -> String {
        try resolve(value, scope: scope).interpolatedText
    }

    /// A topic or event key, which the database stores: one built from a secret has the secret masked (alike
    /// on the sending and the receiving side, so they still match); one that reads no secret is left as it is,
    /// even if it happens to contain a secret's text.
    private func resolveStoredName(_ value: SpecValue, scope: ExpressionScope) throws -> String {
        let text = try resolveText(value, scope: scope)
        return value.referencedSecrets.isEmpty ? text : run.masker.mask(text)
    }

    /// A templated duration's value; one that is not a duration fails the step, naming the field.
    private func resolveDuration(_ value: DurationValue, field: String, allowsZero: Bool, scope: ExpressionScope)
        throws -> Duration
    {
        switch value.resolve(in: scope, field: field, allowsZero: allowsZero) {
        case .success(let duration): return duration
        case .failure(let problem): throw StepFailure(message: problem.message)
        }
    }

    /// A time limit (`timeout:` of a run, handler, child or compensation): greater than zero.
    private func resolveTimeout(_ value: DurationValue?, scope: ExpressionScope) throws -> Duration? {
        try value.map { try resolveDuration($0, field: "timeout", allowsZero: false, scope: scope) }
    }

    /// How long a `recv` or `get_event` waits: zero does not wait, none waits forever.
    private func resolveWait(_ value: DurationValue?, scope: ExpressionScope) throws -> Duration {
        try value.map { try resolveDuration($0, field: "timeout", allowsZero: true, scope: scope) } ?? Self.forever
    }

    /// A `run` or `handler` step's (or compensation's) `retry:` and `timeout:`, templates evaluated. Not evaluated for a step
    /// already checkpointed: its replay needs neither, and a secret they read may differ now. A value that
    /// cannot be used fails the step as its action would, checkpointed at its slot, so that a replay (and
    /// `continue_on_error`'s `steps.<id>.status`) decides the same.
    private func limits(
        retry: RetrySpec?, timeout: DurationValue?, name: String, slot: Int, scope: ExpressionScope
    ) async throws -> (RetrySpec?, Duration?) {
        if run.context.recordedSteps.contains(where: { $0.functionID == slot }) { return (nil, nil) }
        do {
            return (try resolveRetry(retry, scope: scope), try resolveTimeout(timeout, scope: scope))
        } catch let failure as StepFailure {
            let masked = StepFailure(message: run.masker.mask(failure.message))
            _ = try await run.context.executeStep(functionID: slot, name: name, retry: .none) {
                () async throws -> JSONValue in throw masked
            }
            throw masked
        }
    }

    /// The retry policy with its templated fields evaluated.
    private func resolveRetry(_ retry: RetrySpec?, scope: ExpressionScope) throws -> RetrySpec? {
        guard let retry, !retry.templates.isEmpty else { return retry }
        switch retry.resolved(in: scope) {
        case .success(let policy): return policy
        case .failure(let problem): throw StepFailure(message: problem.message)
        }
    }

    private func resolveInteger(_ value: SpecValue, scope: ExpressionScope, field: String) throws -> Int {
        let resolved = try resolve(value, scope: scope)
        switch resolved {
        case .integer(let number): return Int(number)
        case .double(let number) where number == number.rounded(): return Int(number)
        case .string(let text) where Int(text) != nil: return Int(text)!
        default: throw StepFailure(message: "'\(field)' must be a whole number, not \(resolved.jsonText)")
        }
    }
}

/// Counts a step's attempts and reports retries, for `HandlerContext.attempt` and progress events.
final class AttemptCounter: Sendable {
    private let state = Mutex<(attempt: Int, lastError: String?)>((0, nil))

    /// Starts the next attempt; from the second on, reports the retry with the previous attempt's error.
    func next(run: RunExecution, stepID: String) -> Int {
        let (attempt, lastError) = state.withLock { state -> (Int, String?) in
            state.attempt += 1
            return (state.attempt, state.lastError)
        }
        if attempt > 1 { run.emit(.stepRetrying(stepID: stepID, attempt: attempt, error: lastError ?? "")) }
        return attempt
    }

    /// Records an attempt's (masked) error and returns it as the error to throw.
    func failure(_ message: String, attempt: Int) -> StepFailure {
        state.withLock { $0.lastError = message }
        return StepFailure(message: message)
    }
}

extension StepRetryPolicy {
    /// The engine policy a spec's `retry:` describes.
    init(_ retry: RetrySpec) {
        self.init(
            maxAttempts: retry.maxAttempts, baseInterval: retry.interval, backoffFactor: retry.backoff,
            maxInterval: retry.maxInterval)
    }
}
