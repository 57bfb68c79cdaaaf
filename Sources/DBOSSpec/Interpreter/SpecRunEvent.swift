import DBOS
import Foundation

/// Something that happened while this process executed a spec run, for progress displays.
///
/// Events come only from the process that executes the steps; a step found checkpointed by an earlier
/// execution is reported as `stepReplayed`, not run again.
public struct SpecRunEvent: Sendable {
    /// What happened.
    public enum Kind: Sendable, Equatable {
        /// The run (or a child or fragment run) began executing its steps in this process.
        case runStarted(specName: String)
        /// A step began: its id, checkpoint slot and action (`run`, `handler`, `map`, ...).
        case stepStarted(stepID: String, slot: Int, action: String)
        /// A step's attempt failed and attempt `attempt` follows.
        case stepRetrying(stepID: String, attempt: Int, error: String)
        /// A step waits for something outside the process: a sleep, a message, an event or child runs.
        case stepWaiting(stepID: String, what: String)
        /// A step ended (`success` or `error`) after `duration` in this process.
        case stepFinished(stepID: String, status: StepOutcome.Status, duration: Duration, error: String?)
        /// A step's `if:` was false.
        case stepSkipped(stepID: String)
        /// A step's result was found checkpointed by an earlier execution: it did not run again.
        case stepReplayed(stepID: String, slot: Int)
        /// A completed step's compensation began, the run having failed.
        case compensationStarted(stepID: String, slot: Int)
        /// A compensation ended.
        case compensationFinished(stepID: String, status: StepOutcome.Status, error: String?)
        /// The run's steps ended in this process: `success` or `error`.
        case runFinished(status: StepOutcome.Status, error: String?)
    }

    /// The run (or child run) the event belongs to.
    public var workflowID: String
    /// The top-level run it descends from (equal to `workflowID` for a top-level run).
    public var rootWorkflowID: String
    /// When it happened.
    public var time: Date
    /// What happened.
    public var kind: Kind

    /// An event.
    public init(workflowID: String, rootWorkflowID: String, time: Date = Date(), kind: Kind) {
        self.workflowID = workflowID
        self.rootWorkflowID = rootWorkflowID
        self.time = time
        self.kind = kind
    }
}

/// Receives the events of spec runs executed by this process; called synchronously, so keep it quick.
public protocol SpecRunObserver: Sendable {
    /// Called once per event, in order for any one run.
    func specRun(_ event: SpecRunEvent)
}
