import DBOS
import Foundation

/// Turns a loaded YAML tree into a `WorkflowSpec`, collecting every structural problem (unknown or misplaced
/// fields, wrong types, missing or double actions, bad durations, template syntax) instead of stopping at the
/// first. Cross-step checks (needs, cycles, names in expressions, handlers, child specs, queues) are the
/// `SpecValidator`'s.
struct SpecDecoder {
    static let workflowFields = ["name", "description", "input", "timeout", "queues", "schedule", "timezone",
        "steps", "output"]
    static let actionFields = ["run", "handler", "sleep", "recv", "send", "set_event", "get_event", "workflow",
        "map", "parallel"]
    static let commonStepFields = ["id", "needs", "if", "retry", "timeout", "env", "continue_on_error", "compensate"]
    static let actionOptionFields = ["with", "output", "queue", "priority", "dedup_id", "wait", "steps", "default"]
    static var stepFields: [String] { commonStepFields + actionFields + actionOptionFields }

    /// Which actions each option field belongs to.
    static let optionOwners: [String: [String]] = [
        "with": ["handler", "workflow", "map"],
        "output": ["run"],
        "queue": ["workflow", "map"],
        "priority": ["workflow", "map"],
        "dedup_id": ["workflow"],
        "wait": ["workflow"],
        "steps": ["map"],
        "default": ["recv"],
        "retry": ["run", "handler"],
        "env": ["run"],
        "timeout": ["run", "handler", "recv", "get_event", "workflow", "map", "parallel"],
    ]

    let file: String
    let sourceLines: [Substring]
    var errors: [SpecError] = []

    init(file: String, sourceText: String) {
        self.file = file
        self.sourceLines = sourceText.split(separator: "\n", omittingEmptySubsequences: false)
    }

    mutating func error(_ message: String, _ location: SourceLocation) {
        errors.append(SpecError(message, at: location))
    }

    /// Decodes the root node; `nil` when it is not even a mapping.
    mutating func decodeWorkflow(_ root: YAMLNode, sourceText: String) -> WorkflowSpec? {
        guard let entries = root.entries else {
            error("a spec must be a mapping with 'name:' and 'steps:' at the top, not \(root.shapeDescription)",
                root.location)
            return nil
        }
        let baseName = Self.defaultName(forFile: file)
        var spec = WorkflowSpec(
            name: baseName, description: nil, inputSchema: nil, timeout: nil, queues: [], schedule: nil,
            scheduleLocation: nil, timezone: nil, steps: [], output: nil, file: file, sourceText: sourceText,
            location: root.location, nameLocation: root.location)
        var sawSteps = false
        for entry in entries {
            let key = entry.key.scalarText ?? ""
            let value = entry.value
            switch key {
            case "name":
                if let name = string(value, field: "name") {
                    if name.isEmpty { error("'name' must not be empty", value.location) }
                    spec.name = name
                    spec.nameLocation = value.location
                }
            case "description": spec.description = string(value, field: "description")
            case "input": spec.inputSchema = InputSchema.decode(value, errors: &errors)
            case "timeout":
                spec.timeout = duration(value, field: "timeout", literalOnly:
                    "the workflow's deadline is set when the run is created, before any template is evaluated")
            case "queues": spec.queues = queues(value)
            case "schedule":
                if let text = string(value, field: "schedule") {
                    spec.schedule = text
                    spec.scheduleLocation = value.location
                    if let problem = CronCheck.problem(in: text) {
                        error("invalid cron schedule '\(text)': \(problem)", value.location)
                    }
                }
            case "timezone":
                if let text = string(value, field: "timezone") {
                    spec.timezone = text
                    if TimeZone(identifier: text) == nil {
                        error("unknown time zone '\(text)' (expected an IANA name such as Europe/Paris)",
                            value.location)
                    }
                }
            case "steps":
                sawSteps = true
                spec.steps = steps(value, context: "the workflow")
            case "output": spec.output = specValue(value)
            default:
                error(unknownFieldMessage(key, context: "the workflow", known: Self.workflowFields),
                    entry.key.location)
            }
        }
        if !sawSteps { error("missing 'steps': a spec needs at least one step", root.location) }
        if spec.timezone != nil, spec.schedule == nil, let node = root["timezone"] {
            error("'timezone' applies only to a 'schedule'", node.location)
        }
        return spec
    }

