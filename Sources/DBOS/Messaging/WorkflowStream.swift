/// The values a workflow writes to one of its streams, read in order as an `AsyncSequence`
/// from any process. The sequence ends when the stream is closed, or when the workflow has
/// finished and every value it wrote was read.
public struct WorkflowStream<Element: Decodable & Sendable>: AsyncSequence, Sendable {
    let runtime: DBOSRuntime
    let workflowID: String
    let key: String
    let offset: Int

    /// Iterates the stream's values.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let stream: WorkflowStream
        var offset: Int
        var buffered: [StreamEntry] = []
        var finished = false

        public mutating func next() async throws -> Element? {
            while !finished {
                if !buffered.isEmpty {
                    let entry = buffered.removeFirst()
                    offset = entry.offset + 1
                    if entry.value == StreamMarker.closed {
                        finished = true
                        return nil
                    }
                    return try PortableJSON.decode(Element.self, from: entry.value)
                }
                let runtime = stream.runtime
                let ticket = runtime.wakeups.ticket(for: WakeupRegistry.streamKey(workflowID: stream.workflowID, key: stream.key))
                // Read the state before the values: a workflow that finished before this read
                // wrote everything it will ever write, so one more read drains the stream.
                let state = try await runtime.database.workflow(id: stream.workflowID)?.state
                buffered = try await runtime.database.readStream(workflowID: stream.workflowID, key: stream.key, from: offset)
                if !buffered.isEmpty {
                    runtime.wakeups.cancel(ticket)
                    continue
                }
                if state == nil || state?.isTerminal == true {
                    runtime.wakeups.cancel(ticket)
                    finished = true
                    return nil
                }
                await runtime.wakeups.wait(ticket, timeout: runtime.waitInterval)
                try Task.checkCancellation()
            }
            return nil
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(stream: self, offset: offset)
    }
}

extension DBOSRuntime {
    /// The values of stream `key` of a workflow, from `offset` on, as they are written.
    public func readStream<Value: Decodable & Sendable>(
        workflowID: String, key: String, as type: Value.Type = JSONValue.self, from offset: Int = 0
    ) -> WorkflowStream<Value> {
        WorkflowStream(runtime: self, workflowID: workflowID, key: key, offset: offset)
    }

    /// The values of stream `key` of a workflow written so far, from `offset` on, without waiting for
    /// more (DBOS's snapshot read); `ended` tells whether more may come: false while the stream is
    /// open and its workflow has not finished.
    public func readStreamSnapshot<Value: Decodable & Sendable>(
        workflowID: String, key: String, as type: Value.Type = JSONValue.self, from offset: Int = 0
    ) async throws -> (values: [Value], ended: Bool) {
        // The state before the values, as the stream's iterator reads them: a workflow that had
        // finished wrote everything it ever will before this read.
        let state = try await database.workflow(id: workflowID)?.state
        var values: [Value] = []
        for entry in try await database.readStream(workflowID: workflowID, key: key, from: offset) {
            if entry.value == StreamMarker.closed { return (values, true) }
            values.append(try PortableJSON.decode(Value.self, from: entry.value))
        }
        return (values, state == nil || state?.isTerminal == true)
    }
}
