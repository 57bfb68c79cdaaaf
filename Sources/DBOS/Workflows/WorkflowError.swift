/// Errors the engine reports about workflows, with messages a person can act on.
public enum WorkflowError: Error, CustomStringConvertible, Sendable, Equatable {
    /// No workflow with this name was registered in this process.
    case unregisteredWorkflow(String)
    /// A workflow with this name was registered twice.
    case duplicateRegistration(String)
    /// The runtime must be launched first (or was shut down).
    case notLaunched
    /// Workflows must be registered before launch.
    case registrationAfterLaunch(String)
    /// The ID is already used by a workflow with another name.
    case conflictingWorkflowID(id: String, existingName: String, requestedName: String)
    /// No workflow has this ID.
    case nonexistentWorkflow(String)
    /// The workflow was cancelled (by a call or because its timeout expired).
    case cancelled(workflowID: String, reason: String?)
    /// The workflow was abandoned after too many recovery attempts.
    case maxRecoveryAttemptsExceeded(workflowID: String, attempts: Int)
    /// Replay found a different operation at a checkpoint slot: the workflow's code changed.
    case nondeterministicReplay(workflowID: String, functionID: Int, recorded: String, requested: String)
    /// A step failed on every attempt of its retry policy.
    case maxStepRetriesExceeded(step: String, attempts: Int, lastError: String)
    /// A value could not be encoded as JSON.
    case serializationFailed(type: String, reason: String)
    /// A stored value does not decode as the requested type (often: the workflow's types changed).
    case deserializationFailed(type: String, reason: String)
    /// The workflow finished with an error; this is that error as stored.
    case failed(workflowID: String, error: PortableError)
    /// A wait timed out.
    case timedOut(String)
    /// A queue's configuration cannot work.
    case invalidQueue(String, problems: [String])
    /// Options that do not fit together.
    case invalidOptions([String])
    /// Another run holds this deduplication ID on the queue.
    case queueDeduplicated(queue: String, deduplicationID: String, holder: String)
    /// Only cancelled, failed or abandoned runs can be resumed.
    case cannotResume(id: String, state: WorkflowState)
    /// Another execution of the run (recovered elsewhere, say) recorded a different result at an
    /// operation whose result this execution had already used: this execution stopped and left
    /// the run to the other one, whose outcome the run's handles report.
    case supersededExecution(workflowID: String, functionID: Int)
    /// A run recorded by other code (another application version) cannot be replayed here.
    case applicationVersionMismatch(id: String, recorded: String, current: String)
    /// A durable operation was called outside a workflow or inside a step, where it is not allowed.
    case invalidContext(String)

    public var description: String {
        switch self {
        case .unregisteredWorkflow(let name):
            "no workflow named '\(name)' is registered in this process"
        case .duplicateRegistration(let name):
            "a workflow named '\(name)' is already registered"
        case .notLaunched:
            "the DBOS runtime is not running: call launch() first"
        case .registrationAfterLaunch(let name):
            "workflow '\(name)' must be registered before launch()"
        case .conflictingWorkflowID(let id, let existing, let requested):
            "workflow ID '\(id)' is already used by a '\(existing)' workflow; cannot start '\(requested)' with it"
        case .nonexistentWorkflow(let id):
            "no workflow with ID '\(id)'"
        case .cancelled(let id, let reason):
            "workflow '\(id)' was cancelled" + (reason.map { ": \($0)" } ?? "")
        case .maxRecoveryAttemptsExceeded(let id, let attempts):
            "workflow '\(id)' exceeded its maximum recovery attempts (\(attempts) attempts) and was abandoned"
        case .nondeterministicReplay(let id, let functionID, let recorded, let requested):
            "workflow '\(id)' is not deterministic: slot \(functionID) recorded '\(recorded)' but the code now runs '\(requested)'"
        case .maxStepRetriesExceeded(let step, let attempts, let lastError):
            "step '\(step)' failed after \(attempts) attempts: \(lastError)"
        case .serializationFailed(let type, let reason):
            "cannot encode a \(type) as JSON: \(reason)"
        case .deserializationFailed(let type, let reason):
            "stored value does not decode as \(type): \(reason)"
        case .failed(_, let error):
            error.message
        case .timedOut(let what):
            "timed out \(what)"
        case .invalidContext(let what):
            what
        case .applicationVersionMismatch(let id, let recorded, let current):
            "workflow '\(id)' was started by application version \(recorded); this process runs version \(current), "
                + "whose code may not replay its checkpoints"
        case .invalidQueue(let name, let problems):
            "queue '\(name)': " + problems.joined(separator: "; ")
        case .invalidOptions(let problems):
            "invalid workflow options: " + problems.joined(separator: "; ")
        case .queueDeduplicated(let queue, let deduplicationID, let holder):
            "workflow '\(holder)' already holds deduplication ID '\(deduplicationID)' on queue '\(queue)'"
        case .supersededExecution(let id, let functionID):
            "another execution of workflow '\(id)' recorded a different result for operation \(functionID) first;"
                + " this execution stopped and left the run to it"
        case .cannotResume(let id, let state):
            "workflow '\(id)' is \(state.rawValue); only CANCELLED, ERROR or MAX_RECOVERY_ATTEMPTS_EXCEEDED runs can be resumed"
        }
    }

    /// Whether this error means the run was cancelled.
    public var isCancellation: Bool {
        if case .cancelled = self { return true }
        return false
    }

    /// Whether this error means another execution of the run took it over.
    public var isSupersededExecution: Bool {
        if case .supersededExecution = self { return true }
        return false
    }

    /// The name stored in the portable error format (DBOS error code names where DBOS has one).
    var portableName: String {
        switch self {
        case .cancelled: "WorkflowCancelled"
        case .maxRecoveryAttemptsExceeded: "DeadLetterQueue"
        case .nondeterministicReplay: "UnexpectedStep"
        case .maxStepRetriesExceeded: "MaxStepRetriesExceeded"
        case .conflictingWorkflowID, .supersededExecution: "ConflictingWorkflowID"
        case .nonexistentWorkflow: "NonExistentWorkflow"
        case .timedOut: "Timeout"
        case .queueDeduplicated: "QueueDeduplicated"
        case .failed(_, let error): error.name
        default: "WorkflowError"
        }
    }
}
