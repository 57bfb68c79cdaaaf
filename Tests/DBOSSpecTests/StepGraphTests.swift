import DBOS
import DBOSSpec
import Testing

@Suite struct StepGraphTests {
    func spec(_ text: String) throws -> WorkflowSpec {
        let (spec, errors) = SpecLoader().decode(text: text, file: "g.yaml")
        #expect(errors.isEmpty, "\(errors)")
        return try #require(spec)
    }

    @Test func aStepWithoutNeedsNeedsThePreviousStep() throws {
        let graph = StepGraph(steps: try spec("""
            steps:
              - {id: a, run: echo}
              - {id: b, run: echo}
              - {id: c, run: echo, needs: []}
            """).steps)
        #expect(graph.node("a")?.needs == [])
        #expect(graph.node("b")?.needs == ["a"])
        #expect(graph.node("c")?.needs == [])
        #expect(graph.edges.map { "\($0.from)->\($0.to)" } == ["a->b"])
    }

    @Test func topologicalOrderRespectsNeedsAndListOrder() throws {
        let graph = StepGraph(steps: try spec("""
            steps:
              - {id: d, run: echo, needs: [b, c]}
              - {id: c, run: echo, needs: [a]}
              - {id: b, run: echo, needs: [a]}
              - {id: a, run: echo, needs: []}
              - {id: e, run: echo, needs: []}
            """).steps)
        #expect(graph.topologicalOrder == ["a", "c", "b", "d", "e"])
        #expect(graph.ancestors(of: "d") == ["a", "b", "c"])
        #expect(graph.isAncestor("a", of: "d"))
        #expect(!graph.isAncestor("e", of: "d"))
        #expect(graph.problems.isEmpty)
    }

    @Test func slotsComeFromListPositionAndCompensationsFollowAllSteps() throws {
        let graph = StepGraph(steps: try spec("""
            steps:
              - {id: a, run: echo, compensate: {run: echo undo-a}}
              - {id: b, run: echo, needs: []}
              - {id: c, run: echo, needs: [], compensate: {run: echo undo-c}}
            """).steps)
        #expect(graph.nodes.map(\.slot) == [0, 1, 2])
        #expect(graph.nodes.map(\.compensationSlot) == [3, nil, 4])
        #expect(graph.slotCount == 5)
    }

    @Test func nestedStepListsHaveTheirOwnGraphsAndSlots() throws {
        let graph = StepGraph(steps: try spec("""
            steps:
              - id: fan
                map: [1, 2]
                steps:
                  - {id: x, run: echo}
                  - {id: y, run: echo}
              - id: split
                parallel:
                  - steps: [{id: p, run: echo}]
                  - steps: [{id: q, run: echo}, {id: r, run: echo, needs: [q]}]
            """).steps)
        let map = try #require(graph.nestedGraphs["fan"]?.first)
        #expect(map.nodes.map(\.slot) == [0, 1])
        #expect(map.node("y")?.needs == ["x"])
        let branches = try #require(graph.nestedGraphs["split"])
        #expect(branches.count == 2)
        #expect(branches[1].node("r")?.slot == 1)
    }

    @Test func aCycleIsNamedStepByStep() throws {
        let graph = StepGraph(steps: try spec("""
            steps:
              - {id: a, run: echo, needs: [b]}
              - {id: b, run: echo, needs: [a]}
              - {id: c, run: echo}
            """).steps)
        #expect(graph.cycles == [["a", "b", "a"]])
        #expect(graph.problems.map(\.description) == ["g.yaml:2:32: error: steps form a cycle: a -> b -> a"])
        #expect(graph.topologicalOrder.isEmpty)
    }

    @Test func unknownNeedsAreReportedWithASuggestion() throws {
        let graph = StepGraph(steps: try spec("""
            steps:
              - {id: pack, run: echo}
              - {id: ship, run: echo, needs: [pak]}
            """).steps)
        #expect(graph.problems.map(\.description)
            == ["g.yaml:3:35: error: step 'ship' needs unknown step 'pak' (did you mean 'pack'?)"])
    }

    @Test func mermaidRenderingShowsNodesEdgesAndSlots() throws {
        let graph = StepGraph(steps: try spec("""
            steps:
              - {id: a, run: echo}
              - {id: b, handler: charge}
            """).steps)
        #expect(GraphRenderer.render(graph, name: "demo", format: .mermaid) == """
            ---
            title: demo
            ---
            flowchart TD
                a["a · run · slot 0"]
                b["b · handler charge · slot 1"]
                a --> b

            """)
    }

    @Test func dotRenderingQuotesIDsAndDrawsNestedBodiesAsClusters() throws {
        let graph = StepGraph(steps: try spec("""
            steps:
              - {id: a, sleep: 90s}
              - id: fan
                map: [1]
                steps: [{id: x, run: echo}]
            """).steps)
        let dot = GraphRenderer.render(graph, name: "demo", format: .dot)
        #expect(dot.hasPrefix("digraph \"demo\" {\n"))
        #expect(dot.contains("\"a\" [label=\"a · sleep 1m30s · slot 0\"];"))
        #expect(dot.contains("\"a\" -> \"fan\";"))
        #expect(dot.contains("subgraph \"cluster_fan/\" {"))
        #expect(dot.contains("\"fan\" -> \"fan/x\" [style=dashed];"))
        #expect(dot.hasSuffix("}\n"))
    }
}
