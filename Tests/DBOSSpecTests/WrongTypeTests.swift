import DBOS
import DBOSSpec
import Foundation
import Testing

/// "Wrong types in every field": every field of the spec format (SPEC-FORMAT.md) gets a value of each kind
/// it does not accept, and the spec must then get exactly one error, at that value, naming the field.
///
/// The table below lists each field once, with a spec that holds it and the kinds it accepts; the test
/// derives every wrong case from it, so a field added to the format needs one line here.
@Suite struct WrongTypeTests {
    /// A kind of YAML value, written the way a user would.
    enum Kind: String, CaseIterable, CustomStringConvertible {
        case mapping = "{k: 1}"
        case list = "[7]"
        case text = "abc"
        case integer = "7"
        case negative = "-3"
        case fraction = "1.5"
        case boolean = "true"
        case null = "null"

        var description: String { rawValue }

        /// Every scalar that is not null: what a text field accepts (YAML `5` is the text "5" there).
        static let scalars: Set<Kind> = [.text, .integer, .negative, .fraction, .boolean]
    }

    /// One field: a spec in which `@` stands for the field's value, and the kinds the field accepts. A scalar of
    /// the right kind whose value is wrong (an unknown handler, a bad cron) is the invalid-spec corpus's business.
    struct Field: CustomStringConvertible, Sendable {
        var name: String
        var spec: String
        var accepts: Set<Kind>
        /// What the error must mention: the field's name unless the message calls it otherwise.
        var mentions: String?

        var description: String { name }
    }

    static let fields: [Field] = [
        // The workflow.
        Field(name: "name", spec: "name: @\nsteps: [{id: a, run: echo}]", accepts: Kind.scalars),
        Field(name: "description", spec: "description: @\nsteps: [{id: a, run: echo}]", accepts: Kind.scalars),
        Field(name: "input", spec: "input: @\nsteps: [{id: a, run: echo}]", accepts: [.mapping]),
        Field(name: "timeout", spec: "timeout: @\nsteps: [{id: a, run: echo}]", accepts: []),
        Field(name: "queues", spec: "queues: @\nsteps: [{id: a, run: echo}]", accepts: [], mentions: "queue"),
        Field(name: "schedule", spec: "schedule: @\nsteps: [{id: a, run: echo}]", accepts: Kind.scalars),
        Field(name: "timezone", spec: "schedule: '0 * * * * *'\ntimezone: @\nsteps: [{id: a, run: echo}]", accepts: Kind.scalars),
        Field(name: "steps", spec: "steps: @", accepts: [], mentions: "step"),
        // A queue.
        Field(name: "name", spec: "queues:\n  - name: @\nsteps: [{id: a, run: echo}]", accepts: Kind.scalars),
        Field(name: "worker_concurrency", spec: "queues:\n  - name: q\n    worker_concurrency: @\nsteps: [{id: a, run: echo}]",
            accepts: [.integer]),
        Field(name: "concurrency", spec: "queues:\n  - name: q\n    concurrency: @\nsteps: [{id: a, run: echo}]",
            accepts: [.integer]),
        Field(name: "priority", spec: "queues:\n  - name: q\n    priority: @\nsteps: [{id: a, run: echo}]",
            accepts: [.boolean]),
        Field(name: "rate_limit", spec: "queues:\n  - name: q\n    rate_limit: @\nsteps: [{id: a, run: echo}]",
            accepts: [.mapping]),
        Field(name: "limit", spec: "queues:\n  - name: q\n    rate_limit: {period: 1s, limit: @}\nsteps: [{id: a, run: echo}]",
            accepts: [.integer]),
        Field(name: "period", spec: "queues:\n  - name: q\n    rate_limit: {limit: 1, period: @}\nsteps: [{id: a, run: echo}]",
            accepts: []),
        // Fields every step may have.
        Field(name: "id", spec: "steps:\n  - id: @\n    run: echo", accepts: Kind.scalars),
        Field(name: "needs", spec: "steps:\n  - id: a\n    run: echo\n  - id: b\n    run: echo\n    needs: @", accepts: [.text]),
        Field(name: "if", spec: "steps:\n  - id: a\n    run: echo\n    if: @", accepts: Kind.scalars),
        Field(name: "retry", spec: "steps:\n  - id: a\n    run: echo\n    retry: @", accepts: [.mapping]),
        Field(name: "max_attempts", spec: "steps:\n  - id: a\n    run: echo\n    retry: {max_attempts: @}", accepts: [.integer]),
        Field(name: "interval", spec: "steps:\n  - id: a\n    run: echo\n    retry: {interval: @}", accepts: []),
        Field(name: "backoff", spec: "steps:\n  - id: a\n    run: echo\n    retry: {backoff: @}", accepts: [.integer, .fraction]),
        Field(name: "max_interval", spec: "steps:\n  - id: a\n    run: echo\n    retry: {max_interval: @}", accepts: []),
        Field(name: "timeout", spec: "steps:\n  - id: a\n    run: echo\n    timeout: @", accepts: []),
        Field(name: "env", spec: "steps:\n  - id: a\n    run: echo\n    env: @", accepts: [.mapping]),
        Field(name: "env", spec: "steps:\n  - id: a\n    run: echo\n    env: {X: @}", accepts: Kind.scalars.union([.null])),
        Field(name: "continue_on_error", spec: "steps:\n  - id: a\n    run: echo\n    continue_on_error: @", accepts: [.boolean]),
        Field(name: "compensate", spec: "steps:\n  - id: a\n    run: echo\n    compensate: @", accepts: [.mapping]),
        // Actions and their options.
        Field(name: "run", spec: "steps:\n  - id: a\n    run: @", accepts: Kind.scalars),
        Field(name: "output", spec: "steps:\n  - id: a\n    run: echo\n    output: @", accepts: []),
        Field(name: "handler", spec: "steps:\n  - id: a\n    handler: @", accepts: Kind.scalars),
        Field(name: "with", spec: "steps:\n  - id: a\n    handler: h\n    with: @", accepts: Set(Kind.allCases)),
        Field(name: "sleep", spec: "steps:\n  - id: a\n    sleep: @", accepts: []),
        Field(name: "recv", spec: "steps:\n  - id: a\n    recv: @", accepts: [.mapping]),
        Field(name: "topic", spec: "steps:\n  - id: a\n    recv: {topic: @}", accepts: Kind.scalars),
        Field(name: "timeout", spec: "steps:\n  - id: a\n    recv: {topic: t, timeout: @}", accepts: []),
        Field(name: "send", spec: "steps:\n  - id: a\n    send: @", accepts: [.mapping]),
        Field(name: "to", spec: "steps:\n  - id: a\n    send: {to: @, topic: t, message: m}", accepts: Kind.scalars),
        Field(name: "topic", spec: "steps:\n  - id: a\n    send: {to: w, topic: @, message: m}", accepts: Kind.scalars),
        Field(name: "set_event", spec: "steps:\n  - id: a\n    set_event: @", accepts: [.mapping]),
        Field(name: "key", spec: "steps:\n  - id: a\n    set_event: {key: @, value: v}", accepts: Kind.scalars),
        Field(name: "get_event", spec: "steps:\n  - id: a\n    get_event: @", accepts: [.mapping]),
        Field(name: "from", spec: "steps:\n  - id: a\n    get_event: {from: @, key: k}", accepts: Kind.scalars),
        Field(name: "key", spec: "steps:\n  - id: a\n    get_event: {from: w, key: @}", accepts: Kind.scalars),
        Field(name: "timeout", spec: "steps:\n  - id: a\n    get_event: {from: w, key: k, timeout: @}", accepts: []),
        Field(name: "workflow", spec: "steps:\n  - id: a\n    workflow: @", accepts: Kind.scalars),
        Field(name: "queue", spec: "steps:\n  - id: a\n    workflow: child\n    queue: @", accepts: Kind.scalars.subtracting([.integer, .negative, .fraction, .boolean])),
        Field(name: "priority", spec: "\(queued)\n    priority: @", accepts: [.integer]),
        Field(name: "dedup_id", spec: "\(queued)\n    dedup_id: @", accepts: Kind.scalars),
        Field(name: "wait", spec: "steps:\n  - id: a\n    workflow: child\n    wait: @", accepts: [.boolean]),
        Field(name: "map", spec: "steps:\n  - id: a\n    map: @\n    steps: [{id: b, run: echo}]", accepts: [.list]),
        Field(name: "steps", spec: "steps:\n  - id: a\n    map: [1]\n    steps: @", accepts: [], mentions: "step"),
        Field(name: "parallel", spec: "steps:\n  - id: a\n    parallel: @", accepts: []),
        Field(name: "steps", spec: "steps:\n  - id: a\n    parallel:\n      - steps: @", accepts: [], mentions: "step"),
    ]

