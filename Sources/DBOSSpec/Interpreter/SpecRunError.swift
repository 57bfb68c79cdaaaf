import DBOS

/// Why a spec run could not start or failed, with the step and its place in the spec where useful.
public enum SpecRunError: Error, Sendable, CustomStringConvertible {
    /// The input does not satisfy the spec's `input:` schema; one error per problem.
    case invalidInput(spec: String, errors: [SpecError])
    /// A step failed, e.g. `step 'charge' (order.yaml:12:5) failed: exit code 3: card declined`.
    case stepFailed(stepID: String, location: SourceLocation, message: String)
    /// A template could not be evaluated while the run executed.
    case expressionFailed(SpecError)
    /// No spec with this name is known to this process or stored with the run.
    case unknownSpec(String)
    /// The spec text stored with a run no longer validates (for example a handler is no longer registered).
    case invalidStoredSpec(workflowID: String, SpecValidationError)
    /// A child or fragment run names a steps list its spec does not have.
    case unknownStepsList(workflowID: String, path: String)

    /// A message a person can act on.
    public var description: String {
        switch self {
        case .invalidInput(let spec, let errors):
            // One line (a child run's or a cron tick's error), each problem with the schema line it violates.
            "invalid input for '\(spec)': " + errors.map { error in
                (error.message.hasPrefix("invalid input: ") ? String(error.message.dropFirst(15)) : error.message)
                    + " (\(error.location))"
            }.joined(separator: "; ")
        case .stepFailed(let stepID, let location, let message):
            "step '\(stepID)' (\(location)) failed: \(message)"
        case .expressionFailed(let error): error.description
        case .unknownSpec(let name): "no spec named '\(name)' is loaded in this process or stored with the run"
        case .invalidStoredSpec(let workflowID, let error):
            "the spec stored with run '\(workflowID)' is no longer valid:\n\(error.description)"
        case .unknownStepsList(let workflowID, let path):
            "run '\(workflowID)' refers to steps list '\(path)', which its spec does not have"
        }
    }
}

/// A step's failure as checkpointed: only the message (already masked), so a replay rethrows the same text.
struct StepFailure: Error, Sendable, CustomStringConvertible {
    var message: String
    var description: String { message }
}
