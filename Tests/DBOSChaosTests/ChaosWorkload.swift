import DBOS
import Foundation

/// The runs a chaos test enqueues, in waves, through a `DBOSClient`; and the check of their outcomes.
///
/// A wave is two `chaos-receiver` runs (queue `chaos-inbox`), six `chaos-order` runs (queue `chaos-runs`),
/// three sending to each receiver, and one `chaos-saga` run designed to fail. Receivers are enqueued
/// first: a message can only be sent to a run that exists.
struct ChaosWorkload {
    static let receiversPerWave = 2
    static let ordersPerWave = 6
    static let items: [Int] = [1, 2, 3, 4]
    /// The step bodies that log their execution: per order `prepare`, `charge`, `finish`, the child's `pack` and
    /// `label`, one `work` per item; per receiver `tally`; per saga `reserve`, `explode`, `reserve.compensate`.
    static let checkpointsPerWave = ordersPerWave * (5 + items.count) + receiversPerWave + 3

    let client: DBOSClient
    private(set) var waves = 0
    private(set) var orders: [String] = []
    private(set) var receivers: [String] = []
    private(set) var sagas: [String] = []

    init(client: DBOSClient) { self.client = client }

    /// The number of top-level runs.
    var runCount: Int { orders.count + receivers.count + sagas.count }

    /// The checkpoints whose bodies must have run, in all waves.
    var expectedCheckpoints: Int { waves * Self.checkpointsPerWave }

    /// Enqueues one more wave.
    mutating func enqueueWave() async throws {
        let wave = waves
        waves += 1
        let inboxes = (0..<Self.receiversPerWave).map { "w\(wave)-inbox-\($0)" }
        for id in inboxes {
            _ = try await client.enqueue(
                workflowName: "chaos-receiver", queueName: "chaos-inbox", input: JSONValue.null,
                options: WorkflowOptions(workflowID: id))
        }
        receivers += inboxes
        for index in 0..<Self.ordersPerWave {
            let id = "w\(wave)-order-\(index)"
            let input: JSONValue = [
                "receiver": .string(inboxes[index % inboxes.count]), "items": .array(Self.items.map { .integer(Int64($0)) }),
            ]
            _ = try await client.enqueue(
                workflowName: "chaos-order", queueName: "chaos-runs", input: input, options: WorkflowOptions(workflowID: id))
            orders.append(id)
        }
        let saga = "w\(wave)-saga"
        _ = try await client.enqueue(
            workflowName: "chaos-saga", queueName: "chaos-runs", input: JSONValue.null, options: WorkflowOptions(workflowID: saga))
        sagas.append(saga)
    }

    /// How many top-level runs have not finished.
    func unfinishedRuns() async throws -> Int {
        try await client.listWorkflows(WorkflowFilter(states: [.pending, .enqueued]))
            .filter { $0.parentWorkflowID == nil }.count
    }

    /// Whether every run reached its designed outcome, and every message was received exactly once.
    /// Returns the problems, and the number of messages received.
    func checkOutcomes() async throws -> (problems: [String], messages: Int) {
        var problems: [String] = []
        for id in orders {
            let status = try await client.workflowStatus(id: id)
            guard let status, status.state == .success else {
                problems.append("\(id) ended \(status.map { "\($0.state.rawValue): \($0.error?.message ?? "")" } ?? "missing"), not SUCCESS")
                continue
            }
            let items = status.output?["items"]?.arrayValue?.compactMap { $0["item"] }
            if items != Self.items.map({ .integer(Int64($0)) }) {
                problems.append("\(id): the map's outputs are not the items in order: \(status.output?.jsonText ?? "none")")
            }
        }
        var received: [String] = []
        for id in receivers {
            let status = try await client.workflowStatus(id: id)
            guard let status, status.state == .success, let messages = status.output?.arrayValue else {
                problems.append("\(id) ended \(status.map { "\($0.state.rawValue): \($0.error?.message ?? "")" } ?? "missing"), not SUCCESS")
                continue
            }
            received += messages.map { $0.stringValue ?? $0.jsonText }
        }
        // Every order sends its own ID to one receiver of its wave.
        let sent = orders
        if received.sorted() != sent.sorted() {
            let duplicated = Dictionary(grouping: received) { $0 }.filter { $0.value.count > 1 }.keys.sorted()
            let lost = Set(sent).subtracting(received).sorted()
            problems.append("messages not received exactly once: duplicated \(duplicated), lost \(lost)")
        }
        for id in sagas {
            let status = try await client.workflowStatus(id: id)
            let message = status?.error?.message ?? ""
            if status?.state != .error || !message.contains("step 'explode'") || !message.contains("designed failure") {
                problems.append("\(id) ended \(status?.state.rawValue ?? "missing") (\(message)), not ERROR from step 'explode'")
            }
        }
        return (problems, received.count)
    }
}

extension JSONValue {
    /// The elements, if this is an array.
    var arrayValue: [JSONValue]? { if case .array(let value) = self { value } else { nil } }
}
