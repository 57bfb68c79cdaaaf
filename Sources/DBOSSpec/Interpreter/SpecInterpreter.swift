import DBOS
import Foundation
import Synchronization

/// Runs workflow specs as durable workflows on a `DBOSRuntime`.
///
/// Create it before `runtime.launch()`: it registers one engine workflow per spec (named exactly the spec's
/// `name`, input and output `JSONValue`), the engine workflows that run `map`, `parallel` and nested steps
/// lists (`dbos-run.map`, `dbos-run.parallel`, `dbos-run.steps`), every queue the specs declare, and the cron
/// schedules of `specs`. Then start runs with `start(spec:input:...)`; recovery, queues, resume and fork are
/// the engine's, and each run executes with the spec text stored with it (see `RunAttributes`).
///
/// ```swift
/// let handlers = HandlerRegistry()
/// handlers.register("charge_card") { (charge: Charge, context: HandlerContext) in try await charge(charge) }
/// let spec = try SpecInterpreter.loader(handlers: handlers).load(file: "order.yaml")
/// let interpreter = try SpecInterpreter(runtime: runtime, handlers: handlers, specs: [spec], directorySpecs: others)
/// try await runtime.launch()
/// let handle = try await interpreter.start(spec: spec, input: ["order_id": "A1"])
/// print(try await handle.result())
/// ```
///
/// Checkpoint slots: a step's slot is its position in its steps list (`StepGraph.Node.slot`) and a
/// compensation's is `compensationSlot`, so `workflows steps` and `fork --from-step N` speak the graph's
/// numbers. The durable deadline of a `recv` or `get_event` step is recorded at `timeoutSlotOffset + slot`.
public final class SpecInterpreter: Sendable {
    /// The engine the specs run on.
    public let runtime: DBOSRuntime
    /// The Swift handlers `handler:` steps call.
    public let handlers: HandlerRegistry
    /// The specs this process runs (their schedules are registered).
    public let specs: [WorkflowSpec]
    /// Other specs child steps may name (typically the other files of the same directory).
    public let directorySpecs: [WorkflowSpec]

    /// Where the durable timeout of a `recv`/`get_event` step at slot `s` is recorded: `timeoutSlotOffset + s`,
    /// outside the range of step slots so those stay equal to the graph's.
    public static let timeoutSlotOffset = 1_000_000
    /// What a step whose `if:` was false checkpoints at its slot, so that a replay decides the same.
    public static let skippedStepMarker: JSONValue = .object(["dbos_run_skipped": .bool(true)])
    /// The engine workflow that starts one child run per `map` item.
    public static let mapWorkflowName = "dbos-run.map"
    /// The engine workflow that starts one child run per `parallel` branch.
    public static let parallelWorkflowName = "dbos-run.parallel"
    /// The engine workflow that runs a nested steps list (a `map` body or a `parallel` branch).
    public static let stepsWorkflowName = "dbos-run.steps"

    /// Specs by name: `specs` first, then `directorySpecs`.
    let specsByName: [String: WorkflowSpec]
    /// Parsed stored spec texts by SHA-256, so recovering many runs of one spec parses it once.
    private let parsedSpecs = Mutex<[String: WorkflowSpec]>([:])
    /// What every run of a spec shares, built once per spec and steps list (see `resolveSpec`'s `cacheKey`).
    private let prepared = Mutex<PreparedSpecs>(PreparedSpecs())
    private let observers = Mutex<[UUID: @Sendable (SpecRunEvent) -> Void]>([:])
    /// Reads `secrets.NAME`.
    let secretLookup: @Sendable (String) -> String?
    /// Where `run:` steps record their process groups, so that a re-run stops a killed worker's command
    /// first; nil where that cannot work (an in-memory database, no `/proc`).
    let stepProcesses: StepProcessRegistry?

    /// A loader that validates `handler:` steps against the handlers registered in `handlers`.
    public static func loader(handlers: HandlerRegistry) -> SpecLoader {
        SpecLoader(knownHandlers: handlers.names)
    }

