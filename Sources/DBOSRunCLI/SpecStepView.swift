import DBOS
import DBOSSpec
import Foundation

/// A spec run's checkpointed steps as its author wrote them, for `workflows steps`.
///
/// The engine records a spec's steps as its own operations: a `sleep` as `DBOS.sleep` with the
/// wake-up time as output, a skipped step as a marker object, a child step as the start of a child
/// run (whose output is the child's own), and a `recv`/`get_event` timeout as an extra row at
/// `SpecInterpreter.timeoutSlotOffset + slot`. This view maps each row back to its step through the
/// spec text stored with the run (the same text that fixed the slots): the step's id as name,
/// null output for a skipped step (`SKIPPED` in the table), null for a sleep (`PENDING` until it wakes), the
/// child's status and output for a child step, and no rows for the timeout slots. A run without a
/// stored spec (not started from one, or its text cannot be read) is shown as recorded.
struct SpecStepView {
    /// A step as printed.
    struct Row {
        var slot: Int
        var name: String
        var status: String
        var output: JSONValue?
        var error: String?
        var startedAt: Date?
        var completedAt: Date?
        /// The step's `if:` was false: `SUCCESS` with null output in JSON (the contract's statuses), `SKIPPED`
        /// in the table.
        var isSkipped = false

        /// A recorded step as stored, with the CLI's status vocabulary.
        init(recorded step: StepInfo) {
            slot = step.functionID
            name = step.name
            status = step.error == nil ? "SUCCESS" : "ERROR"
            output = step.output
            error = step.error?.message
            startedAt = step.startedAt
            completedAt = step.completedAt
        }
    }

    /// Reads the rows of `workflowID` (nil: no such run) through `client`.
    static func rows(of workflowID: String, client: DBOSClient, now: Date = Date()) async throws -> [Row]? {
        guard let status = try await client.workflowStatus(id: workflowID) else { return nil }
        let steps = try await client.listSteps(workflowID: workflowID)
        if status.name == SpecInterpreter.mapWorkflowName || status.name == SpecInterpreter.parallelWorkflowName,
            RunAttributes(status.attributes) != nil
        {
            // A `map`/`parallel` coordinator: one slot per child run, each showing that child's outcome.
            var rows: [Row] = []
            for step in steps {
                var row = Row(recorded: step)
                try await showChildOutcome(in: &row, of: step, client: client)
                rows.append(row)
            }
            return rows
        }
        guard let graph = try await graph(of: status, client: client) else { return steps.map(Row.init(recorded:)) }
        var rows: [Row] = []
        for step in steps where step.functionID < SpecInterpreter.timeoutSlotOffset {
            rows.append(try await row(for: step, in: graph, run: status, client: client, now: now))
        }
        return rows
    }

    /// The graph whose slots the run's rows use: its stored spec's steps, or, for a child or fragment run,
    /// the steps of the spec (or nested list) its top-level run stored; nil when there is none.
    private static func graph(of status: WorkflowStatus, client: DBOSClient) async throws -> StepGraph? {
        guard let attributes = RunAttributes(status.attributes) else { return nil }
        func decoded(_ stored: RunAttributes.StoredSpec?) -> WorkflowSpec? {
            stored.flatMap { SpecLoader().decode(text: $0.text, file: $0.file).spec }
        }
        var spec: WorkflowSpec?
        if let own = attributes.spec {
            spec = decoded(own)
        } else if let rootID = attributes.rootWorkflowID, let name = attributes.specName,
            let root = try await client.workflowStatus(id: rootID).flatMap({ RunAttributes($0.attributes) })
        {
            // A child spec's text, or the root's own (a fragment of the top-level spec).
            spec = decoded(root.childSpecs[name]) ?? decoded(root.spec).flatMap { $0.name == name ? $0 : nil }
        }
        guard let spec else { return nil }
        var graph = StepGraph(steps: spec.steps)
        // A fragment run executes a nested list: its path is [step id, branch index, ...] from the spec's steps.
        var path = attributes.path ?? []
        while path.count >= 2 {
            guard let stepID = path[0].stringValue, case .integer(let index) = path[1],
                let nested = graph.nestedGraphs[stepID], nested.indices.contains(Int(index))
            else { return nil }
            graph = nested[Int(index)]
            path.removeFirst(2)
        }
        return path.isEmpty ? graph : nil
    }

    private static func row(
        for step: StepInfo, in graph: StepGraph, run: WorkflowStatus, client: DBOSClient, now: Date
    ) async throws -> Row {
        var row = Row(recorded: step)
        if let node = graph.nodes.first(where: { $0.compensationSlot == step.functionID }) {
            row.name = "\(node.id).compensate"
            return row
        }
        guard let node = graph.nodes.first(where: { $0.slot == step.functionID }) else { return row }
        row.name = node.id
        if step.output == SpecInterpreter.skippedStepMarker, step.error == nil {
            row.isSkipped = true
            row.output = nil
            return row
        }
        switch node.step.action {
        case .sleep:
            row.output = nil
            // The checkpoint holds the wake-up time from the start: until then the step is still sleeping,
            // and a run that ended before it (cancelled, timed out) interrupted it.
            guard let wakeUp = step.completedAt else { break }
            if !run.state.isTerminal, wakeUp > now {
                row.status = WorkflowState.pending.rawValue
                row.completedAt = nil
            } else if run.state.isTerminal, run.state != .success, wakeUp > run.completedAt ?? run.updatedAt {
                // (A run that succeeded slept to the end, whatever another machine's clock recorded.)
                row.status = run.state.rawValue
                row.completedAt = nil
            }
        case .recv(let action):
            // A timeout (or a null message) is recorded as null: the step's output is then its default,
            // and without one the step failed.
            guard step.output == nil || step.output == .null, step.error == nil else { break }
            if let fallback = action.defaultValue {
                row.output = fallback.constantValue
            } else {
                row.status = "ERROR"
                row.error = "no message" + named(" on topic", action.topic) + " within its timeout"
            }
        case .getEvent(let action):
            // A timeout (or a null value) is recorded as null, and fails the step.
            guard step.output == nil || step.output == .null, step.error == nil else { break }
            row.status = "ERROR"
            row.error = "no event" + named("", action.key) + named(" from run", action.source) + " within its timeout"
        case .workflow(let child) where !child.wait:
            if let childID = step.childWorkflowID { row.output = .object(["workflow_id": .string(childID)]) }
        case .workflow, .map, .parallel:
            try await showChildOutcome(in: &row, of: step, client: client)
        default:
            break
        }
        return row
    }

    /// `label 'text'` for a constant spec value, nothing for a template (its value is not known here).
    private static func named(_ label: String, _ value: SpecValue) -> String {
        value.constantValue?.stringValue.map { "\(label) '\($0)'" } ?? ""
    }

    /// A step that started a child run: its output is the child's, recorded with the child, and until
    /// the child ends the step is still running.
    private static func showChildOutcome(in row: inout Row, of step: StepInfo, client: DBOSClient) async throws {
        guard let childID = step.childWorkflowID, step.error == nil,
            let child = try await client.workflowStatus(id: childID)
        else { return }
        row.status = child.state.isTerminal ? child.state.rawValue : "PENDING"
        row.output = child.state == .success ? child.output : nil
        row.error = child.state.isTerminal ? child.error?.message : nil
        row.completedAt = child.state.isTerminal ? child.completedAt ?? child.updatedAt : nil
    }
}
