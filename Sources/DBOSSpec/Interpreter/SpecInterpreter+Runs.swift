import DBOS
import Foundation

/// The bodies of the engine workflows the interpreter registers.
extension SpecInterpreter {
    /// A run of a spec: its steps list, then its `output:` (default: the last listed step's output).
    func executeSpecRun(context: WorkflowContext, registeredName: String, input: JSONValue) async throws -> JSONValue {
        let (spec, _, rootID, key) = try await resolveSpec(
            workflowID: context.workflowID, attributes: context.attributes, registeredName: registeredName)
        let prepared = try preparedInput(for: spec, input: input)
        let run = execution(context: context, spec: spec, secretNames: secretNames(of: spec, key: key), rootWorkflowID: rootID, path: [])
        let graph = stepGraph(of: spec.steps, key: key)
        let variables: [String: JSONValue] = [
            "input": prepared,
            "workflow": .object(["id": .string(context.workflowID), "name": .string(spec.name)]),
            "steps": .object([:]),
        ]
        return try await run.finish(spec.name) {
            let executor = StepListExecutor(run: run, graph: graph, variables: variables)
            let results = try await executor.execute()
            guard let output = spec.output else { return spec.steps.last.flatMap { results[$0.id]?.output } ?? .null }
            let scope = run.scope(executor.variables(with: results))
            do throws(SpecError) {
                return try output.resolve(in: scope)
            } catch {
                throw SpecRunError.expressionFailed(error)
            }
        }
    }

    /// A nested steps list (a `map` item or a `parallel` branch): its output is the last listed step's output.
    func executeFragment(context: WorkflowContext, input: JSONValue) async throws -> JSONValue {
        guard let stored = RunAttributes(context.attributes), let path = stored.path else {
            throw SpecRunError.unknownStepsList(workflowID: context.workflowID, path: "(none stored)")
        }
        let (spec, _, rootID, key) = try await resolveSpec(
            workflowID: context.workflowID, attributes: context.attributes, registeredName: stored.specName ?? "")
        guard let steps = Self.steps(at: path, in: spec.steps) else {
            throw SpecRunError.unknownStepsList(
                workflowID: context.workflowID, path: path.map(\.interpolatedText).joined(separator: "/"))
        }
        var variables: [String: JSONValue] = [:]
        if case .object(let members)? = input["variables"] { variables = members }
        let run = execution(context: context, spec: spec, secretNames: secretNames(of: spec, key: key), rootWorkflowID: rootID, path: path)
        let graph = stepGraph(of: steps, key: key, path: path)
        return try await run.finish(spec.name) {
            let results = try await StepListExecutor(run: run, graph: graph, variables: variables).execute()
            return steps.last.flatMap { results[$0.id]?.output } ?? .null
        }
    }

    /// A `map` or `parallel` coordinator: starts one child per entry at slots 0..N-1 (on its queue, if any),
    /// then returns their outputs in order; any failure fails it.
    func executeCoordinator(context: WorkflowContext, input: JSONValue) async throws -> JSONValue {
        guard case .array(let children)? = input["children"] else { return .array([]) }
        let label = input["label"]?.stringValue ?? "item"
        var handles: [WorkflowHandle<JSONValue>] = []
        for (index, child) in children.enumerated() {
            var options = WorkflowOptions(attributes: child["attributes"])
            options.queueName = child["queue"]?.stringValue
            if case .integer(let priority)? = child["priority"] { options.priority = Int(priority) }
            handles.append(try await context.startChildWorkflow(
                named: child["workflow"]?.stringValue ?? "", input: child["input"] ?? .null, options: options,
                functionID: index, as: JSONValue.self))
        }
        var outputs: [JSONValue] = []
        var failures: [String] = []
        for (index, handle) in handles.enumerated() {
            do {
                outputs.append(try await handle.result())
            } catch {
                if Task.isCancelled || error is CancellationError { throw error }
                failures.append("\(label) \(index) (\(handle.workflowID)): \(StepListExecutor.message(of: error))")
                outputs.append(.null)
            }
        }
        guard failures.isEmpty else {
            let plural = label == "branch" ? "branches" : "\(label)s"
            throw StepFailure(message: "\(failures.count) of \(handles.count) \(plural) failed: " + failures.joined(separator: "; "))
        }
        return .array(outputs)
    }

    /// The steps list at `path` (`[step id, branch index, ...]`) inside `steps`.
    static func steps(at path: [JSONValue], in steps: [StepSpec]) -> [StepSpec]? {
        var current = steps
        var position = 0
        while position + 1 < path.count {
            guard let id = path[position].stringValue, case .integer(let branch) = path[position + 1],
                let step = current.first(where: { $0.id == id })
            else { return nil }
            switch step.action {
            case .map(let map):
                guard case .steps(let body) = map.body else { return nil }
                current = body
            case .parallel(let branches):
                guard branches.indices.contains(Int(branch)) else { return nil }
                current = branches[Int(branch)].steps
            default:
                return nil
            }
            position += 2
        }
        return current
    }

    /// What a run's steps share: its masker (for every secret the spec reads) and the slots already completed.
    func execution(
        context: WorkflowContext, spec: WorkflowSpec, secretNames: Set<String>, rootWorkflowID: String, path: [JSONValue]
    ) -> RunExecution {
        let steps = context.recordedSteps
        // A sleep's checkpoint is written when it starts and "completes" at its wake-up time: one still ahead
        // is resumed, not replayed. Child records are re-attached to, not replayed.
        let now = Date()
        let completed = steps.filter { step in
            step.childWorkflowID == nil && (step.output != nil || step.error != nil)
                && (step.completedAt.map { $0 <= now } ?? true)
        }.map(\.functionID)
        return RunExecution(
            interpreter: self, context: context, spec: spec, rootWorkflowID: rootWorkflowID, path: path,
            masker: SecretMasker(names: secretNames, lookup: secretLookup), completedSlots: Set(completed))
    }

    /// Every secret a spec reads anywhere.
    static func secretNames(in spec: WorkflowSpec) -> Set<String> {
        var names = spec.output?.referencedSecrets ?? []
        var pending = spec.steps
        while let step = pending.popLast() {
            for value in step.values + (step.compensation?.values ?? []) { names.formUnion(value.referencedSecrets) }
            switch step.action {
            case .map(let map):
                switch map.body {
                case .workflow(let child): for value in child.values { names.formUnion(value.referencedSecrets) }
                case .steps(let body): pending.append(contentsOf: body)
                }
            case .parallel(let branches): pending.append(contentsOf: branches.flatMap(\.steps))
            default: break
            }
        }
        return names
    }
}

extension RunExecution {
    /// Runs `body` between `runStarted` and `runFinished` events; the output and any error leave masked.
    func finish(_ specName: String, _ body: () async throws -> JSONValue) async throws -> JSONValue {
        emit(.runStarted(specName: specName))
        do {
            let output = masker.mask(try await body())
            emit(.runFinished(status: .success, error: nil))
            return output
        } catch {
            if isStop(error) { throw error }
            let message = masker.mask(StepListExecutor.message(of: error))
            emit(.runFinished(status: .error, error: message))
            if case .stepFailed = error as? SpecRunError { throw error }
            throw StepFailure(message: message)
        }
    }
}
