import DBOS
import Foundation

/// Loads spec files: YAML, then the model, then every validation rule, reporting all problems at once.
///
/// `load(file:)` is what a run uses; `validateFiles(_:)` is what `dbos-run validate` uses.
public struct SpecLoader: Sendable {
    /// The handlers the program registered; plain `dbos-run` has none.
    public var knownHandlers: Set<String>
    /// Whether `handler:` steps must name a known handler (on by default).
    public var checksHandlers = true
    /// Whether a spec's queue declarations must agree with the other specs' (on by default; off for texts
    /// stored with runs, see `ValidationContext.checksQueueConflicts`).
    public var checksQueueConflicts = true
    /// The YAML loader and its limits.
    public var yamlLoader = YAMLLoader()

    /// Creates a loader that accepts `handler:` steps naming `knownHandlers`.
    public init(knownHandlers: Set<String> = []) {
        self.knownHandlers = knownHandlers
    }

    /// Decodes a file's structure without cross-spec checks: the spec (when the file is at least a mapping)
    /// and the problems found.
    public func decode(file path: String) -> (spec: WorkflowSpec?, errors: [SpecError]) {
        do {
            let document = try yamlLoader.load(file: path)
            let text = String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
            return decode(document, text: text, file: path)
        } catch {
            return (nil, [error])
        }
    }

    /// Decodes spec text; `file` is the name locations carry (and the default workflow name).
    public func decode(text: String, file: String) -> (spec: WorkflowSpec?, errors: [SpecError]) {
        do {
            let document = try yamlLoader.load(text: text, file: file)
            return decode(document, text: text, file: file)
        } catch {
            return (nil, [error])
        }
    }

    private func decode(_ document: YAMLDocument, text: String, file: String)
        -> (spec: WorkflowSpec?, errors: [SpecError])
    {
        var decoder = SpecDecoder(file: file, sourceText: text)
        let spec = decoder.decodeWorkflow(document.root, sourceText: text)
        return (spec, document.problems + decoder.errors)
    }

    /// Loads and fully validates the spec at `path`, with the other specs of its directory as context.
    ///
    /// The problems of another file of the directory are reported only when the spec needs that file (it
    /// defines a child spec the steps name, or the only declaration of a queue they use): a broken file the
    /// run does not need does not stop it.
    public func load(file path: String) throws(SpecValidationError) -> WorkflowSpec {
        let (spec, errors) = decode(file: path)
        let siblings = Self.specFiles(inDirectoryOf: path).filter { !Self.samePath($0, path) }.map { file in
            let (spec, errors) = decode(file: file)
            return DecodedSpecFile(path: file, spec: spec, errors: errors)
        }
        var dependencyErrors: [SpecError] = []
        if let spec { dependencyErrors = dependencies(among: siblings).problems(of: spec) }
        return try validated(spec, errors: errors + dependencyErrors, others: siblings.compactMap(\.spec))
    }

    /// The dependency checker for `files`, validating each with this loader's handlers.
    func dependencies(among files: [DecodedSpecFile]) -> SpecDependencies {
        SpecDependencies(files: files) { spec, others in
            SpecValidator(context: ValidationContext(
                knownHandlers: knownHandlers, otherSpecs: others, checksHandlers: checksHandlers)).validate(spec)
        }
    }

    /// Loads and fully validates spec text (for example the text stored with a run being recovered);
    /// `otherSpecs` are the specs child steps may name.
    public func load(text: String, file: String, otherSpecs: [WorkflowSpec] = []) throws(SpecValidationError)
        -> WorkflowSpec
    {
        let (spec, errors) = decode(text: text, file: file)
        return try validated(spec, errors: errors, others: otherSpecs)
    }

