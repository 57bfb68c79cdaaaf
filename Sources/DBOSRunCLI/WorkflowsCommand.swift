import ArgumentParser

/// `dbos-run workflows`: inspect and manage workflow runs in the system database.
public struct WorkflowsCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "workflows",
        abstract: "Inspect and manage workflow runs.",
        subcommands: [
            ListWorkflowsCommand.self, GetWorkflowCommand.self, ListStepsCommand.self,
            CancelWorkflowCommand.self, ResumeWorkflowCommand.self, ForkWorkflowCommand.self,
        ])

    public init() {}
}
