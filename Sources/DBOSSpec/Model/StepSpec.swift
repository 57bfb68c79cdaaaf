import DBOS

/// One step of a spec's `steps:` list.
public struct StepSpec: Sendable, Hashable {
    /// The step's unique id (letters, digits, `_`, `-`).
    public var id: String
    /// What the step does.
    public var action: StepAction
    /// The ids this step waits for; `nil` when `needs:` is absent (then it needs the previous step).
    public var needs: [String]?
    /// Where each entry of `needs:` is written, parallel to `needs`.
    public var needsLocations: [SourceLocation]
    /// `if:`: the step is skipped when this evaluates to a falsy value.
    public var condition: SpecValue?
    /// `retry:` for `run` and `handler` steps.
    public var retry: RetrySpec?
    /// `timeout:` (a template is evaluated when the step runs).
    public var timeout: DurationValue?
    /// `env:` for `run` steps, in document order.
    public var environment: [(name: String, value: SpecValue)]
    /// `continue_on_error: true`: a failure is recorded and the run goes on.
    public var continueOnError: Bool
    /// `compensate:`: what undoes this step if the run later fails.
    public var compensation: CompensationSpec?
    /// Where the step's mapping starts.
    public var location: SourceLocation
    /// Where the step's `id` value is written.
    public var idLocation: SourceLocation
    /// Where the action field is written.
    public var actionLocation: SourceLocation

    /// Compares steps field by field.
    public static func == (lhs: StepSpec, rhs: StepSpec) -> Bool {
        lhs.id == rhs.id && lhs.action == rhs.action && lhs.needs == rhs.needs && lhs.condition == rhs.condition
            && lhs.retry == rhs.retry && lhs.timeout == rhs.timeout
            && lhs.environment.map(\.name) == rhs.environment.map(\.name)
            && lhs.environment.map(\.value) == rhs.environment.map(\.value)
            && lhs.continueOnError == rhs.continueOnError && lhs.compensation == rhs.compensation
            && lhs.location == rhs.location
    }

    /// Hashes the step's id and location (enough to tell steps apart).
    public func hash(into hasher: inout Hasher) {
        hasher.combine(id)
        hasher.combine(location)
    }

    /// Every spec value of the step evaluated while it runs (action inputs, `if`, `env`, templated durations and
    /// retry fields), for checking templates.
    public var values: [SpecValue] {
        var values: [SpecValue] = []
        if let condition { values.append(condition) }
        values.append(contentsOf: environment.map(\.value))
        if let template = timeout?.templateValue { values.append(template) }
        values.append(contentsOf: retry?.templateValues ?? [])
        switch action {
        case .run, .parallel: break
        case .sleep(let duration): if let template = duration.templateValue { values.append(template) }
        case .handler(_, let input): if let input { values.append(input) }
        case .recv(let action):
            values.append(action.topic)
            if let value = action.defaultValue { values.append(value) }
            if let template = action.timeout?.templateValue { values.append(template) }
        case .send(let action):
            values.append(contentsOf: [action.destination, action.topic])
            if let message = action.message { values.append(message) }
        case .setEvent(let key, let value): values.append(contentsOf: [key, value])
        case .getEvent(let action):
            values.append(contentsOf: [action.source, action.key])
            if let template = action.timeout?.templateValue { values.append(template) }
        case .workflow(let child): values.append(contentsOf: child.values)
        case .map(let map):
            values.append(map.items)
            if let queue = map.queue { values.append(queue) }
        }
        return values
    }
}

extension ChildWorkflowAction {
    /// The child's input, queue, priority and dedup id values.
    public var values: [SpecValue] {
        [input, queue, priority, deduplicationID].compactMap { $0 }
    }
}

/// A step's `compensate:` body: a `run` or `handler` action with its own `env`, `retry` and `timeout`.
public struct CompensationSpec: Sendable, Hashable {
    /// The action (only `.run` or `.handler`).
    public var action: StepAction
    /// `env:` for a `run` compensation.
    public var environment: [(name: String, value: SpecValue)]
    /// `retry:`.
    public var retry: RetrySpec?
    /// `timeout:` (a template is evaluated when the compensation runs).
    public var timeout: DurationValue?
    /// Where the compensation body starts.
    public var location: SourceLocation

    /// Compares compensations field by field.
    public static func == (lhs: CompensationSpec, rhs: CompensationSpec) -> Bool {
        lhs.action == rhs.action && lhs.environment.map(\.name) == rhs.environment.map(\.name)
            && lhs.environment.map(\.value) == rhs.environment.map(\.value) && lhs.retry == rhs.retry
            && lhs.timeout == rhs.timeout && lhs.location == rhs.location
    }

    /// Hashes the compensation's location.
    public func hash(into hasher: inout Hasher) { hasher.combine(location) }

    /// The values evaluated when it runs.
    public var values: [SpecValue] {
        var values = environment.map(\.value)
        if case .handler(_, let input?) = action { values.append(input) }
        if let template = timeout?.templateValue { values.append(template) }
        values.append(contentsOf: retry?.templateValues ?? [])
        return values
    }
}
