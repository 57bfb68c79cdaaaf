import DBOS

/// One workflow spec file, decoded: everything `dbos-run` needs to validate, graph and run it.
public struct WorkflowSpec: Sendable {
    /// The workflow name (default: the file name without `.yaml`/`.yml`).
    public var name: String
    /// `description:`.
    public var description: String?
    /// `input:`: the schema a run's input must satisfy, applying its defaults.
    public var inputSchema: InputSchema?
    /// `timeout:` for the whole workflow.
    public var timeout: Duration?
    /// `queues:` this spec declares.
    public var queues: [QueueSpec]
    /// `schedule:`: a 6-field cron expression (sec min hour dom month dow).
    public var schedule: String?
    /// Where `schedule:` is written.
    public var scheduleLocation: SourceLocation?
    /// `timezone:` for the schedule (IANA name); UTC when absent.
    public var timezone: String?
    /// The steps in list order.
    public var steps: [StepSpec]
    /// `output:`; when absent the output is the last step's output.
    public var output: SpecValue?
    /// The file the spec was loaded from.
    public var file: String
    /// The spec's text, stored with each run so recovery uses the text that started it.
    public var sourceText: String
    /// Where the spec's root mapping starts.
    public var location: SourceLocation
    /// Where `name:` is written (the root location when defaulted).
    public var nameLocation: SourceLocation
}

extension WorkflowSpec {
    /// The run's input with the schema's defaults applied, or every way it fails the `input:` schema.
    /// Without a schema the input is returned unchanged.
    public func preparedInput(_ input: JSONValue) throws(SpecValidationError) -> JSONValue {
        guard let inputSchema else { return input }
        let errors = inputSchema.validateInput(input)
        guard errors.isEmpty else { throw SpecValidationError(errors) }
        return inputSchema.applyingDefaults(to: input)
    }

    /// The queue this spec declares under `name`.
    public func queue(named name: String) -> QueueSpec? {
        queues.first { $0.name == name }
    }
}
