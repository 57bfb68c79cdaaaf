import DBOS

/// Checks a decoded spec for everything that involves more than one field: the step graph (unknown needs,
/// cycles), names used by expressions, handlers, child specs and queues.
public struct SpecValidator: Sendable {
    /// What the spec is checked against.
    public var context: ValidationContext

    /// Creates a validator for `context`.
    public init(context: ValidationContext = ValidationContext()) {
        self.context = context
    }

    /// Every semantic problem of `spec`, in position order.
    public func validate(_ spec: WorkflowSpec) -> [SpecError] {
        var errors: [SpecError] = []
        let graph = StepGraph(steps: spec.steps)
        errors.append(contentsOf: graph.problems)
        var declaredQueues: [String: QueueSpec] = [:]
        for queue in spec.queues + context.otherSpecs.flatMap(\.queues) where declaredQueues[queue.name] == nil {
            declaredQueues[queue.name] = queue
        }
        let checker = NameChecker(spec: spec, context: context, declaredQueues: declaredQueues)
        checker.checkSteps(spec.steps, graph: graph, outer: .topLevel, errors: &errors)
        if let output = spec.output {
            let ids = Set(spec.steps.map(\.id))
            let scope = NameChecker.Scope(knownSteps: ids, extraSteps: ids, levels: [], inMap: false, where: "'output'")
            checker.checkValue(output, scope: scope, errors: &errors)
        }
        if context.checksQueueConflicts { errors.append(contentsOf: queueConflicts(spec)) }
        return errors.sorted { $0.location < $1.location }
    }

    /// Declarations of this spec's queues that disagree with another spec's declaration of the same queue.
    func queueConflicts(_ spec: WorkflowSpec) -> [SpecError] {
        var errors: [SpecError] = []
        for queue in spec.queues {
            for other in context.otherSpecs where other.file != spec.file {
                guard let theirs = other.queues.first(where: { $0.name == queue.name }),
                    !theirs.hasSameSettings(as: queue)
                else { continue }
                errors.append(SpecError(
                    "queue '\(queue.name)' conflicts with its declaration in \(theirs.location) "
                        + "(here: \(queue.settingsDescription); there: \(theirs.settingsDescription)); "
                        + "declare it identically or in one spec only",
                    at: queue.location))
            }
        }
        return errors
    }
}

/// Checks the names steps and expressions refer to.
struct NameChecker {
    /// What an expression may read at one place in the spec.
    struct Scope {
        /// Step ids that exist in this list and the lists around it.
        var knownSteps: Set<String>
        /// Step ids whose results surely exist here besides transitive needs (a compensation's own step).
        var extraSteps: Set<String>
        /// The graph and step at each nesting level, innermost last: a step's transitive needs exist.
        var levels: [(graph: StepGraph, step: String)]
        /// Whether `item` and `index` exist (inside a map body).
        var inMap: Bool
        /// Where the expression is, for messages: `step 'x'` or `'output'`.
        var `where`: String

        static let topLevel = Scope(knownSteps: [], extraSteps: [], levels: [], inMap: false, where: "")

        /// Whether the result of step `id` surely exists here.
        func isAvailable(_ id: String) -> Bool {
            extraSteps.contains(id) || levels.contains { $0.graph.isAncestor(id, of: $0.step) }
        }
    }

    static let rootNames = ["input", "steps", "workflow", "item", "index", "secrets"]
    static let stepFields = ["output", "status", "error"]
    static let workflowFields = ["id", "name"]

    let spec: WorkflowSpec
    let context: ValidationContext
    let declaredQueues: [String: QueueSpec]

    init(spec: WorkflowSpec, context: ValidationContext, declaredQueues: [String: QueueSpec]) {
        self.spec = spec
        self.context = context
        self.declaredQueues = declaredQueues
    }

    func checkSteps(_ steps: [StepSpec], graph: StepGraph, outer: Scope, errors: inout [SpecError]) {
        let known = outer.knownSteps.union(steps.map(\.id))
        for step in steps {
            let label = "step '\(step.id)'"
            let scope = Scope(knownSteps: known, extraSteps: outer.extraSteps,
                levels: outer.levels + [(graph, step.id)], inMap: outer.inMap, where: label)
            for value in step.values { checkValue(value, scope: scope, errors: &errors) }
            if let compensation = step.compensation {
                var compensationScope = scope
                compensationScope.extraSteps.insert(step.id)
                compensationScope.where = "the compensation of \(label)"
                for value in compensation.values { checkValue(value, scope: compensationScope, errors: &errors) }
                if case .handler(let name, _) = compensation.action {
                    checkHandler(name, at: compensation.location, errors: &errors)
                }
            }
            switch step.action {
            case .handler(let name, _):
                checkHandler(name, at: step.actionLocation, errors: &errors)
            case .workflow(let child):
                checkChild(child, errors: &errors)
            case .map(let map):
                var bodyScope = scope
                bodyScope.inMap = true
                switch map.body {
                case .workflow(let child):
                    checkChild(child, errors: &errors)
                    for value in child.values where value != child.queue {
                        checkValue(value, scope: bodyScope, errors: &errors)
                    }
                case .steps(let body):
                    if let nested = graph.nestedGraphs[step.id]?.first {
                        checkSteps(body, graph: nested, outer: bodyScope, errors: &errors)
                    }
                    if let queue = map.queue { checkQueue(queue, errors: &errors) }
                }
            case .parallel(let branches):
                let graphs = graph.nestedGraphs[step.id] ?? []
                for (branch, nested) in zip(branches, graphs) {
                    checkSteps(branch.steps, graph: nested, outer: scope, errors: &errors)
                }
            default: break
            }
        }
    }

