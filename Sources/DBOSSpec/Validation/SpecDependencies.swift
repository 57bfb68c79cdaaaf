import DBOS

/// A spec file of a directory, decoded but not yet validated against the others.
struct DecodedSpecFile {
    /// The file's path.
    var path: String
    /// The spec, when the file is at least a mapping.
    var spec: WorkflowSpec?
    /// The problems found while loading and decoding it.
    var errors: [SpecError]
}

/// Which of the other specs of a directory a spec needs to run, and their problems.
///
/// A run loads the specs next to its file only to find the children its steps name and the queues they use.
/// A broken file that the run does not need must not stop it (as in GitHub Actions, where a broken workflow
/// file does not stop the others); one that it does need (a `workflow:` or `map` child, directly or through
/// another child, or the spec that declares a queue a step names) is reported with the run's own problems.
struct SpecDependencies {
    /// The other spec files, in directory order.
    let files: [DecodedSpecFile]
    /// Specs checked on their own that the files may name too (the other files given to `validate`).
    var alsoLoaded: [WorkflowSpec] = []
    /// Validates a spec of `files` against the others (every semantic rule).
    let validate: (WorkflowSpec, [WorkflowSpec]) -> [SpecError]

    /// The problems of the files `spec` needs, each followed in `spec` by a line at the place that needs it.
    func problems(of spec: WorkflowSpec) -> [SpecError] {
        var errors: [SpecError] = []
        var checked: Set<String> = []
        var pending = Self.references(in: spec)
        while !pending.isEmpty {
            let reference = pending.removeFirst()
            guard let file = provider(of: reference, for: spec) else { continue }
            let problems = problems(of: file, besides: spec)
            if checked.insert(file.path).inserted {
                errors += problems
                if let needed = file.spec { pending += Self.references(in: needed) }
            }
            // Only the places in `spec` itself get a pointer; a child's own references are the child's.
            if !problems.isEmpty, reference.location.file == spec.file {
                errors.append(SpecError(reference.describe(file.path), at: reference.location))
            }
        }
        return errors
    }

    /// A name a spec's steps use that another file may provide: a child spec or a queue.
    struct Reference {
        enum Kind { case childSpec, queue }
        var kind: Kind
        var name: String
        var location: SourceLocation

        func describe(_ path: String) -> String {
            switch kind {
            case .childSpec: "child spec '\(name)' is defined in \(path), which has errors (reported for that file)"
            case .queue: "queue '\(name)' is declared only in \(path), which has errors (reported for that file)"
            }
        }
    }

    /// The file that provides `reference`, unless `spec` provides it itself.
    private func provider(of reference: Reference, for spec: WorkflowSpec) -> DecodedSpecFile? {
        switch reference.kind {
        case .childSpec:
            guard reference.name != spec.name else { return nil }
            return files.first { $0.spec?.name == reference.name }
        case .queue:
            guard spec.queue(named: reference.name) == nil else { return nil }
            let declaring = files.filter { $0.spec?.queue(named: reference.name) != nil }
            // A queue some valid file declares is there whatever the broken ones say.
            guard !declaring.contains(where: { problems(of: $0, besides: spec).isEmpty }) else { return nil }
            return declaring.first
        }
    }

    /// The problems of `file` checked against the directory (with `spec` in place of its own file).
    private func problems(of file: DecodedSpecFile, besides spec: WorkflowSpec) -> [SpecError] {
        guard let decoded = file.spec else { return file.errors }
        let others = (files.compactMap(\.spec) + alsoLoaded).filter { $0.file != decoded.file && $0.file != spec.file }
            + [spec]
        return file.errors + validate(decoded, others)
    }

    /// The child specs and constant queue names the steps of `spec` use, nested lists included.
    static func references(in spec: WorkflowSpec) -> [Reference] {
        references(in: spec.steps)
    }

    private static func references(in steps: [StepSpec]) -> [Reference] {
        steps.flatMap { step -> [Reference] in
            switch step.action {
            case .workflow(let child): return references(to: child)
            case .map(let map):
                var found = map.queue.flatMap(queueReference).map { [$0] } ?? []
                switch map.body {
                case .workflow(let child): found += references(to: child)
                case .steps(let steps): found += references(in: steps)
                }
                return found
            case .parallel(let branches): return branches.flatMap { references(in: $0.steps) }
            default: return []
            }
        }
    }

    private static func references(to child: ChildWorkflowAction) -> [Reference] {
        [Reference(kind: .childSpec, name: child.name, location: child.nameLocation)]
            + (child.queue.flatMap(queueReference).map { [$0] } ?? [])
    }

    private static func queueReference(_ value: SpecValue) -> Reference? {
        guard case .string(let name)? = value.constantValue else { return nil }
        return Reference(kind: .queue, name: name, location: value.location)
    }
}
