import DBOS

/// What the interpreter stores with each run in `WorkflowOptions.attributes`, under the key `dbos_run`.
///
/// A top-level run stores the text of its spec, its SHA-256 and file, and the texts of the child specs it
/// references (transitively), so recovery, resume and fork use the text that started it even after the file
/// changed:
///
/// ```json
/// {"dbos_run": {"spec": "<yaml>", "spec_hash": "<sha-256>", "file": "order.yaml",
///               "specs": {"hello": {"spec": "<yaml>", "spec_hash": "...", "file": "hello.yaml"}}}}
/// ```
///
/// Child, coordinator and fragment runs store only a reference: the top-level run's ID, the name of the
/// spec they run, and for fragments the path to their steps list (`[step id, branch index, ...]`):
///
/// ```json
/// {"dbos_run": {"root": "<top-level id>", "spec_name": "order-pipeline", "path": ["each", 0]}}
/// ```
public struct RunAttributes: Sendable, Equatable {
    /// The key under which the interpreter's attributes are stored.
    public static let key = "dbos_run"

    /// One stored spec text.
    public struct StoredSpec: Sendable, Equatable {
        /// The YAML text.
        public var text: String
        /// Its SHA-256, lowercase hex.
        public var hash: String
        /// The file it was loaded from (locations in errors name it).
        public var file: String
    }

    /// The run's own spec text (top-level runs only).
    public var spec: StoredSpec?
    /// The texts of the child specs the run references, by spec name (top-level runs only).
    public var childSpecs: [String: StoredSpec]
    /// The top-level run holding the texts (descendant runs only).
    public var rootWorkflowID: String?
    /// The name of the spec the run executes (descendant runs only).
    public var specName: String?
    /// For a fragment run: its steps list inside the spec, as `[step id, branch index, ...]`.
    public var path: [JSONValue]?

    /// The attributes of a top-level run of `spec`.
    init(root spec: WorkflowSpec, childSpecs: [WorkflowSpec]) {
        self.spec = StoredSpec(spec)
        self.childSpecs = Dictionary(childSpecs.map { ($0.name, StoredSpec($0)) }, uniquingKeysWith: { first, _ in first })
    }

    /// The attributes of a descendant run.
    init(rootWorkflowID: String, specName: String, path: [JSONValue]?) {
        self.childSpecs = [:]
        self.rootWorkflowID = rootWorkflowID
        self.specName = specName
        self.path = path
    }

    /// Reads the interpreter's part of a run's attributes; nil when the run has none.
    public init?(_ attributes: JSONValue?) {
        guard case .object(let members)? = attributes?[Self.key] else { return nil }
        spec = StoredSpec(members)
        var children: [String: StoredSpec] = [:]
        if case .object(let stored)? = members["specs"] {
            for (name, value) in stored {
                if case .object(let fields) = value, let child = StoredSpec(fields) { children[name] = child }
            }
        }
        childSpecs = children
        rootWorkflowID = members["root"]?.stringValue
        specName = members["spec_name"]?.stringValue
        if case .array(let path)? = members["path"] { self.path = path }
        if spec == nil, rootWorkflowID == nil { return nil }
    }

    /// The attributes as stored.
    public var jsonValue: JSONValue {
        var members: [String: JSONValue] = [:]
        if let spec {
            members = spec.members
            if !childSpecs.isEmpty { members["specs"] = .object(childSpecs.mapValues { .object($0.members) }) }
        }
        if let rootWorkflowID { members["root"] = .string(rootWorkflowID) }
        if let specName { members["spec_name"] = .string(specName) }
        if let path { members["path"] = .array(path) }
        return .object([Self.key: .object(members)])
    }
}

extension RunAttributes.StoredSpec {
    init(_ spec: WorkflowSpec) {
        self.init(text: spec.sourceText, hash: SHA256.hexDigest(of: spec.sourceText), file: spec.file)
    }

    init?(_ members: [String: JSONValue]) {
        guard let text = members["spec"]?.stringValue else { return nil }
        self.init(
            text: text, hash: members["spec_hash"]?.stringValue ?? SHA256.hexDigest(of: text),
            file: members["file"]?.stringValue ?? "spec.yaml")
    }

    var members: [String: JSONValue] {
        ["spec": .string(text), "spec_hash": .string(hash), "file": .string(file)]
    }
}
