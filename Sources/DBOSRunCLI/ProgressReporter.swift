import DBOSSpec
import Foundation
import Synchronization

/// Writes the progress of the runs this process executes to stderr, one line per event.
///
/// Plain lines when stderr is not a terminal (logs, CI, tests); on a terminal the same lines with symbols
/// and colours. Lines are written whole, so concurrent steps never interleave within a line.
struct ProgressReporter: SpecRunObserver {
    /// Only the events of this run and its descendants; nil for every run (a worker).
    var rootWorkflowID: String?
    /// Symbols and colours for a terminal.
    var decorated: Bool
    /// Steps reported as replayed from their checkpoint, whose following `stepFinished` says nothing new.
    private let replayedSteps = ReplayedSteps()

    /// A reporter for one run (`rootWorkflowID`) or every run, decorated when stderr is a terminal.
    init(rootWorkflowID: String?) {
        self.rootWorkflowID = rootWorkflowID
        let environment = ProcessInfo.processInfo.environment
        self.decorated = isatty(STDERR_FILENO) == 1 && (environment["NO_COLOR"] ?? "").isEmpty && environment["TERM"] != "dumb"
        if decorated { TerminalStatusLine.shared.enable() }
    }

    func specRun(_ event: SpecRunEvent) {
        if let rootWorkflowID, event.rootWorkflowID != rootWorkflowID { return }
        if decorated { track(event) }
        guard let line = line(for: event) else { return }
        printError(line)
    }

    /// Keeps the terminal's status line's list of running steps current.
    private func track(_ event: SpecRunEvent) {
        let label = label(of: event)
        switch event.kind {
        case .stepStarted(let stepID, _, _): TerminalStatusLine.shared.started(label + stepID)
        case .stepFinished(let stepID, _, _, _): TerminalStatusLine.shared.finished(label + stepID)
        case .compensationStarted(let stepID, _): TerminalStatusLine.shared.started(label + stepID + ".compensate")
        case .compensationFinished(let stepID, _, _): TerminalStatusLine.shared.finished(label + stepID + ".compensate")
        default: break
        }
    }

    /// The run's part of a step's label on the status line: nothing for the run itself, `child/` for a child.
    private func label(of event: SpecRunEvent) -> String {
        if event.workflowID == event.rootWorkflowID { return rootWorkflowID == nil ? event.workflowID + "/" : "" }
        let suffix = event.workflowID.hasPrefix(event.rootWorkflowID + "-")
            ? String(event.workflowID.dropFirst(event.rootWorkflowID.count + 1)) : event.workflowID
        return (rootWorkflowID == nil ? event.rootWorkflowID + "-" : "") + suffix + "/"
    }

    /// The line for one event; nil for the events a one-run display leaves to the command (its own start and end).
    func line(for event: SpecRunEvent) -> String? {
        let isRoot = event.workflowID == event.rootWorkflowID
        let prefix: String
        if rootWorkflowID == nil {
            prefix = "[\(event.workflowID)] "
        } else if isRoot {
            prefix = ""
        } else {
            let suffix = event.workflowID.hasPrefix(event.rootWorkflowID + "-")
                ? String(event.workflowID.dropFirst(event.rootWorkflowID.count + 1)) : event.workflowID
            prefix = "[\(suffix)] "
        }
        switch event.kind {
        case .runStarted(let specName):
            if rootWorkflowID != nil, isRoot { return nil }
            return prefix + styled("▶", .blue) + "run of '\(specName)' started"
        case .stepStarted(let stepID, let slot, let action):
            return prefix + styled("▶", .blue) + "\(stepID): started (\(action), slot \(slot))"
        case .stepRetrying(let stepID, let attempt, let error):
            return prefix + styled("↻", .yellow) + "\(stepID): attempt \(attempt) after error: \(error)"
        case .stepWaiting(let stepID, let what):
            return prefix + styled("…", .yellow) + "\(stepID): waiting for \(what)"
        case .stepFinished(let stepID, let status, let duration, let error):
            if replayedSteps.remove(event.workflowID, stepID) { return nil }
            if status == .error {
                return prefix + styled("✗", .red) + "\(stepID): failed after \(Self.text(for: duration))"
                    + (error.map { ": \($0)" } ?? "")
            }
            return prefix + styled("✓", .green) + "\(stepID): done in \(Self.text(for: duration))"
        case .stepSkipped(let stepID):
            return prefix + styled("-", .gray) + "\(stepID): skipped (if: was false)"
        case .stepReplayed(let stepID, let slot):
            replayedSteps.insert(event.workflowID, stepID)
            return prefix + styled("✓", .gray) + "\(stepID): already done (checkpoint at slot \(slot)), not run again"
        case .compensationStarted(let stepID, let slot):
            return prefix + styled("↩", .yellow) + "\(stepID): compensating (slot \(slot))"
        case .compensationFinished(let stepID, let status, let error):
            if status == .error {
                return prefix + styled("✗", .red) + "\(stepID): compensation failed" + (error.map { ": \($0)" } ?? "")
            }
            return prefix + styled("↩", .green) + "\(stepID): compensated"
        case .runFinished(let status, let error):
            if rootWorkflowID != nil, isRoot { return nil }
            if status == .error {
                return prefix + styled("✗", .red) + "run failed" + (error.map { ": \($0)" } ?? "")
            }
            return prefix + styled("✓", .green) + "run succeeded"
        }
    }

    private enum Colour: String {
        case red = "31", green = "32", yellow = "33", blue = "34", gray = "90"
    }

    /// A status marker: coloured with a space on a terminal, nothing in plain lines (which start with the step).
    private func styled(_ symbol: String, _ colour: Colour) -> String {
        decorated ? "\u{1B}[\(colour.rawValue)m\(symbol)\u{1B}[0m " : ""
    }

    /// `12ms`, `1.25s`, `2m05s`.
    static func text(for duration: Duration) -> String {
        let milliseconds = Int64(duration.components.seconds) * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if milliseconds < 1000 { return "\(milliseconds)ms" }
        if milliseconds < 60_000 { return String(format: "%.2fs", Double(milliseconds) / 1000) }
        let seconds = milliseconds / 1000
        return String(format: "%dm%02ds", seconds / 60, seconds % 60)
    }
}

/// The (run, step) pairs last reported as replayed.
private final class ReplayedSteps: Sendable {
    private let steps = Mutex<Set<String>>([])

    func insert(_ workflowID: String, _ stepID: String) {
        _ = steps.withLock { $0.insert(workflowID + "\u{0}" + stepID) }
    }

    /// Removes the pair; returns whether it was there.
    func remove(_ workflowID: String, _ stepID: String) -> Bool {
        steps.withLock { $0.remove(workflowID + "\u{0}" + stepID) != nil }
    }
}
