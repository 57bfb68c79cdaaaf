import DBOS

/// What a step does: exactly one action per step.
public enum StepAction: Sendable, Hashable {
    /// `run: <shell>`: `/bin/sh -c` with the step's `env`.
    case run(command: String, output: RunOutputFormat)
    /// `handler: <name>` + `with:`: a registered Swift handler called with `with` as JSON.
    case handler(name: String, with: SpecValue?)
    /// `sleep: <duration>`: a durable sleep (the duration may be a template).
    case sleep(DurationValue)
    /// `recv: {topic, timeout, default}`: waits for the next message on a topic.
    case recv(ReceiveAction)
    /// `send: {to, topic, message}`: an exactly-once message to another run.
    case send(SendAction)
    /// `set_event: {key, value}`: publishes a key-value event of this run.
    case setEvent(key: SpecValue, value: SpecValue)
    /// `get_event: {from, key, timeout}`: waits for another run's event.
    case getEvent(GetEventAction)
    /// `workflow: <spec name>`: a child run of another spec.
    case workflow(ChildWorkflowAction)
    /// `map: <list>` + `workflow:` or `steps:`: one child run per item.
    case map(MapAction)
    /// `parallel: [{steps: [...]}, ...]`: branches run concurrently as child runs.
    case parallel([ParallelBranch])

    /// The action's field name as written in the spec (`run`, `handler`, `set_event`...).
    public var fieldName: String {
        switch self {
        case .run: "run"
        case .handler: "handler"
        case .sleep: "sleep"
        case .recv: "recv"
        case .send: "send"
        case .setEvent: "set_event"
        case .getEvent: "get_event"
        case .workflow: "workflow"
        case .map: "map"
        case .parallel: "parallel"
        }
    }
}

/// How a `run` step's stdout becomes its output (`output: text|json|lines`).
public enum RunOutputFormat: String, Sendable, Hashable, CaseIterable {
    /// Stdout as text without its trailing newlines (the default).
    case text
    /// Stdout parsed as JSON.
    case json
    /// A list of the non-empty lines of stdout.
    case lines
}

/// A `recv:` action.
public struct ReceiveAction: Sendable, Hashable {
    /// The topic to wait on.
    public var topic: SpecValue
    /// How long to wait (zero: only a message already there); `nil`: the step's `timeout:`, else forever.
    public var timeout: DurationValue?
    /// The output on timeout; without it a timeout fails the step.
    public var defaultValue: SpecValue?
}

/// A `send:` action.
public struct SendAction: Sendable, Hashable {
    /// The receiving run's workflow id.
    public var destination: SpecValue
    /// The topic.
    public var topic: SpecValue
    /// The message (null when absent).
    public var message: SpecValue?
}

/// A `get_event:` action.
public struct GetEventAction: Sendable, Hashable {
    /// The run whose event to read.
    public var source: SpecValue
    /// The event key.
    public var key: SpecValue
    /// How long to wait (zero: only an event already set); `nil`: the step's `timeout:`, else forever.
    public var timeout: DurationValue?
}

/// A `workflow:` child run (also the body of a `map` over a child spec).
public struct ChildWorkflowAction: Sendable, Hashable {
    /// The child spec's `name`.
    public var name: String
    /// Where the name is written.
    public var nameLocation: SourceLocation
    /// The child's input.
    public var input: SpecValue?
    /// The queue to enqueue the child on.
    public var queue: SpecValue?
    /// The child's priority on a queue with priority enabled.
    public var priority: SpecValue?
    /// A deduplication id for the queue.
    public var deduplicationID: SpecValue?
    /// Whether the step waits for the child's result (default true); when false the output is `{workflow_id}`.
    public var wait: Bool
}

/// A `map:` action.
public struct MapAction: Sendable, Hashable {
    /// What each item runs.
    public enum Body: Sendable, Hashable {
        /// A child run of another spec per item, with `with:` evaluated per item.
        case workflow(ChildWorkflowAction)
        /// An inline list of steps run as a child run per item.
        case steps([StepSpec])
    }

    /// The list expression to map over.
    public var items: SpecValue
    /// What each item runs.
    public var body: Body
    /// The queue the per-item child runs go on (bounding the fan-out by `worker_concurrency`).
    public var queue: SpecValue?
}

/// One branch of a `parallel:` action.
public struct ParallelBranch: Sendable, Hashable {
    /// The branch's steps, run as one child run.
    public var steps: [StepSpec]
    /// Where the branch starts.
    public var location: SourceLocation
}
