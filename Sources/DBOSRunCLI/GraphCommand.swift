import ArgumentParser
import DBOSSpec

/// `dbos-run graph FILE [--format mermaid|dot]`: prints a spec's step graph with each step's checkpoint slot.
public struct GraphCommand: ParsableCommand {
    /// The command's name and help.
    public static let configuration = CommandConfiguration(
        commandName: "graph",
        abstract: "Print a spec's step graph as Mermaid or Graphviz DOT.",
        discussion: """
            Each step shows its action and checkpoint slot (the N of 'workflows fork --from-step N'). --db is \
            accepted like on every command; no database is opened.
            """)

    /// `--db URL`, accepted like on every command and never opened: this command reads only spec files.
    @OptionGroup public var database: DatabaseOptions

    /// The spec file.
    @Argument(help: "The spec file.", completion: .file(extensions: ["yaml", "yml"]))
    public var file: String

    /// The output format.
    @Option(help: "Output format: mermaid or dot.")
    public var format: GraphRenderer.Format = .mermaid

    /// Creates the command (ArgumentParser fills in the options).
    public init() {}

    /// Validates the spec (handler names aside) and prints its graph; exits 2 on an invalid spec.
    public mutating func run() throws {
        var loader = SpecLoader()
        loader.checksHandlers = false
        do {
            let spec = try loader.load(file: file)
            print(GraphRenderer.render(StepGraph(steps: spec.steps), name: spec.name, format: format), terminator: "")
        } catch {
            for problem in error.errors { printError(problem.description) }
            throw ExitCode(2)
        }
    }
}

extension GraphRenderer.Format: ExpressibleByArgument {}