    /// Registers the specs on `runtime`, which must not be launched yet.
    ///
    /// - Parameters:
    ///   - specs: the specs this process runs; their queues and cron schedules are registered.
    ///   - directorySpecs: specs that `workflow:` and `map` steps may name; registered too (so their child runs
    ///     execute here) with their queues, but not their schedules.
    ///   - registersSchedules: false to leave the schedules of `specs` out (a one-off `dbos-run FILE`).
    ///   - secrets: where `secrets.NAME` come from; the process environment by default.
    public init(
        runtime: DBOSRuntime, handlers: HandlerRegistry = HandlerRegistry(), specs: [WorkflowSpec],
        directorySpecs: [WorkflowSpec] = [], registersSchedules: Bool = true,
        secrets: @escaping @Sendable (String) -> String? = { ProcessInfo.processInfo.environment[$0] }
    ) throws {
        self.runtime = runtime
        self.handlers = handlers
        self.specs = specs
        self.directorySpecs = directorySpecs
        self.secretLookup = secrets
        stepProcesses = StepProcessRegistry(databaseURL: runtime.configuration.systemDatabaseURL)
        stepProcesses?.stopAllLeftovers()
        var byName: [String: WorkflowSpec] = [:]
        for spec in specs + directorySpecs where byName[spec.name] == nil { byName[spec.name] = spec }
        specsByName = byName

        for name in byName.keys.sorted() {
            try runtime.register(name) { (context: WorkflowContext, input: JSONValue) async throws -> JSONValue in
                try await self.executeSpecRun(context: context, registeredName: name, input: input)
            }
        }
        for name in [Self.mapWorkflowName, Self.parallelWorkflowName] {
            try runtime.register(name) { (context: WorkflowContext, input: JSONValue) async throws -> JSONValue in
                try await self.executeCoordinator(context: context, input: input)
            }
        }
        try runtime.register(Self.stepsWorkflowName) { (context: WorkflowContext, input: JSONValue) async throws -> JSONValue in
            try await self.executeFragment(context: context, input: input)
        }
        var queues: [String: QueueSpec] = [:]
        for spec in specs + directorySpecs {
            for queue in spec.queues where queues[queue.name] == nil { queues[queue.name] = queue }
        }
        let registered = Set(runtime.registeredQueues.map(\.name))
        for queue in queues.values.sorted(by: { $0.name < $1.name }) where !registered.contains(queue.name) {
            try runtime.register(queue: WorkflowQueue(queue))
        }
        if registersSchedules {
            for spec in specs {
                guard let schedule = spec.schedule else { continue }
                let expression = try ScheduleExpression(parsing: schedule, timeZoneIdentifier: spec.timezone ?? "UTC")
                try runtime.register(schedule: WorkflowSchedule(
                    expression: expression, workflowName: spec.name, timeout: spec.timeout,
                    attributes: rootAttributes(for: spec).jsonValue))
            }
        }
    }

    /// The spec registered under `name` (from `specs`, then `directorySpecs`).
    public func spec(named name: String) -> WorkflowSpec? { specsByName[name] }

    // MARK: Starting runs

    /// Validates `input` against the spec's `input:` schema and fills in its defaults.
    ///
    /// - Throws: `SpecRunError.invalidInput` naming each field that is wrong.
    public func preparedInput(for spec: WorkflowSpec, input: JSONValue) throws(SpecRunError) -> JSONValue {
        do {
            return try spec.preparedInput(input)
        } catch {
            throw SpecRunError.invalidInput(spec: spec.name, errors: error.errors)
        }
    }

    /// Starts a run of `spec` (validating its input first) and returns at once with a handle to it.
    ///
    /// The spec's text, and those of the child specs it names, are stored with the run. With a `queue` the
    /// run is enqueued for a worker instead of executing at once. Starting again with the ID of an existing
    /// run starts nothing: the handle refers to that run.
    ///
    /// - Throws: `SpecRunError.invalidInput` for an input the schema rejects; the engine's errors otherwise
    ///   (`WorkflowError.unregisteredWorkflow` when `spec` was not given to `init`).
    public func start(
        spec: WorkflowSpec, input: JSONValue = .null, workflowID: String? = nil, queue: String? = nil,
        priority: Int? = nil, deduplicationID: String? = nil
    ) async throws -> WorkflowHandle<JSONValue> {
        let prepared = try preparedInput(for: spec, input: input)
        let options = WorkflowOptions(
            workflowID: workflowID, timeout: spec.timeout, queueName: queue, priority: priority,
            deduplicationID: deduplicationID, attributes: rootAttributes(for: spec).jsonValue)
        return try await runtime.startWorkflow(named: spec.name, input: prepared, options: options)
    }

    /// The attributes stored with a top-level run of `spec`: its text and those of the specs it names.
    public func rootAttributes(for spec: WorkflowSpec) -> RunAttributes {
        Self.rootAttributes(for: spec, specsByName: specsByName)
    }

    /// The attributes stored with a top-level run of `spec`, its child specs found among `otherSpecs`: what a
    /// process that enqueues runs without executing them (`dbos-run enqueue`) stores.
    public static func rootAttributes(for spec: WorkflowSpec, otherSpecs: [WorkflowSpec]) -> RunAttributes {
        var byName: [String: WorkflowSpec] = [spec.name: spec]
        for other in otherSpecs where byName[other.name] == nil { byName[other.name] = other }
        return rootAttributes(for: spec, specsByName: byName)
    }