    /// The workflow name a spec without `name:` gets: its file name without `.yaml` or `.yml` (any other
    /// extension, such as `.json`, is part of the name).
    static func defaultName(forFile file: String) -> String {
        let fileName = (file as NSString).lastPathComponent
        for suffix in [".yaml", ".yml"] where fileName.hasSuffix(suffix) && fileName.count > suffix.count {
            return String(fileName.dropLast(suffix.count))
        }
        return fileName
    }

    // MARK: Scalars

    mutating func string(_ node: YAMLNode, field: String) -> String? {
        guard case .scalar(let text, _) = node.kind, node.scalarValue != .null else {
            error("'\(field)' must be a string, not \(node.shapeDescription)", node.location)
            return nil
        }
        return text
    }

    mutating func positiveInteger(_ node: YAMLNode, field: String) -> Int? {
        guard case .integer(let value)? = node.scalarValue, value >= 1, value <= Int64(Int32.max) else {
            error("'\(field)' must be a positive whole number, not \(node.scalarText.map { "'\($0)'" } ?? node.shapeDescription)",
                node.location)
            return nil
        }
        return Int(value)
    }

    mutating func bool(_ node: YAMLNode, field: String) -> Bool? {
        guard case .bool(let value)? = node.scalarValue else {
            error("'\(field)' must be true or false, not \(node.scalarText.map { "'\($0)'" } ?? node.shapeDescription)",
                node.location)
            return nil
        }
        return value
    }

    /// A literal duration; zero only where `allowsZero` (a sleep, a wait's timeout, a retry interval), since a
    /// zero time limit or rate period has no meaning. `literalOnly` says why a template cannot be used here.
    mutating func duration(_ node: YAMLNode, field: String, allowsZero: Bool = false, literalOnly: String? = nil)
        -> Duration?
    {
        guard let text = node.scalarText else {
            error("'\(field)' must be a duration such as 30s, not \(node.shapeDescription)", node.location)
            return nil
        }
        if let literalOnly, Template.containsTemplate(text) {
            error("'\(field)' must be a literal duration such as 30s, not a template: \(literalOnly)", node.location)
            return nil
        }
        guard let duration = SpecDuration.parse(text) else {
            error(SpecDuration.invalidMessage(text, field: field), node.location)
            return nil
        }
        if duration == .zero, !allowsZero {
            error("'\(field)' must be greater than zero, not '\(text)'", node.location)
            return nil
        }
        return duration
    }

    /// A step's duration: literal, or a template evaluated when the step runs (checked now for syntax, and for
    /// its value when it reads no names).
    mutating func durationValue(_ node: YAMLNode, field: String, allowsZero: Bool) -> DurationValue? {
        let template = runTimeTemplate(node) { value in
            if case .failure(let problem) = DurationValue.checked(value, field: field, allowsZero: allowsZero) {
                return problem.message
            }
            return nil
        }
        guard let template else { return duration(node, field: field, allowsZero: allowsZero).map { .fixed($0) } }
        return template.map { .template($0) }
    }

    /// A string scalar holding a template, parsed: `nil` when the node holds no template, `.some(nil)` when it
    /// holds one with an error (reported). A template that reads no names is evaluated now and its value given
    /// to `problem`, so `${{ 'soon' }}` is a validation error rather than a failed run.
    mutating func runTimeTemplate(_ node: YAMLNode, problem: (JSONValue) -> String?) -> SpecValue?? {
        guard case .string(let text)? = node.scalarValue, Template.containsTemplate(text) else { return nil }
        guard let template = template(text, node: node) else { return .some(nil) }
        if !template.expressions.contains(where: { !$0.expression.referencedPaths.isEmpty }) {
            do {
                let value = try template.evaluate(in: ExpressionScope(variables: [:], secret: { _ in nil }))
                if let message = problem(value) {
                    error(message, node.location)
                    return .some(nil)
                }
            } catch {
                errors.append(error)
                return .some(nil)
            }
        }
        return .some(SpecValue(.template(template), location: node.location))
    }