    /// A step that starts a child run on a queue that enables priority.
    static let queued = "queues: [{name: q, priority: true}]\nsteps:\n  - id: a\n    workflow: child\n    queue: q"

    /// Every (field, wrong kind) pair.
    static let cases: [(Field, Kind)] = fields.flatMap { field in
        Kind.allCases.filter { !field.accepts.contains($0) }.map { (field, $0) }
    }

    @Test(arguments: cases)
    func aValueOfTheWrongKindIsOneErrorAtTheValueNamingTheField(field: Field, kind: Kind) throws {
        let text = field.spec.replacingOccurrences(of: "@", with: kind.rawValue)
        let marker = try #require(field.spec.firstRange(of: "@"))
        let before = field.spec[..<marker.lowerBound]
        let line = before.count(where: { $0 == "\n" }) + 1
        let column = before.count - (before.lastIndex(of: "\n").map { before.distance(from: before.startIndex, to: $0) + 1 } ?? 0) + 1

        let (spec, decodeErrors) = SpecLoader(knownHandlers: ["h"]).decode(text: text, file: "wrong.yaml")
        var errors = decodeErrors
        let child = try #require(SpecLoader().decode(text: "name: child\nsteps: [{id: c, run: echo}]", file: "child.yaml").spec)
        if let spec {
            errors += SpecValidator(context: ValidationContext(knownHandlers: ["h"], otherSpecs: [child])).validate(spec)
        }
        let lines = errors.map { "\($0.location.line):\($0.location.column): \($0.message)" }.joined(separator: "\n")
        #expect(errors.count == 1, "\(text)\n\(lines)")
        let error = try #require(errors.first)
        // At the value, or at the first item of a list value, which is the part of the wrong kind.
        #expect(error.location.line == line, "\(text)\n\(lines)")
        #expect((column..<column + kind.rawValue.count).contains(error.location.column), "\(text)\n\(lines)")
        #expect(error.message.contains(field.mentions ?? field.name), "\(text)\n\(lines)")
    }
}
