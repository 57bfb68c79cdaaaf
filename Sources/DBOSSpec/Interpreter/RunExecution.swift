import DBOS

/// What one run's execution shares between its steps.
struct RunExecution: Sendable {
    let interpreter: SpecInterpreter
    let context: WorkflowContext
    let spec: WorkflowSpec
    let rootWorkflowID: String
    /// Where the executed steps list is inside the spec: `[]` for the top level, else `[step id, branch, ...]`.
    let path: [JSONValue]
    let masker: SecretMasker
    /// Slots an earlier execution completed: their steps are replayed, not run.
    let completedSlots: Set<Int>

    func emit(_ kind: SpecRunEvent.Kind) {
        interpreter.emit(SpecRunEvent(
            workflowID: context.workflowID, rootWorkflowID: rootWorkflowID, kind: kind.masked(by: masker)))
    }

    func scope(_ variables: [String: JSONValue]) -> ExpressionScope {
        ExpressionScope(variables: variables, secret: interpreter.secretLookup)
    }

    /// Whether `error` means the run itself was stopped (cancelled, timed out, shut down, or superseded by
    /// another execution of it): then nothing is compensated and the error passes through unchanged, so the
    /// engine records the right outcome.
    func isStop(_ error: any Error) -> Bool {
        if Task.isCancelled || error is CancellationError { return true }
        switch error as? WorkflowError {
        case .notLaunched?: return true
        case .cancelled(let id, _)?: return id == context.workflowID
        case .supersededExecution(let id, _)?: return id == context.workflowID
        default: return false
        }
    }

    /// The attributes of a run started by this one: a reference to the top-level run, never a copy of texts.
    func descendantAttributes(specName: String, path: [JSONValue]?) -> JSONValue {
        RunAttributes(rootWorkflowID: rootWorkflowID, specName: specName, path: path).jsonValue
    }
}

extension SpecRunEvent.Kind {
    /// The event with every secret value in its texts replaced, so progress output never shows one.
    func masked(by masker: SecretMasker) -> Self {
        switch self {
        case .stepRetrying(let id, let attempt, let error):
            .stepRetrying(stepID: id, attempt: attempt, error: masker.mask(error))
        case .stepWaiting(let id, let what): .stepWaiting(stepID: id, what: masker.mask(what))
        case .stepFinished(let id, let status, let duration, let error):
            .stepFinished(stepID: id, status: status, duration: duration, error: error.map(masker.mask))
        case .compensationFinished(let id, let status, let error):
            .compensationFinished(stepID: id, status: status, error: error.map(masker.mask))
        case .runFinished(let status, let error): .runFinished(status: status, error: error.map(masker.mask))
        default: self
        }
    }
}