    private static func rootAttributes(for spec: WorkflowSpec, specsByName: [String: WorkflowSpec]) -> RunAttributes {
        var children: [WorkflowSpec] = []
        var seen: Set<String> = [spec.name]
        var pending = Self.childSpecNames(in: spec.steps)
        while let name = pending.popLast() {
            guard seen.insert(name).inserted, let child = specsByName[name] else { continue }
            children.append(child)
            pending.append(contentsOf: Self.childSpecNames(in: child.steps))
        }
        return RunAttributes(root: spec, childSpecs: children)
    }

    /// The names of the specs `workflow:` and `map` steps name, nested lists included.
    static func childSpecNames(in steps: [StepSpec]) -> [String] {
        steps.flatMap { step -> [String] in
            switch step.action {
            case .workflow(let child): return [child.name]
            case .map(let map):
                switch map.body {
                case .workflow(let child): return [child.name]
                case .steps(let steps): return childSpecNames(in: steps)
                }
            case .parallel(let branches): return branches.flatMap { childSpecNames(in: $0.steps) }
            default: return []
            }
        }
    }

    /// Continues a cancelled or failed run from its last checkpoint. It goes on the engine's internal queue
    /// and this process executes it (with the spec text stored with it) when it registered the spec.
    public func resume(workflowID: String) async throws -> WorkflowHandle<JSONValue> {
        try await runtime.resumeWorkflow(id: workflowID)
    }

    /// Starts a new run that reuses the checkpoints of the original's slots below `slot` and executes from
    /// there, with the original's stored spec text.
    public func fork(workflowID: String, fromSlot slot: Int, newWorkflowID: String? = nil) async throws
        -> WorkflowHandle<JSONValue>
    {
        try await runtime.forkWorkflow(id: workflowID, fromStep: slot, newWorkflowID: newWorkflowID)
    }

    /// The spec a run executes: the text stored with it (or with its top-level run), parsed; for a run
    /// started without stored text (a cron tick), the spec registered under its name.
    public func storedSpec(ofWorkflow workflowID: String) async throws -> WorkflowSpec {
        guard let status = try await runtime.workflowStatus(id: workflowID) else {
            throw WorkflowError.nonexistentWorkflow(workflowID)
        }
        return try await resolveSpec(workflowID: workflowID, attributes: status.attributes, registeredName: status.name).spec
    }

    /// The specs stored with a top-level run (its own first, then the child specs it names), parsed from the
    /// stored texts: what a command that resumes or forks a run registers before `launch()`, so this process
    /// can execute it even when the files changed or are gone. Empty for a run without stored texts or a
    /// child run (whose texts are stored with its top-level run).
    ///
    /// `otherSpecs` (typically the specs next to the run's file) are validation context only, as they are
    /// when the run executes: a queue a step names may be declared by a spec that is not stored with the run.
    public static func storedSpecs(
        in attributes: JSONValue?, handlers: HandlerRegistry = HandlerRegistry(), otherSpecs: [WorkflowSpec] = []
    ) throws -> [WorkflowSpec] {
        guard let stored = RunAttributes(attributes), let own = stored.spec else { return [] }
        // Checked when the run was created; the queues in effect are this process's, whatever the text declares.
        var loader = loader(handlers: handlers)
        loader.checksQueueConflicts = false
        let children = stored.childSpecs.values.sorted { $0.file < $1.file }.compactMap {
            loader.decode(text: $0.text, file: $0.file).spec
        }
        let ownName = loader.decode(text: own.text, file: own.file).spec?.name
        let storedNames = Set(children.map(\.name) + (ownName.map { [$0] } ?? []))
        let context = otherSpecs.filter { !storedNames.contains($0.name) }
        let spec = try loader.load(text: own.text, file: own.file, otherSpecs: children + context)
        return [spec] + children.map { child in
            (try? loader.load(text: child.sourceText, file: child.file, otherSpecs: children + [spec] + context)) ?? child
        }
    }

    // MARK: Progress

    /// Calls `observer` with every event of the runs this process executes, until the interpreter is gone.
    public func addObserver(_ observer: any SpecRunObserver) {
        let id = UUID()
        observers.withLock { $0[id] = { observer.specRun($0) } }
    }

    /// A stream of the events of the runs this process executes; it ends when the consumer stops iterating.
    public func events() -> AsyncStream<SpecRunEvent> {
        let (stream, continuation) = AsyncStream<SpecRunEvent>.makeStream()
        let id = UUID()
        observers.withLock { $0[id] = { continuation.yield($0) } }
        continuation.onTermination = { [weak self] _ in
            _ = self?.observers.withLock { $0.removeValue(forKey: id) }
        }
        return stream
    }

