import DBOS

/// What expressions see of a finished step: `steps.<id>.output`, `.status` and `.error`.
public struct StepOutcome: Sendable, Hashable {
    /// How a step ended.
    public enum Status: String, Sendable, Hashable, CaseIterable {
        /// The step succeeded.
        case success
        /// The step failed and `continue_on_error` let the run go on.
        case error
        /// The step's `if:` was false.
        case skipped
    }

    /// The step's output (null when skipped or failed).
    public var output: JSONValue
    /// How it ended.
    public var status: Status
    /// The error message when it failed.
    public var errorMessage: String?

    /// Creates an outcome.
    public init(output: JSONValue, status: Status, errorMessage: String? = nil) {
        self.output = output
        self.status = status
        self.errorMessage = errorMessage
    }

    /// `{"output": ..., "status": "...", "error": ...}`, the value of `steps.<id>`.
    public var jsonValue: JSONValue {
        .object([
            "output": output, "status": .string(status.rawValue),
            "error": errorMessage.map { .string($0) } ?? .null,
        ])
    }
}

extension ExpressionScope {
    /// The scope of a step: the run's input, the outcomes of finished steps, the run's id and name, and inside
    /// a `map` body the current `item` and `index`.
    public init(
        input: JSONValue, steps: [String: StepOutcome], workflowID: String, workflowName: String,
        item: JSONValue? = nil, index: Int? = nil
    ) {
        var variables: [String: JSONValue] = [
            "input": input,
            "steps": .object(steps.mapValues(\.jsonValue)),
            "workflow": ["id": .string(workflowID), "name": .string(workflowName)],
        ]
        if let item { variables["item"] = item }
        if let index { variables["index"] = .integer(Int64(index)) }
        self.init(variables: variables)
    }
}