    func checkHandler(_ name: String, at location: SourceLocation, errors: inout [SpecError]) {
        guard context.checksHandlers, !context.knownHandlers.contains(name) else { return }
        var message = "unknown handler '\(name)'"
        if let suggestion = Suggestion.closest(to: name, in: context.knownHandlers) {
            message += " (did you mean '\(suggestion)'?)"
        } else if context.knownHandlers.isEmpty {
            message += "; no handlers are registered (handlers are Swift functions registered by a program that"
                + " embeds dbos-run)"
        } else {
            message += "; registered handlers: " + context.knownHandlers.sorted().joined(separator: ", ")
        }
        errors.append(SpecError(message, at: location))
    }

    func checkChild(_ child: ChildWorkflowAction, errors: inout [SpecError]) {
        let names = Set(context.otherSpecs.map(\.name) + [spec.name])
        if !names.contains(child.name) {
            var message = "unknown child spec '\(child.name)': no spec in the same directory has this name"
            if let suggestion = Suggestion.closest(to: child.name, in: names) {
                message += " (did you mean '\(suggestion)'?)"
            }
            errors.append(SpecError(message, at: child.nameLocation))
        }
        if let queue = child.queue { checkQueue(queue, errors: &errors) }
        if let priority = child.priority {
            if child.queue == nil {
                errors.append(SpecError("'priority' needs a 'queue' (priority orders runs waiting on a queue)",
                    at: priority.location))
            } else if case .string(let name)? = child.queue?.constantValue, let queue = declaredQueues[name],
                !queue.priority
            {
                errors.append(SpecError("queue '\(name)' does not enable priority; add 'priority: true' to its declaration",
                    at: priority.location))
            }
            if let constant = priority.constantValue {
                var isValid = false
                if case .integer(let value) = constant { isValid = (1...2_147_483_647).contains(value) }
                if !isValid {
                    errors.append(SpecError(
                        "'priority' must be a whole number from 1 (highest) to 2147483647, not \(constant.jsonText)",
                        at: priority.location))
                }
            }
        }
        if let deduplicationID = child.deduplicationID, child.queue == nil {
            errors.append(SpecError("'dedup_id' needs a 'queue' (deduplication applies to queued runs)",
                at: deduplicationID.location))
        }
    }

    func checkQueue(_ value: SpecValue, errors: inout [SpecError]) {
        guard let constant = value.constantValue else { return }
        guard case .string(let name) = constant else {
            errors.append(SpecError("'queue' must be a queue name, not \(constant.jsonText)", at: value.location))
            return
        }
        if declaredQueues[name] == nil {
            var message = "unknown queue '\(name)': declare it under 'queues:' in this spec or one in its directory"
            if let suggestion = Suggestion.closest(to: name, in: declaredQueues.keys) {
                message += " (did you mean '\(suggestion)'?)"
            }
            errors.append(SpecError(message, at: value.location))
        }
    }

    func checkValue(_ value: SpecValue, scope: Scope, errors: inout [SpecError]) {
        for template in value.templates {
            for (expression, location) in template.expressions {
                for (path, offset) in expression.referencedPaths {
                    if let problem = problem(with: path, scope: scope) {
                        errors.append(SpecError(problem, at: location.advanced(by: offset)))
                    }
                }
            }
        }
    }

    /// What is wrong with reading `path` in `scope`, if anything.
    func problem(with path: [String], scope: Scope) -> String? {
        let root = path[0]
        switch root {
        case "input":
            guard path.count > 1, let schema = spec.inputSchema, !schema.properties.isEmpty else { return nil }
            let field = path[1]
            if schema.property(field) == nil {
                var message = "unknown input field '\(field)': the input schema declares "
                    + schema.properties.map { "'\($0.name)'" }.joined(separator: ", ")
                if let suggestion = Suggestion.closest(to: field, in: schema.properties.map(\.name)) {
                    message = "unknown input field '\(field)' (did you mean '\(suggestion)'?)"
                }
                return message
            }
            return nil
        case "steps":
            guard path.count > 1 else { return nil }
            let id = path[1]
            if !scope.knownSteps.contains(id) {
                var message = "unknown step '\(id)' in expression"
                if let suggestion = Suggestion.closest(to: id, in: scope.knownSteps) {
                    message += " (did you mean '\(suggestion)'?)"
                }
                return message
            }
            if !scope.isAvailable(id) {
                return "\(scope.where) reads steps.\(id) but does not need '\(id)', so its result may not exist yet;"
                    + " add '\(id)' to 'needs'"
            }
            if path.count > 2, !Self.stepFields.contains(path[2]) {
                var message = "unknown field '\(path[2])' of steps.\(id)"
                if let suggestion = Suggestion.closest(to: path[2], in: Self.stepFields) {
                    message += " (did you mean '\(suggestion)'?)"
                } else {
                    message += "; use output, status or error"
                }
                return message
            }
            return nil
        case "workflow":
            if path.count > 1, !Self.workflowFields.contains(path[1]) {
                return "unknown field '\(path[1])' of workflow; use workflow.id or workflow.name"
            }
            return nil
        case "item", "index":
            return scope.inMap ? nil : "'\(root)' is only available inside a 'map' body"
        case "secrets":
            return path.count > 1 ? nil : "'secrets' must be followed by a name, e.g. secrets.API_TOKEN"
        default:
            var message = "unknown name '\(root)' in expression"
            if let suggestion = Suggestion.closest(to: root, in: Self.rootNames) {
                message += " (did you mean '\(suggestion)'?)"
            } else {
                message += "; names are " + Self.rootNames.joined(separator: ", ")
            }
            return message
        }
    }
}