    func emit(_ event: SpecRunEvent) {
        let current = observers.withLock { Array($0.values) }
        for observer in current { observer(event) }
    }

    // MARK: Finding the spec of a run

    /// The loader used for stored texts.
    var loader: SpecLoader { Self.loader(handlers: handlers) }

    /// The spec a run executes and its top-level run's ID.
    ///
    /// `cacheKey` names the spec for `stepGraph(of:key:)` and `secretNames(of:key:)`: the hash of the
    /// stored text it was parsed from, or the name it is registered under (those specs never change).
    func resolveSpec(workflowID: String, attributes: JSONValue?, registeredName: String) async throws
        -> (spec: WorkflowSpec, stored: RunAttributes?, rootWorkflowID: String, cacheKey: String)
    {
        guard let stored = RunAttributes(attributes) else {
            guard let spec = specsByName[registeredName] else { throw SpecRunError.unknownSpec(registeredName) }
            return (spec, nil, workflowID, "name:" + registeredName)
        }
        if let own = stored.spec {
            return (try parse(own, others: stored.childSpecs, workflowID: workflowID), stored, workflowID, "text:" + own.hash)
        }
        let rootID = stored.rootWorkflowID ?? workflowID
        let name = stored.specName ?? registeredName
        let root = try await runtime.workflowStatus(id: rootID)
        if let rootAttributes = RunAttributes(root?.attributes), let rootSpec = rootAttributes.spec {
            let rootName = root?.name ?? ""
            if name == rootName {
                let spec = try parse(rootSpec, others: rootAttributes.childSpecs, workflowID: workflowID)
                return (spec, stored, rootID, "text:" + rootSpec.hash)
            }
            if let child = rootAttributes.childSpecs[name] {
                var others = rootAttributes.childSpecs
                others[rootName] = rootSpec
                return (try parse(child, others: others, workflowID: workflowID), stored, rootID, "text:" + child.hash)
            }
        }
        guard let spec = specsByName[name] else { throw SpecRunError.unknownSpec(name) }
        return (spec, stored, rootID, "name:" + name)
    }

    /// The graph of a steps list of the spec `key` names (`path` locates a nested list), built once.
    func stepGraph(of steps: [StepSpec], key: String, path: [JSONValue] = []) -> StepGraph {
        let key = path.isEmpty ? key : key + "|" + JSONValue.array(path).jsonText
        if let graph = prepared.withLock({ $0.graphs[key] }) { return graph }
        let graph = StepGraph(steps: steps)
        prepared.withLock { $0.graphs[key] = graph }
        return graph
    }

    /// Every secret the spec `key` names reads, found once.
    func secretNames(of spec: WorkflowSpec, key: String) -> Set<String> {
        if let names = prepared.withLock({ $0.secretNames[key] }) { return names }
        let names = Self.secretNames(in: spec)
        prepared.withLock { $0.secretNames[key] = names }
        return names
    }

    /// Parses and validates a stored text (once per distinct text).
    private func parse(_ stored: RunAttributes.StoredSpec, others: [String: RunAttributes.StoredSpec], workflowID: String)
        throws -> WorkflowSpec
    {
        if let cached = parsedSpecs.withLock({ $0[stored.hash] }) { return cached }
        // Checked when the run was created; the queues in effect are this process's, whatever the text declares.
        var loader = loader
        loader.checksQueueConflicts = false
        var otherSpecs: [WorkflowSpec] = others.values.filter { $0.hash != stored.hash }.compactMap {
            loader.decode(text: $0.text, file: $0.file).spec
        }
        let storedNames = Set(otherSpecs.map(\.name))
        otherSpecs += specsByName.values.filter { !storedNames.contains($0.name) }
        let spec: WorkflowSpec
        do {
            spec = try loader.load(text: stored.text, file: stored.file, otherSpecs: otherSpecs)
        } catch {
            throw SpecRunError.invalidStoredSpec(workflowID: workflowID, error)
        }
        parsedSpecs.withLock { $0[stored.hash] = spec }
        return spec
    }
}

/// The step graphs and secret names of the specs runs executed, by `resolveSpec`'s `cacheKey`.
struct PreparedSpecs {
    var graphs: [String: StepGraph] = [:]
    var secretNames: [String: Set<String>] = [:]
}

extension WorkflowQueue {
    /// The engine queue a spec's `queues:` entry declares.
    init(_ queue: QueueSpec) {
        self.init(
            name: queue.name, workerConcurrency: queue.workerConcurrency, globalConcurrency: queue.concurrency,
            rateLimit: queue.rateLimit.map { RateLimit(limit: $0.limit, period: $0.period) },
            priorityEnabled: queue.priority)
    }
}
