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
        var identifiers = MermaidIdentifiers(reserving: graph)
        appendMermaid(graph, scope: "step", indent: "    ", identifiers: &identifiers, into: &lines)
        return lines.joined(separator: "\n") + "\n"
    }

    private static func appendMermaid(
        _ graph: StepGraph, scope: String, indent: String, identifiers: inout MermaidIdentifiers,
        into lines: inout [String]
    ) {
        // Edges name a step by id; the first node with that id in this list is the one they mean.
        var nodeIdentifiers: [String: String] = [:]
        var identifiersInOrder: [String] = []
        for node in graph.nodes {
            let identifier = identifiers.claim(stepID: node.id, scope: scope)
            if nodeIdentifiers[node.id] == nil { nodeIdentifiers[node.id] = identifier }
            identifiersInOrder.append(identifier)
            lines.append("\(indent)\(identifier)[\"\(mermaidText(label(node)))\"]")
        }
        for edge in graph.edges {
            guard let from = nodeIdentifiers[edge.from], let to = nodeIdentifiers[edge.to] else { continue }
            lines.append("\(indent)\(from) --> \(to)")
        }
        for (node, identifier) in zip(graph.nodes, identifiersInOrder) {
            guard let children = graph.nestedGraphs[node.id] else { continue }
            for (branch, child) in children.enumerated() {
                let subgraph = identifiers.claim(
                    derivedFrom: children.count > 1 ? "\(identifier)_branch\(branch + 1)" : "\(identifier)_items")
                let title = children.count > 1 ? "\(node.id): branch \(branch + 1)" : "\(node.id): per item"
                lines.append("\(indent)subgraph \(subgraph)[\"\(mermaidText(title))\"]")
                appendMermaid(child, scope: subgraph, indent: indent + "    ", identifiers: &identifiers, into: &lines)
                lines.append("\(indent)end")
                lines.append("\(indent)\(identifier) -.-> \(subgraph)")
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

/// The node and subgraph identifiers of one Mermaid flowchart: a step's own id wherever Mermaid reads it back
/// as that id, so edges print as `fetch --> ship`; a derived id (the label still names the step) otherwise.
///
/// What Mermaid's flowchart lexer (`flow.jison`) does with the characters a step id may hold (letters, digits,
/// `_`, `-`), and so which ids are left out:
/// - `--` starts an arrow; an id starting or ending with `-` is left out too, to keep it clear of the arrows;
/// - keywords are matched before node ids and end at a word boundary, which `-` is: `end`, `end-2`, `style`,
///   `class`, `graph`, ... (also after leading digits, which are lexed as a number of their own);
///   `call`, `click` and `href` are keywords when followed by a space, as an edge's source is;
/// - a line ending in `direction` followed by a line starting with `TB`, `LR`, ... is a direction statement;
/// - the names of JavaScript's object prototype (`constructor`, `__proto__`, ...) broke older renderers;
/// - ids ending in a link target (`my_parent`, `x_self`) failed to parse in some versions (mermaid-js#4645).
struct MermaidIdentifiers {
    /// Keywords that end at a word boundary: unsafe alone or followed by `-`.
    private static let keywords: Set<String> = [
        "end", "subgraph", "graph", "flowchart", "style", "linkStyle", "classDef", "class", "interpolate",
        "_self", "_blank", "_parent", "_top",
    ]
    /// Link targets of `click` statements, which some versions also matched at the end of an id.
    private static let linkTargets = ["_self", "_blank", "_parent", "_top"]
    /// Keywords that need a space after them: unsafe alone.
    private static let keywordsBeforeSpace: Set<String> = ["call", "click", "href"]
    private static let prototypeNames: Set<String> = [
        "constructor", "__proto__", "prototype", "hasOwnProperty", "isPrototypeOf", "propertyIsEnumerable",
        "toString", "toLocaleString", "valueOf", "__defineGetter__", "__defineSetter__", "__lookupGetter__",
        "__lookupSetter__",
    ]

    /// Identifiers nobody may derive: every safe step id of the chart, kept for the step that has it.
    private let reserved: Set<String>
    private var used: Set<String> = []

    /// Reserves the safe step ids of `graph` and of the graphs nested in it.
    init(reserving graph: StepGraph) {
        var ids: Set<String> = []
        func collect(_ graph: StepGraph) {
            for node in graph.nodes where Self.isSafe(node.id) { ids.insert(node.id) }
            for children in graph.nestedGraphs.values { children.forEach(collect) }
        }
        collect(graph)
        reserved = ids
    }

    /// Whether Mermaid reads `id` back as a node id, unchanged.
    static func isSafe(_ id: String) -> Bool {
        guard let first = id.first, let last = id.last, first != "-", last != "-", !id.contains("--"),
            id.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "_" || $0 == "-") })
        else { return false }
        if id.hasSuffix("direction") || prototypeNames.contains(id) { return false }
        if Self.linkTargets.contains(where: { id.hasSuffix($0) }) { return false }
        let word = id.drop(while: \.isNumber)
        let head = word.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        if keywords.contains(head) || keywordsBeforeSpace.contains(String(word)) { return false }
        return true
    }

    /// The identifier of a node for step `stepID` in a list inside `scope` (`step` at the top, else the subgraph's
    /// identifier): the step id itself the first time it is safe, else one derived from the scope and the id.
    mutating func claim(stepID: String, scope: String) -> String {
        if Self.isSafe(stepID), !used.contains(stepID) {
            used.insert(stepID)
            return stepID
        }
        let letters = String(stepID.unicodeScalars.map { scalar -> Character in
            scalar.isASCII && CharacterSet.alphanumerics.contains(scalar) ? Character(scalar) : "_"
        })
        return claim(derivedFrom: "\(scope)_\(letters)")
    }

    /// `base`, or `base_2`, `base_3`, ...: the first that is safe and neither used nor a step's id.
    mutating func claim(derivedFrom base: String) -> String {
        var candidate = base
        var number = 1
        while !Self.isSafe(candidate) || used.contains(candidate) || reserved.contains(candidate) {
            number += 1
            candidate = "\(base)_\(number)"
        }
        used.insert(candidate)
        return candidate
    }
}
