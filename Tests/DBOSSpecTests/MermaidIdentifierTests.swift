@testable import DBOSSpec
import Testing

/// Mermaid node IDs: a step's own id wherever Mermaid's flowchart lexer reads it back unchanged, a derived ID
/// (the label still naming the step) where it would read a keyword, an arrow or a JavaScript prototype name.
@Suite struct MermaidIdentifierTests {
    @Test(arguments: [
        "fetch", "ship", "a-b", "right-a", "a1-b2-c3", "graph_x", "endpoint", "end_step", "End", "styles", "12", "1st",
        "12-end", "x", "o", "v", "default", "call-back", "click-me", "directions",
    ])
    func aPlainStepIDIsItsOwnNodeID(id: String) {
        #expect(MermaidIdentifiers.isSafe(id))
    }

    @Test(arguments: [
        "end", "end-2", "2end", "subgraph", "graph", "flowchart", "flowchart-elk", "style", "style-1", "linkStyle",
        "classDef", "class", "class-a", "interpolate", "_self", "_blank", "_parent", "_top", "call", "click", "href",
        "a--b", "-x", "x-", "-", "constructor", "__proto__", "toString", "direction", "set-direction", "#3", "",
        "my_parent", "open_blank", "x_self", "page_top",
    ])
    func aStepIDMermaidWouldMisreadIsNotANodeID(id: String) {
        #expect(!MermaidIdentifiers.isSafe(id))
    }

    @Test func misreadAndRepeatedIDsGetDerivedNodeIDsThatNoStepHas() throws {
        let (spec, errors) = SpecLoader().decode(text: """
            steps:
              - {id: end, run: echo}
              - {id: step_end, run: echo}
              - id: both
                parallel:
                  - steps: [{id: fetch, run: echo}]
                  - steps: [{id: fetch, run: echo}, {id: a--b, run: echo}]
            """, file: "g.yaml")
        #expect(errors.isEmpty, "\(errors)")
        let graph = StepGraph(steps: try #require(spec).steps)
        #expect(GraphRenderer.render(graph, name: "demo", format: .mermaid) == """
            ---
            title: demo
            ---
            flowchart TD
                step_end_2["end · run · slot 0"]
                step_end["step_end · run · slot 1"]
                both["both · parallel · slot 2"]
                step_end_2 --> step_end
                step_end --> both
                subgraph both_branch1["both: branch 1"]
                    fetch["fetch · run · slot 0"]
                end
                both -.-> both_branch1
                subgraph both_branch2["both: branch 2"]
                    both_branch2_fetch["fetch · run · slot 0"]
                    both_branch2_a__b["a--b · run · slot 1"]
                    both_branch2_fetch --> both_branch2_a__b
                end
                both -.-> both_branch2

            """)
    }
}
