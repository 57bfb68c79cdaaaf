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

    /// Creates a context.
    public init(knownHandlers: Set<String> = [], otherSpecs: [WorkflowSpec] = [], checksHandlers: Bool = true) {
        self.knownHandlers = knownHandlers
        self.otherSpecs = otherSpecs
        self.checksHandlers = checksHandlers
    }
}