    // MARK: Values and templates

    /// The location of character `offset` of a scalar's text, exact for single-line plain and quoted scalars
    /// and for lines of block scalars.
    func location(ofOffset offset: Int, in node: YAMLNode) -> SourceLocation {
        guard case .scalar(let text, let style) = node.kind else { return node.location }
        let prefix = text.prefix(offset)
        switch style {
        case .plain: return prefix.contains("\n") ? node.location : node.location.advanced(by: offset)
        case .quoted: return prefix.contains("\n") ? node.location : node.location.advanced(by: offset + 1)
        case .block:
            let lineInText = prefix.reduce(0) { $1 == "\n" ? $0 + 1 : $0 }
            let line = node.location.line + 1 + lineInText
            let lineText = text.split(separator: "\n", omittingEmptySubsequences: false)
            guard line - 1 < sourceLines.count, lineInText < lineText.count else { return node.location }
            let sourceLine = sourceLines[line - 1]
            let columnInText = prefix.count - (prefix.lastIndex(of: "\n").map { prefix.distance(from: prefix.startIndex, to: $0) + 1 } ?? 0)
            guard let range = sourceLine.range(of: lineText[lineInText]) else { return node.location }
            let column = sourceLine.distance(from: sourceLine.startIndex, to: range.lowerBound) + columnInText + 1
            return SourceLocation(file: file, line: line, column: column)
        }
    }

    mutating func template(_ text: String, node: YAMLNode) -> Template? {
        do {
            let start = location(ofOffset: 0, in: node)
            return try Template(parsing: text, location: node.location,
                contentStart: text.contains("\n") ? nil : start)
        } catch {
            errors.append(error)
            return nil
        }
    }

    mutating func specValue(_ node: YAMLNode) -> SpecValue {
        switch node.kind {
        case .scalar(let text, _):
            if node.scalarValue?.stringValue != nil, Template.containsTemplate(text) {
                if let template = template(text, node: node) {
                    return SpecValue(.template(template), location: node.location)
                }
            }
            return SpecValue(.literal(node.scalarValue ?? .null), location: node.location)
        case .sequence(let items):
            return SpecValue(.array(items.map { specValue($0) }), location: node.location)
        case .mapping(let entries):
            return SpecValue(.object(entries.map { ($0.key.scalarText ?? "", specValue($0.value)) }),
                location: node.location)
        }
    }

    /// A value the run turns into text (a topic, an event key, a workflow ID): a scalar or a template. A mapping,
    /// list or null here is a mistake the run would otherwise send on as text such as `{"k":1}` or `null`.
    mutating func textValue(_ node: YAMLNode, field: String) -> SpecValue {
        if node.scalarValue == nil || node.scalarValue == .null {
            error("'\(field)' must be a string or a template, not \(node.shapeDescription)", node.location)
        }
        return specValue(node)
    }

    /// An `if:` value: a template, or a bare expression as in GitHub Actions (`if: steps.a.status == 'error'`).
    mutating func condition(_ node: YAMLNode) -> SpecValue? {
        if case .string(let text)? = node.scalarValue, !Template.containsTemplate(text) {
            do {
                let expression = try ExpressionParser.parse(text)
                let start = location(ofOffset: 0, in: node)
                let template = Template(
                    parts: [.expression(expression, source: text, location: start)], location: node.location)
                return SpecValue(.template(template), location: node.location)
            } catch {
                self.error("invalid expression in 'if': \(error.message)",
                    location(ofOffset: error.offset, in: node))
                return nil
            }
        }
        if node.entries != nil || node.items != nil || node.scalarValue == .null {
            error("'if' must be an expression such as ${{ steps.a.status == 'success' }}, not \(node.shapeDescription)",
                node.location)
            return nil
        }
        return specValue(node)
    }

