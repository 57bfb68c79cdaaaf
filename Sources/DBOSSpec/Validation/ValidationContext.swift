/// What a spec is checked against besides itself.
public struct ValidationContext: Sendable {
    /// The names of the Swift handlers registered with the process; a `handler:` step must name one of them.
    /// Plain `dbos-run` registers none.
    public var knownHandlers: Set<String>
    /// The other specs of the same directory (or loaded by the same worker): `workflow:` steps name one of
    /// them, and their `queues:` must agree with this spec's.
    public var otherSpecs: [WorkflowSpec]
    /// Whether `handler:` names are checked; `dbos-run graph` turns this off to draw specs meant for programs
    /// that register handlers.
    public var checksHandlers: Bool
    /// Whether this spec's queue declarations must agree with `otherSpecs`'; off for the text stored with a
    /// run, which was checked when the run was created: the queues in effect are the process's own.
    public var checksQueueConflicts: Bool

    /// Creates a context.
    public init(
        knownHandlers: Set<String> = [], otherSpecs: [WorkflowSpec] = [], checksHandlers: Bool = true,
        checksQueueConflicts: Bool = true
    ) {
        self.knownHandlers = knownHandlers
        self.otherSpecs = otherSpecs
        self.checksHandlers = checksHandlers
        self.checksQueueConflicts = checksQueueConflicts
    }
}
