import DBOS

/// Workflow runs and steps as text for people (the output without `--json`).
public enum WorkflowText {
    /// Runs as a table with the columns ID, NAME, STATUS, QUEUE, CREATED.
    public static func table(for statuses: [WorkflowStatus]) -> String {
        TextTable(
            headers: ["ID", "NAME", "STATUS", "QUEUE", "CREATED"],
            rows: statuses.map { status in
                [status.workflowID, status.name, status.state.rawValue, WorkflowJSON.queue(of: status) ?? "-", Timestamp.text(status.createdAt)]
            }
        ).text
    }

    /// One run as aligned `field  value` lines; values follow the printing rules (strings bare).
    public static func details(for status: WorkflowStatus) -> String {
        let values = ValuePrinter(printsJSON: false)
        var rows: [[String]] = [
            ["ID", status.workflowID],
            ["Name", status.name],
            ["Status", status.state.rawValue],
            ["Input", status.input.map(values.text(for:)) ?? "-"],
        ]
        if let output = status.output { rows.append(["Output", values.text(for: output)]) }
        if let error = status.error { rows.append(["Error", error.message]) }
        rows += [
            ["Queue", WorkflowJSON.queue(of: status) ?? "-"],
            ["Executor", status.executorID ?? "-"],
            ["Created", Timestamp.text(status.createdAt)],
            ["Updated", Timestamp.text(status.updatedAt)],
            ["Attempts", String(status.recoveryAttempts)],
        ]
        return TextTable(headers: [], rows: rows).textWithoutHeader
    }

    /// A run's steps as a table with the columns STEP, NAME, STATUS, STARTED, COMPLETED, RESULT (the
    /// output, or the error's message).
    static func table(for steps: [SpecStepView.Row]) -> String {
        let values = ValuePrinter(printsJSON: false)
        return TextTable(
            headers: ["STEP", "NAME", "STATUS", "STARTED", "COMPLETED", "RESULT"],
            rows: steps.map { step in
                [
                    String(step.slot), step.name, step.isSkipped ? "SKIPPED" : step.status,
                    step.startedAt.map(Timestamp.text) ?? "-", step.completedAt.map(Timestamp.text) ?? "-",
                    step.error ?? step.output.map(values.text(for:)) ?? "-",
                ]
            }
        ).text
    }
}