    // MARK: Queues

    mutating func queues(_ node: YAMLNode) -> [QueueSpec] {
        guard let items = node.items else {
            error("'queues' must be a list of queue declarations, not \(node.shapeDescription)", node.location)
            return []
        }
        var queues: [QueueSpec] = []
        let fields = ["name", "worker_concurrency", "concurrency", "rate_limit", "priority"]
        for item in items {
            guard let entries = item.entries else {
                error("a queue must be a mapping with a 'name', not \(item.shapeDescription)", item.location)
                continue
            }
            var queue = QueueSpec(name: "", workerConcurrency: nil, concurrency: nil, rateLimit: nil,
                priority: false, location: item.location)
            var hasName = false
            for entry in entries {
                let key = entry.key.scalarText ?? ""
                let value = entry.value
                switch key {
                case "name":
                    if let name = string(value, field: "name") {
                        queue.name = name
                        hasName = true
                    }
                case "worker_concurrency": queue.workerConcurrency = positiveInteger(value, field: key)
                case "concurrency": queue.concurrency = positiveInteger(value, field: key)
                case "priority": queue.priority = bool(value, field: key) ?? false
                case "rate_limit":
                    guard let limitEntries = value.entries else {
                        error("'rate_limit' must be a mapping like {limit: 100, period: 60s}", value.location)
                        continue
                    }
                    var limit: Int?
                    var period: Duration?
                    for limitEntry in limitEntries {
                        switch limitEntry.key.scalarText ?? "" {
                        case "limit": limit = positiveInteger(limitEntry.value, field: "limit")
                        case "period":
                            period = duration(limitEntry.value, field: "period", literalOnly:
                                "a queue is configured before any run exists")
                        case let other:
                            error(unknownFieldMessage(other, context: "rate_limit", known: ["limit", "period"]),
                                limitEntry.key.location)
                        }
                    }
                    if value["limit"] == nil { error("'rate_limit' needs a 'limit'", value.location) }
                    if value["period"] == nil { error("'rate_limit' needs a 'period'", value.location) }
                    if let limit, let period { queue.rateLimit = QueueSpec.RateLimit(limit: limit, period: period) }
                default:
                    error(unknownFieldMessage(key, context: "queue", known: fields), entry.key.location)
                }
            }
            if !hasName {
                if item["name"] == nil { error("a queue needs a 'name'", item.location) }
                continue
            }
            checkEngineRules(queue, node: item)
            if let first = queues.first(where: { $0.name == queue.name }) {
                error("queue '\(queue.name)' is declared twice (first at line \(first.location.line))", item.location)
                continue
            }
            queues.append(queue)
        }
        return queues
    }

    /// The rules the engine checks when it registers a queue (`WorkflowQueue`, `DBOSRuntime.register(queue:)`),
    /// so a spec that validates never fails at startup. Limits below 1 are refused where they are read.
    mutating func checkEngineRules(_ queue: QueueSpec, node: YAMLNode) {
        let nameLocation = node["name"]?.location ?? node.location
        if queue.name.isEmpty {
            error("a queue's 'name' must not be empty", nameLocation)
        } else if queue.name == WorkflowQueue.internalQueueName {
            error("queue name '\(queue.name)' is reserved for the engine; choose another name", nameLocation)
        }
        if let worker = queue.workerConcurrency, let global = queue.concurrency, worker > global {
            error("'worker_concurrency' (\(worker)) cannot exceed 'concurrency' (\(global)): one process cannot run "
                + "more of the queue's runs than all processes together", node["worker_concurrency"]?.location ?? node.location)
        }
    }

    // MARK: Steps

