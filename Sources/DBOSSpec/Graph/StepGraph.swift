/// The dependency graph of one steps list: which step waits for which, an order to run them in, and each
/// step's fixed checkpoint slot.
///
/// A step without `needs:` needs the step listed before it; `needs: []` needs nothing. Slots come from the
/// list position (steps 0, 1, 2, ...; then one per compensation, in step order), never from timing, so
/// steps that ran concurrently are recovered exactly. Steps inside `map` and `parallel` bodies run in child
/// workflows and have graphs (and slots) of their own: see `nestedGraphs`.
public struct StepGraph: Sendable {
    /// One step in the graph.
    public struct Node: Sendable {
        /// The step's id.
        public var id: String
        /// The step's position in its list.
        public var index: Int
        /// The step's checkpoint slot (its position in the list).
        public var slot: Int
        /// The slot of the step's compensation, if it has one.
        public var compensationSlot: Int?
        /// The ids this step waits for (resolved: absent `needs` means the previous step); unknown ids dropped.
        public var needs: [String]
        /// The ids of the steps that wait for this one, in list order.
        public var dependents: [String]
        /// The step itself.
        public var step: StepSpec
    }

    /// The nodes in list order.
    public let nodes: [Node]
    /// Every step id in an order that respects `needs` (ties broken by list order); steps on a cycle are left out.
    public let topologicalOrder: [String]
    /// Each cycle found, named by its steps, e.g. `["a", "b", "a"]`.
    public let cycles: [[String]]
    /// Graphs of the step lists nested in `map` (one) and `parallel` (one per branch) steps, by step id.
    public let nestedGraphs: [String: [StepGraph]]
    /// Problems found while building: unknown `needs` and cycles, with positions.
    public let problems: [SpecError]
    /// The number of slots used: one per step plus one per compensation.
    public let slotCount: Int
    private let positions: [String: Int]

    /// Builds the graph of `steps`.
    public init(steps: [StepSpec]) {
        var positions: [String: Int] = [:]
        for (index, step) in steps.enumerated() where positions[step.id] == nil { positions[step.id] = index }
        var problems: [SpecError] = []
        var nodes: [Node] = []
        var compensationSlot = steps.count
        for (index, step) in steps.enumerated() {
            var needs: [String] = []
            if let declared = step.needs {
                for (position, need) in declared.enumerated() {
                    let location = position < step.needsLocations.count ? step.needsLocations[position] : step.location
                    guard positions[need] != nil else {
                        var message = "step '\(step.id)' needs unknown step '\(need)'"
                        if let suggestion = Suggestion.closest(to: need, in: steps.map(\.id).filter({ $0 != step.id })) {
                            message += " (did you mean '\(suggestion)'?)"
                        }
                        problems.append(SpecError(message, at: location))
                        continue
                    }
                    if !needs.contains(need) { needs.append(need) }
                }
            } else if index > 0 {
                needs = [steps[index - 1].id]
            }
            var slot: Int?
            if step.compensation != nil {
                slot = compensationSlot
                compensationSlot += 1
            }
            nodes.append(Node(id: step.id, index: index, slot: index, compensationSlot: slot, needs: needs,
                dependents: [], step: step))
        }
        for node in nodes {
            for need in node.needs {
                if let position = positions[need] { nodes[position].dependents.append(node.id) }
            }
        }
        self.positions = positions
        self.slotCount = compensationSlot

        // Cycles: depth-first search along `needs`, reporting each back edge as the cycle it closes.
        var state = [Int](repeating: 0, count: nodes.count)  // 0 new, 1 on the path, 2 done
        var cycles: [[String]] = []
        for start in nodes.indices where state[start] == 0 {
            var path: [Int] = [start]
            var iterators: [Int] = [0]
            state[start] = 1
            while let current = path.last {
                let needs = nodes[current].needs
                let position = iterators[iterators.count - 1]
                if position < needs.count {
                    iterators[iterators.count - 1] += 1
                    guard let next = positions[needs[position]] else { continue }
                    if state[next] == 1 {
                        let loopStart = path.firstIndex(of: next) ?? 0
                        let names = path[loopStart...].map { nodes[$0].id } + [nodes[next].id]
                        cycles.append(names)
                        // Report at the first arrow of the named cycle: where its first step needs the second.
                        let step = nodes[loopStart < path.count ? path[loopStart] : current].step
                        let needIndex = step.needs?.firstIndex(of: names[1]) ?? -1
                        let location = needIndex >= 0 && needIndex < step.needsLocations.count
                            ? step.needsLocations[needIndex] : step.location
                        problems.append(SpecError(
                            "steps form a cycle: " + names.joined(separator: " -> "), at: location))
                    } else if state[next] == 0 {
                        state[next] = 1
                        path.append(next)
                        iterators.append(0)
                    }
                } else {
                    state[current] = 2
                    path.removeLast()
                    iterators.removeLast()
                }
            }
        }
        self.cycles = cycles

        // Topological order: Kahn's algorithm, always taking the ready step listed first.
        var remaining = nodes.map(\.needs.count)
        var ready = MinimumHeap(nodes.indices.filter { remaining[$0] == 0 })
        var order: [String] = []
        while let next = ready.popMinimum() {
            order.append(nodes[next].id)
            for dependent in nodes[next].dependents {
                guard let position = positions[dependent] else { continue }
                remaining[position] -= 1
                if remaining[position] == 0 { ready.insert(position) }
            }
        }
        self.topologicalOrder = order

        var nested: [String: [StepGraph]] = [:]
        for step in steps {
            switch step.action {
            case .map(let map):
                if case .steps(let body) = map.body {
                    let graph = StepGraph(steps: body)
                    nested[step.id] = [graph]
                    problems.append(contentsOf: graph.problems)
                }
            case .parallel(let branches):
                let graphs = branches.map { StepGraph(steps: $0.steps) }
                nested[step.id] = graphs
                problems.append(contentsOf: graphs.flatMap(\.problems))
            default: break
            }
        }
        self.nestedGraphs = nested
        self.nodes = nodes
        self.problems = problems
    }