    private func validated(_ spec: WorkflowSpec?, errors: [SpecError], others: [WorkflowSpec])
        throws(SpecValidationError) -> WorkflowSpec
    {
        var errors = errors
        if let spec {
            let validator = SpecValidator(context: ValidationContext(
                knownHandlers: knownHandlers, otherSpecs: others, checksHandlers: checksHandlers,
                checksQueueConflicts: checksQueueConflicts))
            errors += validator.validate(spec)
        }
        guard let spec, errors.isEmpty else { throw SpecValidationError(errors) }
        return spec
    }

    /// Validates several files together: each against the specs of its directory and the other files given,
    /// including queue conflicts and workflow names used twice. Returns every problem in file order.
    public func validateFiles(_ paths: [String]) -> [SpecError] {
        checkFiles(paths).errors
    }

    /// Loads and validates several files together (what a worker does with its spec files); throws every
    /// problem of every file when any is invalid.
    public func loadFiles(_ paths: [String]) throws(SpecValidationError) -> [WorkflowSpec] {
        let (specs, errors) = checkFiles(paths)
        guard errors.isEmpty else { throw SpecValidationError(errors) }
        return specs
    }

    private func checkFiles(_ paths: [String]) -> (specs: [WorkflowSpec], errors: [SpecError]) {
        var results: [(path: String, spec: WorkflowSpec?, errors: [SpecError])] = []
        for path in paths {
            let (spec, errors) = decode(file: path)
            results.append((path, spec, errors))
        }
        let givenPaths = Set(paths.map(Self.canonical))
        var directoryFiles: [String: DecodedSpecFile] = [:]
        var listedDirectories: Set<String> = []
        for path in paths {
            let directory = (Self.canonical(path) as NSString).deletingLastPathComponent
            guard listedDirectories.insert(directory).inserted else { continue }
            for file in Self.specFiles(inDirectoryOf: path) {
                let key = Self.canonical(file)
                guard directoryFiles[key] == nil, !givenPaths.contains(key) else { continue }
                let (spec, errors) = decode(file: file)
                directoryFiles[key] = DecodedSpecFile(path: file, spec: spec, errors: errors)
            }
        }
        let directorySpecs = directoryFiles.compactMapValues(\.spec)
        // The given files report their own problems; a file of their directories only when one needs it.
        let given = results.compactMap(\.spec)
        var dependencies = dependencies(among: directoryFiles.values.sorted { $0.path < $1.path })
        dependencies.alsoLoaded = given
        var allErrors: [SpecError] = []
        var reported: Set<SpecError> = []
        var namesSeen: [String: WorkflowSpec] = [:]
        for result in results {
            var errors = result.errors
            if let spec = result.spec {
                let others = given.filter { !Self.samePath($0.file, spec.file) }
                    + directorySpecs.values.filter { !Self.samePath($0.file, spec.file) }
                let validator = SpecValidator(
                    context: ValidationContext(
                        knownHandlers: knownHandlers, otherSpecs: others, checksHandlers: checksHandlers))
                errors += validator.validate(spec)
                errors += dependencies.problems(of: spec)
                if let first = namesSeen[spec.name], !Self.samePath(first.file, spec.file) {
                    errors.append(SpecError(
                        "workflow name '\(spec.name)' is also used by \(first.file); names must be unique",
                        at: spec.nameLocation))
                } else {
                    namesSeen[spec.name] = spec
                }
            }
            // A file that several given specs need is reported once.
            allErrors += errors.sorted { $0.location < $1.location }.filter { reported.insert($0).inserted }
        }
        return (given, allErrors)
    }

    /// The `.yaml` and `.yml` files next to `path`, sorted.
    static func specFiles(inDirectoryOf path: String) -> [String] {
        let directory = (path as NSString).deletingLastPathComponent
        let listed = directory.isEmpty ? "." : directory
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: listed) else { return [] }
        return names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map {
            directory.isEmpty ? $0 : (directory as NSString).appendingPathComponent($0)
        }
    }

    static func canonical(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }

    static func samePath(_ lhs: String, _ rhs: String) -> Bool { canonical(lhs) == canonical(rhs) }
}
