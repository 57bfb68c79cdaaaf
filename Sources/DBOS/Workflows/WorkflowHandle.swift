/// A reference to one workflow run, wherever it runs.
public struct WorkflowHandle<Output: Codable & Sendable>: Sendable {
    /// The run's ID.
    public let workflowID: String
    let runtime: DBOSRuntime

    /// Waits for the run to finish and returns its output.
    ///
    /// - Throws: the workflow's own error for a run of this process, `WorkflowError.failed` with
    ///   the stored error otherwise; `WorkflowError.cancelled` when it was cancelled or timed out;
    ///   `WorkflowError.maxRecoveryAttemptsExceeded` when it was abandoned.
    public func result() async throws -> Output {
        try await runtime.outcome(of: workflowID, as: Output.self)
    }

    /// The run's current status.
    public func status() async throws -> WorkflowStatus {
        guard let status = try await runtime.workflowStatus(id: workflowID) else {
            throw WorkflowError.nonexistentWorkflow(workflowID)
        }
        return status
    }
}