    /// The node of step `id`.
    public func node(_ id: String) -> Node? {
        positions[id].map { nodes[$0] }
    }

    /// Every `(from, to)` edge, where `to` needs `from`, in list order of `to`.
    public var edges: [(from: String, to: String)] {
        nodes.flatMap { node in node.needs.map { (from: $0, to: node.id) } }
    }

    /// The steps `id` needs directly or transitively: the steps whose results surely exist when it starts.
    public func ancestors(of id: String) -> Set<String> {
        var result: Set<String> = []
        var pending = node(id)?.needs ?? []
        while let next = pending.popLast() {
            if result.insert(next).inserted { pending.append(contentsOf: node(next)?.needs ?? []) }
        }
        return result
    }

    /// Whether `candidate` is among the steps `id` needs directly or transitively (a search that stops as
    /// soon as it finds it).
    public func isAncestor(_ candidate: String, of id: String) -> Bool {
        guard let target = positions[candidate], let start = positions[id] else { return false }
        var visited: Set<Int> = [start]
        var pending = [start]
        while let current = pending.popLast() {
            for need in nodes[current].needs {
                guard let position = positions[need] else { continue }
                if position == target { return true }
                if visited.insert(position).inserted { pending.append(position) }
            }
        }
        return false
    }

    /// The steps listed last that no other step needs: where the run ends.
    public var sinks: [String] {
        nodes.filter(\.dependents.isEmpty).map(\.id)
    }
}

/// A binary min-heap of list positions, so the topological sort always takes the ready step listed first
/// in O(log n).
private struct MinimumHeap {
    private var storage: [Int] = []

    init(_ values: [Int]) {
        for value in values { insert(value) }
    }

    mutating func insert(_ value: Int) {
        storage.append(value)
        var child = storage.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard storage[child] < storage[parent] else { break }
            storage.swapAt(child, parent)
            child = parent
        }
    }

    mutating func popMinimum() -> Int? {
        guard let first = storage.first else { return nil }
        let last = storage.removeLast()
        guard !storage.isEmpty else { return first }
        storage[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < storage.count, storage[left] < storage[smallest] { smallest = left }
            if right < storage.count, storage[right] < storage[smallest] { smallest = right }
            if smallest == parent { break }
            storage.swapAt(parent, smallest)
            parent = smallest
        }
        return first
    }
}
