import Foundation

/// Renders a `StepGraph` as Mermaid or Graphviz DOT text, nested `map`/`parallel` bodies as subgraphs.
public enum GraphRenderer {
    /// The output formats.
    public enum Format: String, Sendable, CaseIterable {
        /// A Mermaid `flowchart`.
        case mermaid
        /// A Graphviz `digraph`.
        case dot
    }

    /// The graph of the workflow `name` in `format`.
    public static func render(_ graph: StepGraph, name: String, format: Format) -> String {
        switch format {
        case .mermaid: return mermaid(graph, name: name)
        case .dot: return dot(graph, name: name)
        }
    }

    static func label(_ node: StepGraph.Node) -> String {
        var text = "\(node.id) · \(describe(node.step.action)) · slot \(node.slot)"
        if let compensation = node.compensationSlot { text += " · compensate slot \(compensation)" }
        return text
    }

    static func describe(_ action: StepAction) -> String {
        switch action {
        case .run: return "run"
        case .handler(let name, _): return "handler \(name)"
        case .sleep(let duration): return "sleep \(SpecDuration.text(duration))"
        case .workflow(let child): return "workflow \(child.name)"
        case .map(let map):
            if case .workflow(let child) = map.body { return "map → \(child.name)" }
            return "map"
        default: return action.fieldName
        }
    }

    // MARK: Mermaid

    private static func mermaidText(_ text: String) -> String {
        text.replacingOccurrences(of: "\"", with: "#quot;")
    }

    private static func mermaid(_ graph: StepGraph, name: String) -> String {
        var lines = ["---", "title: \(name)", "---", "flowchart TD"]
        appendMermaid(graph, prefix: "s", indent: "    ", into: &lines)
        return lines.joined(separator: "\n") + "\n"
    }

    private static func appendMermaid(_ graph: StepGraph, prefix: String, indent: String, into lines: inout [String]) {
        func identifier(_ id: String) -> String { "\(prefix)\(graph.node(id)?.index ?? 0)" }
        for node in graph.nodes {
            lines.append("\(indent)\(identifier(node.id))[\"\(mermaidText(label(node)))\"]")
        }
        for edge in graph.edges {
            lines.append("\(indent)\(identifier(edge.from)) --> \(identifier(edge.to))")
        }
        for node in graph.nodes {
            guard let children = graph.nestedGraphs[node.id] else { continue }
            for (branch, child) in children.enumerated() {
                let subgraph = "\(identifier(node.id))_\(branch)"
                let title = children.count > 1 ? "\(node.id): branch \(branch + 1)" : "\(node.id): per item"
                lines.append("\(indent)subgraph \(subgraph)[\"\(mermaidText(title))\"]")
                appendMermaid(child, prefix: "\(subgraph)_", indent: indent + "    ", into: &lines)
                lines.append("\(indent)end")
                lines.append("\(indent)\(identifier(node.id)) -.-> \(subgraph)")
            }
        }
    }

    // MARK: DOT

    private static func dotText(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    private static func dot(_ graph: StepGraph, name: String) -> String {
        var lines = ["digraph \(dotText(name)) {", "    rankdir=TB;", "    node [shape=box];"]
        appendDot(graph, prefix: "", indent: "    ", into: &lines)
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    private static func appendDot(_ graph: StepGraph, prefix: String, indent: String, into lines: inout [String]) {
        func identifier(_ id: String) -> String { dotText(prefix + id) }
        for node in graph.nodes {
            lines.append("\(indent)\(identifier(node.id)) [label=\(dotText(label(node)))];")
        }
        for edge in graph.edges {
            lines.append("\(indent)\(identifier(edge.from)) -> \(identifier(edge.to));")
        }
        for node in graph.nodes {
            guard let children = graph.nestedGraphs[node.id] else { continue }
            for (branch, child) in children.enumerated() {
                let childPrefix = "\(prefix)\(node.id)/\(children.count > 1 ? "\(branch + 1)/" : "")"
                let title = children.count > 1 ? "\(node.id): branch \(branch + 1)" : "\(node.id): per item"
                lines.append("\(indent)subgraph \(dotText("cluster_" + childPrefix)) {")
                lines.append("\(indent)    label=\(dotText(title));")
                appendDot(child, prefix: childPrefix, indent: indent + "    ", into: &lines)
                lines.append("\(indent)}")
                if let first = child.nodes.first {
                    lines.append("\(indent)\(identifier(node.id)) -> \(dotText(childPrefix + first.id)) [style=dashed];")
                }
            }
        }
    }
}