    mutating func steps(_ node: YAMLNode, context: String) -> [StepSpec] {
        guard let items = node.items else {
            error("'steps' must be a list of steps, not \(node.shapeDescription)", node.location)
            return []
        }
        if items.isEmpty { error("'steps' must list at least one step", node.location) }
        var steps: [StepSpec] = []
        var seen: [String: SourceLocation] = [:]
        for (position, item) in items.enumerated() {
            guard let step = step(item, position: position) else { continue }
            if let first = seen[step.id] {
                error("duplicate step id '\(step.id)' (first used at line \(first.line))", step.idLocation)
                continue
            }
            seen[step.id] = step.idLocation
            steps.append(step)
        }
        return steps
    }

    static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.unicodeScalars.allSatisfy {
            $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "_" || $0 == "-")
        }
    }

    mutating func step(_ node: YAMLNode, position: Int) -> StepSpec? {
        guard let entries = node.entries else {
            error("step \(position + 1) must be a mapping with an 'id' and an action, not \(node.shapeDescription)",
                node.location)
            return nil
        }
        var id = "#\(position + 1)"
        var idLocation = node.location
        if let idNode = node["id"] {
            if let text = string(idNode, field: "id") {
                if Self.isValidID(text) {
                    id = text
                } else {
                    error("invalid step id '\(text)': use letters, digits, '_' and '-'", idNode.location)
                }
                idLocation = idNode.location
            }
        } else {
            error("step \(position + 1) has no 'id'", node.location)
        }
        let label = "step '\(id)'"

        // Find the action: exactly one, where `workflow` next to `map` is the map's body.
        var actionKeys: Set<String> = []
        let presentActions = entries.filter {
            guard let key = $0.key.scalarText, Self.actionFields.contains(key) else { return false }
            // A duplicate key is reported by the loader; count the action once.
            return !(key == "workflow" && node["map"] != nil) && actionKeys.insert(key).inserted
        }
        guard let actionEntry = presentActions.first else {
            error("\(label) has no action; add one of " + Self.actionFields.joined(separator: ", "), node.location)
            for entry in entries {
                let key = entry.key.scalarText ?? ""
                if !Self.stepFields.contains(key) {
                    error(unknownFieldMessage(key, context: label, known: Self.stepFields), entry.key.location)
                }
            }
            return nil
        }
        for extra in presentActions.dropFirst() {
            error("\(label) has two actions: '\(actionEntry.key.scalarText ?? "")' and '\(extra.key.scalarText ?? "")'",
                extra.key.location)
        }
        let actionName = actionEntry.key.scalarText ?? ""

        var step = StepSpec(
            id: id, action: .sleep(.fixed(.seconds(1))), needs: nil, needsLocations: [], condition: nil, retry: nil,
            timeout: nil, environment: [], continueOnError: false, compensation: nil, location: node.location,
            idLocation: idLocation, actionLocation: actionEntry.key.location)

        for entry in entries {
            let key = entry.key.scalarText ?? ""
            let value = entry.value
            if !Self.stepFields.contains(key) {
                error(unknownFieldMessage(key, context: label, known: Self.stepFields), entry.key.location)
                continue
            }
            if let owners = Self.optionOwners[key], !owners.contains(actionName) {
                error("'\(key)' does not apply to a '\(actionName)' step (only to \(owners.joined(separator: ", ")))",
                    entry.key.location)
                continue
            }
            if actionName == "map", ["with", "priority"].contains(key), node["workflow"] == nil {
                error("'\(key)' applies to a map over a child spec ('workflow:'), not to a 'steps:' body",
                    entry.key.location)
                continue
            }
            switch key {
            case "needs":
                if let text = value.scalarValue?.stringValue {
                    step.needs = [text]
                    step.needsLocations = [value.location]
                } else if let items = value.items {
                    step.needs = []
                    for item in items {
                        if let text = item.scalarValue?.stringValue {
                            step.needs?.append(text)
                            step.needsLocations.append(item.location)
                        } else {
                            error("'needs' must list step ids, not \(item.shapeDescription)", item.location)
                        }
                    }
                } else {
                    error("'needs' must be a list of step ids, not \(value.shapeDescription)", value.location)
                }
            case "if": step.condition = condition(value)
            case "retry": step.retry = retry(value)
            case "timeout":
                // On a `recv` or `get_event` step it is how long to wait, and zero means not to wait.
                step.timeout = durationValue(value, field: "timeout", allowsZero: ["recv", "get_event"].contains(actionName))
            case "env": step.environment = environment(value)
            case "continue_on_error": step.continueOnError = bool(value, field: key) ?? false
            case "compensate": step.compensation = compensation(value, label: label)
            default: break
            }
        }
        if let action = action(actionName, node: node, value: actionEntry.value, label: label) {
            step.action = action
        }
        return step
    }

    mutating func environment(_ node: YAMLNode) -> [(name: String, value: SpecValue)] {
        guard let entries = node.entries else {
            error("'env' must be a mapping of variable names to values, not \(node.shapeDescription)", node.location)
            return []
        }
        var result: [(name: String, value: SpecValue)] = []
        for entry in entries {
            let name = entry.key.scalarText ?? ""
            let valid = !name.isEmpty && name.first.map { !$0.isNumber } == true
                && name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "_") }
            if !valid {
                error("invalid environment variable name '\(name)': use letters, digits and '_'", entry.key.location)
            }
            if entry.value.entries != nil || entry.value.items != nil {
                error("env value '\(name)' must be a string, number or template, not \(entry.value.shapeDescription)",
                    entry.value.location)
                continue
            }
            result.append((name, specValue(entry.value)))
        }
        return result
    }

    mutating func retry(_ node: YAMLNode) -> RetrySpec? {
        guard let entries = node.entries else {
            error("'retry' must be a mapping like {max_attempts: 3, interval: 1s}, not \(node.shapeDescription)",
                node.location)
            return nil
        }
        var retry = RetrySpec()
        for entry in entries {
            let key = entry.key.scalarText ?? ""
            if let field = RetrySpec.Field(rawValue: key),
                let template = runTimeTemplate(entry.value, problem: { value in
                    var scratch = RetrySpec()
                    return scratch.set(field, to: value)?.message
                })
            {
                retry.templates[field] = template
                continue
            }
            switch key {
            case "max_attempts": retry.maxAttempts = positiveInteger(entry.value, field: key) ?? 1
            case "interval": retry.interval = duration(entry.value, field: key, allowsZero: true) ?? retry.interval
            case "max_interval":
                retry.maxInterval = duration(entry.value, field: key, allowsZero: true) ?? retry.maxInterval
            case "backoff":
                if let number = entry.value.scalarValue?.doubleValue, number >= 1, number.isFinite {
                    retry.backoff = number
                } else {
                    error("'backoff' must be a number of at least 1.0, not \(entry.value.scalarText.map { "'\($0)'" } ?? entry.value.shapeDescription)",
                        entry.value.location)
                }
            default:
                error(unknownFieldMessage(key, context: "retry",
                    known: ["max_attempts", "interval", "backoff", "max_interval"]), entry.key.location)
            }
        }
        return retry
    }

    mutating func compensation(_ node: YAMLNode, label: String) -> CompensationSpec? {
        guard let entries = node.entries else {
            error("'compensate' of \(label) must be a step body with 'run' or 'handler', not \(node.shapeDescription)",
                node.location)
            return nil
        }
        let fields = ["run", "handler", "with", "env", "retry", "timeout"]
        var result = CompensationSpec(action: .run(command: "", output: .text), environment: [], retry: nil,
            timeout: nil, location: node.location)
        let actions = entries.filter { ["run", "handler"].contains($0.key.scalarText ?? "") }
        let otherAction = entries.contains { Self.actionFields.contains($0.key.scalarText ?? "") }
        if actions.isEmpty, !otherAction {
            error("'compensate' of \(label) needs a 'run' or 'handler' action", node.location)
        } else if actions.count > 1 {
            error("'compensate' of \(label) has two actions: 'run' and 'handler'", actions[1].key.location)
        }
        for entry in entries {
            let key = entry.key.scalarText ?? ""
            switch key {
            case "run":
                if let command = runCommand(entry.value) { result.action = .run(command: command, output: .text) }
            case "handler":
                if let name = string(entry.value, field: "handler") {
                    result.action = .handler(name: name, with: node["with"].map { specValue($0) })
                }
            case "with":
                if node["handler"] == nil { error("'with' in 'compensate' needs a 'handler'", entry.key.location) }
            case "env": result.environment = environment(entry.value)
            case "retry": result.retry = retry(entry.value)
            case "timeout": result.timeout = durationValue(entry.value, field: "timeout", allowsZero: false)
            default:
                var message = unknownFieldMessage(key, context: "'compensate' of \(label)", known: fields)
                if Self.actionFields.contains(key) {
                    message = "'compensate' of \(label) must be a 'run' or 'handler' action, not '\(key)'"
                }
                error(message, entry.key.location)
            }
        }
        return actions.isEmpty ? nil : result
    }

    /// A `run:` command; a template in it is an error, since values must reach the shell through `env:`.
    mutating func runCommand(_ node: YAMLNode) -> String? {
        guard let command = string(node, field: "run") else { return nil }
        if let range = command.range(of: "${{") {
            let offset = command.distance(from: command.startIndex, to: range.lowerBound)
            error("a template in 'run:' cannot be used; pass values through 'env:'",
                location(ofOffset: offset, in: node))
        }
        if command.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            error("'run' must not be empty", node.location)
        }
        return command
    }

    mutating func childWorkflow(_ node: YAMLNode, step: YAMLNode) -> ChildWorkflowAction? {
        guard let name = string(node, field: "workflow") else { return nil }
        if Template.containsTemplate(name) {
            error("'workflow' must name a spec literally, not with a template", node.location)
            return nil
        }
        var wait = true
        if let waitNode = step["wait"] { wait = bool(waitNode, field: "wait") ?? true }
        return ChildWorkflowAction(
            name: name, nameLocation: node.location, input: step["with"].map { specValue($0) },
            queue: step["queue"].map { specValue($0) }, priority: step["priority"].map { specValue($0) },
            deduplicationID: step["dedup_id"].map { textValue($0, field: "dedup_id") }, wait: wait)
    }

    mutating func action(_ name: String, node: YAMLNode, value: YAMLNode, label: String) -> StepAction? {
        switch name {
        case "run":
            guard let command = runCommand(value) else { return nil }
            var format = RunOutputFormat.text
            if let outputNode = node["output"], let text = string(outputNode, field: "output") {
                if let parsed = RunOutputFormat(rawValue: text) {
                    format = parsed
                } else {
                    error("'output' of a run step must be text, json or lines, not '\(text)'", outputNode.location)
                }
            }
            return .run(command: command, output: format)
        case "handler":
            guard let handler = string(value, field: "handler") else { return nil }
            return .handler(name: handler, with: node["with"].map { specValue($0) })
        case "sleep":
            return durationValue(value, field: "sleep", allowsZero: true).map { .sleep($0) }
        case "recv":
            let fields = ["topic", "timeout", "default"]
            guard let entries = mappingFields(value, action: name, fields: fields, required: ["topic"]) else {
                return nil
            }
            var action = ReceiveAction(topic: SpecValue(.literal(.null), location: value.location))
            for entry in entries {
                switch entry.key.scalarText ?? "" {
                case "topic": action.topic = textValue(entry.value, field: "topic")
                case "timeout": action.timeout = durationValue(entry.value, field: "timeout", allowsZero: true)
                case "default": action.defaultValue = specValue(entry.value)
                default: break
                }
            }
            if let defaultNode = node["default"] { action.defaultValue = specValue(defaultNode) }
            return .recv(action)
        case "send":
            guard let entries = mappingFields(value, action: name, fields: ["to", "topic", "message"],
                required: ["to", "topic"])
            else { return nil }
            var action = SendAction(
                destination: SpecValue(.literal(.null), location: value.location),
                topic: SpecValue(.literal(.null), location: value.location))
            for entry in entries {
                switch entry.key.scalarText ?? "" {
                case "to": action.destination = textValue(entry.value, field: "to")
                case "topic": action.topic = textValue(entry.value, field: "topic")
                case "message": action.message = specValue(entry.value)
                default: break
                }
            }
            return .send(action)
        case "set_event":
            guard mappingFields(value, action: name, fields: ["key", "value"], required: ["key", "value"]) != nil,
                let key = value["key"], let eventValue = value["value"]
            else { return nil }
            return .setEvent(key: textValue(key, field: "key"), value: specValue(eventValue))
        case "get_event":
            guard mappingFields(value, action: name, fields: ["from", "key", "timeout"], required: ["from", "key"])
                != nil, let source = value["from"], let key = value["key"]
            else { return nil }
            let timeout = value["timeout"].flatMap { durationValue($0, field: "timeout", allowsZero: true) }
            return .getEvent(GetEventAction(source: textValue(source, field: "from"), key: textValue(key, field: "key"), timeout: timeout))
        case "workflow":
            return childWorkflow(value, step: node).map { .workflow($0) }
        case "map":
            let items = specValue(value)
            switch items.kind {
            case .template, .array: break
            default:
                error("'map' must be a list or a template giving one, such as ${{ input.items }}", value.location)
            }
            let workflowNode = node["workflow"]
            let stepsNode = node["steps"]
            let body: MapAction.Body
            switch (workflowNode, stepsNode) {
            case (let workflow?, nil):
                guard let child = childWorkflow(workflow, step: node) else { return nil }
                body = .workflow(child)
            case (nil, let stepsList?):
                body = .steps(steps(stepsList, context: label))
            case (_?, let stepsList?):
                error("\(label) has two map bodies: 'workflow' and 'steps'", stepsList.location)
                return nil
            case (nil, nil):
                error("\(label) maps with neither 'workflow:' nor 'steps:'", node.location)
                return nil
            }
            return .map(MapAction(items: items, body: body, queue: node["queue"].map { specValue($0) }))
        case "parallel":
            guard let branches = value.items else {
                error("'parallel' must be a list of branches like - steps: [...], not \(value.shapeDescription)",
                    value.location)
                return nil
            }
            if branches.isEmpty { error("'parallel' must list at least one branch", value.location) }
            var result: [ParallelBranch] = []
            for branch in branches {
                guard let entries = branch.entries else {
                    error("a parallel branch must be a mapping with 'steps:', not \(branch.shapeDescription)",
                        branch.location)
                    continue
                }
                for entry in entries where entry.key.scalarText != "steps" {
                    error(unknownFieldMessage(entry.key.scalarText ?? "", context: "a parallel branch",
                        known: ["steps"]), entry.key.location)
                }
                guard let stepsNode = branch["steps"] else {
                    if entries.isEmpty { error("a parallel branch needs 'steps:'", branch.location) }
                    continue
                }
                result.append(ParallelBranch(steps: steps(stepsNode, context: label), location: branch.location))
            }
            return .parallel(result)
        default:
            return nil
        }
    }

    /// The entries of an action's mapping, with unknown and missing fields reported.
    mutating func mappingFields(_ node: YAMLNode, action: String, fields: [String], required: [String])
        -> [YAMLNode.Entry]?
    {
        guard let entries = node.entries else {
            error("'\(action)' must be a mapping with " + required.map { "'\($0)'" }.joined(separator: " and ")
                + ", not \(node.shapeDescription)", node.location)
            return nil
        }
        for entry in entries where !fields.contains(entry.key.scalarText ?? "") {
            error(unknownFieldMessage(entry.key.scalarText ?? "", context: "'\(action)'", known: fields),
                entry.key.location)
        }
        for field in required where node[field] == nil {
            error("'\(action)' needs '\(field)'", node.location)
        }
        return entries
    }
}
