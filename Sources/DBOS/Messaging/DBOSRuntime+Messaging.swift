import Foundation
import Synchronization

extension DBOSRuntime {
    // MARK: Messages and events from outside workflows

    /// Sends a message to a workflow from outside any workflow. With an idempotency key the
    /// message is delivered at most once however often the call is repeated.
    public func send<Message: Encodable & Sendable>(
        to workflowID: String, topic: String? = nil, message: Message, idempotencyKey: String? = nil
    ) async throws {
        let topic = topic ?? WorkflowContext.nullTopic
        let insert = MessageInsert(
            destinationID: workflowID, topic: topic, message: try PortableJSON.encode(message),
            messageID: idempotencyKey.map { "\($0)::\(workflowID)" } ?? UUID().uuidString,
            now: nextCreationTime())
        _ = try await database.sendMessage(insert, checkpoint: nil)
        wakeups.signal(WakeupRegistry.messageKey(workflowID: workflowID, topic: topic))
    }

    /// Waits up to `timeout` for a workflow's event and returns its value, or nil on timeout. A database
    /// that cannot be reached when the timeout ends throws its connection error instead of being waited for.
    public func getEvent<Value: Decodable & Sendable>(
        workflowID: String, key: String, as type: Value.Type = JSONValue.self, timeout: Duration = .seconds(60)
    ) async throws -> Value? {
        let deadline = Date().epochMilliseconds + timeout.milliseconds
        let found = try await ConnectionRetryDeadline.$current.withValue(deadline) {
            try await waitForEvent(workflowID: workflowID, key: key, until: deadline)
        }
        guard let text = found else { return nil }
        return try PortableJSON.decode(Value.self, from: text)
    }

    /// Polls (and waits for local signals) until the event exists or the deadline passes.
    func waitForEvent(workflowID: String, key: String, until deadline: EpochMilliseconds) async throws -> String? {
        while true {
            let ticket = wakeups.ticket(for: WakeupRegistry.eventKey(workflowID: workflowID, key: key))
            if let value = try await database.event(workflowID: workflowID, key: key) {
                wakeups.cancel(ticket)
                return value
            }
            let remaining = deadline - Date().epochMilliseconds
            guard remaining > 0 else {
                wakeups.cancel(ticket)
                return nil
            }
            await wakeups.wait(ticket, timeout: min(.milliseconds(remaining), waitInterval))
            try Task.checkCancellation()
        }
    }
}
