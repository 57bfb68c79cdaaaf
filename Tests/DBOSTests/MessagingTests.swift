import DBOS
import DBOSTestSupport
import Foundation
import Testing

/// `send` and `recv`: prompt wake-ups, FIFO and exactly-once delivery, timeouts, idempotency keys,
/// awkward characters, and messages written by another process on the same database; on both backends.
@Suite struct MessagingTests {
    @Test(arguments: Backend.allCases) func sendFromOutsideWakesAWorkflowWaitingInRecvPromptly(backend: Backend) async throws {
        // A polling interval longer than the test: only the local wake-up can end the wait in time.
        try await withLaunchedRuntime(backend, pollingInterval: .seconds(60)) { runtime in
            try runtime.register("listener") { (ctx: WorkflowContext, _: String) -> String? in
                try await ctx.recv(String.self, topic: "greeting", timeout: .seconds(30))
            }
        } test: { runtime, listener in
            let handle = try await runtime.startWorkflow(listener, input: "", options: WorkflowOptions(workflowID: "listener-1"))
            // recv takes slots 0 (DBOS.recv) and 1 (DBOS.sleep); the sleep slot holds its deadline and is written
            // before it waits, so once it is there the workflow is waiting.
            try await waitForSteps(of: "listener-1", atLeast: 1, in: runtime)
            let clock = ContinuousClock()
            let sentAt = clock.now
            try await runtime.send(to: "listener-1", topic: "greeting", message: "hello")
            let received = try await handle.result()
            #expect(received == "hello")
            #expect(clock.now - sentAt < .seconds(10), "recv should wake on the send, not at its 30 s timeout")
        }
    }

    @Test(arguments: Backend.allCases) func messagesOnOneTopicAreConsumedInOrderAndExactlyOnce(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register("collector") { (ctx: WorkflowContext, count: Int) -> [String?] in
                var received: [String?] = []
                for _ in 0..<count {
                    received.append(try await ctx.recv(String.self, topic: "numbers", timeout: .seconds(30)))
                }
                // One more: every message was consumed, so nothing is left to receive twice.
                received.append(try await ctx.recv(String.self, topic: "numbers", timeout: .milliseconds(500)))
                return received
            }
        } test: { runtime, collector in
            let handle = try await runtime.startWorkflow(collector, input: 5, options: WorkflowOptions(workflowID: "collector-1"))
            for index in 0..<5 {
                try await runtime.send(to: "collector-1", topic: "numbers", message: "m\(index)")
            }
            try await runtime.send(to: "collector-1", topic: "other", message: "not for the numbers topic")
            let received = try await handle.result()
            #expect(received == ["m0", "m1", "m2", "m3", "m4", nil])

            let steps = try await runtime.listSteps(workflowID: "collector-1")
            let receives = steps.filter { $0.name == "DBOS.recv" }
            let expected: [JSONValue?] = [.string("m0"), .string("m1"), .string("m2"), .string("m3"), .string("m4"), .null]
            #expect(receives.map(\.output) == expected)
            #expect(steps.map(\.functionID) == Array(0..<12), "each recv takes a recv slot and a sleep slot")
        }
    }

    @Test(arguments: Backend.allCases) func recvTimesOutCleanlyReturningNil(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register("patient") { (ctx: WorkflowContext, _: String) -> String? in
                try await ctx.recv(String.self, topic: "never", timeout: .seconds(1))
            }
        } test: { runtime, patient in
            let clock = ContinuousClock()
            let start = clock.now
            let received = try await runtime.runWorkflow(patient, input: "", options: WorkflowOptions(workflowID: "patient-1"))
            let elapsed = clock.now - start
            #expect(received == nil)
            #expect(elapsed >= .milliseconds(900), "recv returned before its timeout")
            #expect(elapsed < .seconds(10), "recv kept waiting long past its 1 s timeout")
            let status = try await runtime.workflowStatus(id: "patient-1")
            #expect(status?.state == .success)
            let steps = try await runtime.listSteps(workflowID: "patient-1")
            #expect(steps.map(\.name) == ["DBOS.recv", "DBOS.sleep"])
            #expect(steps.first?.output == .null)
        }
    }

    @Test(arguments: Backend.allCases) func aWorkflowSendsAMessageToAnotherWorkflow(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            let receiver = try runtime.register("receiver") { (ctx: WorkflowContext, _: String) -> String? in
                try await ctx.recv(String.self, topic: "ping", timeout: .seconds(30))
            }
            let sender = try runtime.register("sender") { (ctx: WorkflowContext, destination: String) -> String in
                try await ctx.send(to: destination, topic: "ping", message: "ping from \(ctx.workflowID)")
                return "sent"
            }
            return (receiver, sender)
        } test: { runtime, workflows in
            let (receiver, sender) = workflows
            let receiving = try await runtime.startWorkflow(receiver, input: "", options: WorkflowOptions(workflowID: "receiver-1"))
            let sent = try await runtime.runWorkflow(sender, input: "receiver-1", options: WorkflowOptions(workflowID: "sender-1"))
            #expect(sent == "sent")
            #expect(try await receiving.result() == "ping from sender-1")
            let senderSteps = try await runtime.listSteps(workflowID: "sender-1")
            #expect(senderSteps.map(\.name) == ["DBOS.send"])
        }
    }

    @Test(arguments: Backend.allCases) func aWorkflowsSendIsNotRepeatedWhenTheWorkflowIsRecovered(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let url = setup.url

        func register(_ runtime: DBOSRuntime) throws -> (Workflow<String, [String?]>, Workflow<String, String>) {
            let receiver = try runtime.register("counting-receiver") { (ctx: WorkflowContext, _: String) -> [String?] in
                _ = try await ctx.recv(String.self, topic: "go", timeout: .seconds(60))
                let first = try await ctx.recv(String.self, topic: "data", timeout: .seconds(5))
                let second = try await ctx.recv(String.self, topic: "data", timeout: .milliseconds(500))
                return [first, second]
            }
            let sender = try runtime.register("recovering-sender") { (ctx: WorkflowContext, destination: String) -> String in
                try await ctx.send(to: destination, topic: "data", message: "exactly once")
                _ = try await ctx.recv(String.self, topic: "go", timeout: .seconds(60))
                return "sent"
            }
            return (receiver, sender)
        }

        try await withLaunchedRuntime(url: url, register: register) { runtime, workflows in
            let (receiver, sender) = workflows
            _ = try await runtime.startWorkflow(receiver, input: "", options: WorkflowOptions(workflowID: "counting-1"))
            _ = try await runtime.startWorkflow(sender, input: "counting-1", options: WorkflowOptions(workflowID: "sender-1"))
            // DBOS.send (0), then recv's sleep (2): the message is out and the sender waits.
            try await waitForSteps(of: "sender-1", atLeast: 2, in: runtime)
        }
        // A new process recovers the sender, which replays its send from the checkpoint.
        try await withLaunchedRuntime(url: url, register: register) { runtime, _ in
            try await runtime.send(to: "sender-1", topic: "go", message: "go")
            #expect(try await runtime.retrieveWorkflow(id: "sender-1", as: String.self).result() == "sent")
            try await runtime.send(to: "counting-1", topic: "go", message: "go")
            let received = try await runtime.retrieveWorkflow(id: "counting-1", as: [String?].self).result()
            #expect(received == ["exactly once", nil])
            let senderSteps = try await runtime.listSteps(workflowID: "sender-1").map(\.name)
            #expect(senderSteps == ["DBOS.send", "DBOS.recv", "DBOS.sleep"])
        }
    }

    @Test(arguments: Backend.allCases) func aMessageSentWhileTheReceiversProcessIsDownIsReceivedAfterRecovery(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let url = setup.url
        func register(_ runtime: DBOSRuntime) throws -> Workflow<String, String?> {
            try runtime.register("offline-listener") { (ctx: WorkflowContext, _: String) -> String? in
                try await ctx.recv(String.self, topic: "mail", timeout: .seconds(60))
            }
        }

        try await withLaunchedRuntime(url: url, register: register) { runtime, listener in
            _ = try await runtime.startWorkflow(listener, input: "", options: WorkflowOptions(workflowID: "offline-1"))
            try await waitForSteps(of: "offline-1", atLeast: 1, in: runtime)
        }
        // A client process that runs no workflows sends while the listener's process is down.
        let client = try await DBOSRuntime(configuration: DBOSConfiguration(
            systemDatabaseURL: url, executorID: "client", applicationVersion: "test", recoversPendingWorkflows: false))
        do {
            try await client.send(to: "offline-1", topic: "mail", message: "left while you were out")
        } catch {
            await client.shutdown(gracePeriod: .zero)
            throw error
        }
        await client.shutdown(gracePeriod: .zero)

        try await withLaunchedRuntime(url: url, register: register) { runtime, _ in
            let received = try await runtime.retrieveWorkflow(id: "offline-1", as: String?.self).result()
            #expect(received == "left while you were out")
        }
    }

    @Test(arguments: Backend.allCases) func aRecvTimeoutIsDurableAcrossARestart(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let url = setup.url
        func register(_ runtime: DBOSRuntime) throws -> Workflow<String, String?> {
            try runtime.register("durable-timeout") { (ctx: WorkflowContext, _: String) -> String? in
                try await ctx.recv(String.self, topic: "never", timeout: .seconds(6))
            }
        }

        try await withLaunchedRuntime(url: url, register: register) { runtime, workflow in
            _ = try await runtime.startWorkflow(workflow, input: "", options: WorkflowOptions(workflowID: "durable-timeout-1"))
            try await waitForSteps(of: "durable-timeout-1", atLeast: 1, in: runtime)
        }
        // Down for longer than the whole timeout.
        try await Task.sleep(for: .milliseconds(6_200))
        try await withLaunchedRuntime(url: url, register: register) { runtime, _ in
            let clock = ContinuousClock()
            let start = clock.now
            let received = try await runtime.retrieveWorkflow(id: "durable-timeout-1", as: String?.self).result()
            #expect(received == nil)
            #expect(clock.now - start < .seconds(4), "the recorded deadline has passed: recv must not wait a fresh 6 s")
        }
    }

    @Test(arguments: Backend.allCases) func anIdempotencyKeyMakesARepeatedOutsideSendDeliverOnce(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register("deduplicated") { (ctx: WorkflowContext, _: String) -> [String?] in
                // Wait for the go-ahead first, so every copy of the keyed message is sent before the first recv.
                _ = try await ctx.recv(String.self, topic: "go", timeout: .seconds(30))
                let first = try await ctx.recv(String.self, topic: "data", timeout: .seconds(5))
                let second = try await ctx.recv(String.self, topic: "data", timeout: .milliseconds(500))
                return [first, second]
            }
        } test: { runtime, workflow in
            let handle = try await runtime.startWorkflow(workflow, input: "", options: WorkflowOptions(workflowID: "dedup-1"))
            for _ in 0..<3 {
                try await runtime.send(to: "dedup-1", topic: "data", message: "once", idempotencyKey: "payment-42")
            }
            try await runtime.send(to: "dedup-1", topic: "go", message: "go")
            #expect(try await handle.result() == ["once", nil])
        }
    }

    @Test(arguments: Backend.allCases) func sendingToANonexistentWorkflowThrows(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register("forwarder") { (ctx: WorkflowContext, destination: String) -> String in
                try await ctx.send(to: destination, message: "lost")
                return "sent"
            }
        } test: { runtime, forwarder in
            await #expect(throws: WorkflowError.nonexistentWorkflow("no-such-workflow")) {
                try await runtime.send(to: "no-such-workflow", topic: "t", message: "hello")
            }
            await #expect(throws: WorkflowError.nonexistentWorkflow("no-such-workflow")) {
                try await runtime.send(to: "no-such-workflow", message: "hello", idempotencyKey: "key")
            }
            // From inside a workflow the same error ends the run, and no DBOS.send checkpoint is left behind.
            let handle = try await runtime.startWorkflow(
                forwarder, input: "no-such-workflow", options: WorkflowOptions(workflowID: "forwarder-1"))
            await #expect(throws: (any Error).self) { try await handle.result() }
            let status = try await runtime.workflowStatus(id: "forwarder-1")
            #expect(status?.state == .error)
            #expect(status?.error?.name == "NonExistentWorkflow")
            #expect(try await runtime.listSteps(workflowID: "forwarder-1").isEmpty)
        }
    }

    @Test(arguments: Backend.allCases) func topicsAndPayloadsWithQuotesSQLUnicodeAndNULCharactersRoundTrip(backend: Backend) async throws {
        let awkwardTopic = "it's \"quoted\"; DROP TABLE notifications; -- \\ % _ \u{0} é 🎉 中文"
        // PostgreSQL text cannot hold a NUL character, so there the topic goes without one (payloads
        // are JSON, where a NUL is escaped, so they keep theirs).
        let topic = backend == .sqlite ? awkwardTopic : awkwardTopic.replacingOccurrences(of: "\u{0}", with: "")
        let payload = MessagingPayload(
            text: "O'Reilly \"says\" \\n'); DELETE FROM workflow_status; --\u{0}after NUL\u{1}\u{7F}",
            lines: ["ünïcödé", "👩‍👩‍👧‍👦", "\n\t\r", "", "\u{0}\u{0}", "%_*?[]"])
        let workflowID = "wf-'quote'-\"double\"-ü-🎉"
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register("echo") { (ctx: WorkflowContext, topic: String) -> MessagingPayload? in
                try await ctx.recv(MessagingPayload.self, topic: topic, timeout: .seconds(30))
            }
        } test: { runtime, echo in
            let handle = try await runtime.startWorkflow(echo, input: topic, options: WorkflowOptions(workflowID: workflowID))
            switch backend {
            case .sqlite:
                // The same topic without its NUL must not match: topics are compared in full.
                try await runtime.send(to: workflowID, topic: topic.replacingOccurrences(of: "\u{0}", with: ""), message: MessagingPayload(text: "decoy", lines: []))
            case .postgres:
                // A topic with a NUL is refused with a clear error before anything is sent.
                await #expect {
                    try await runtime.send(to: workflowID, topic: awkwardTopic, message: MessagingPayload(text: "decoy", lines: []))
                } throws: { error in "\(error)".contains("NUL character") }
            }
            try await runtime.send(to: workflowID, topic: topic, message: payload)
            let received = try await handle.result()
            #expect(received == payload)
            let status = try await runtime.workflowStatus(id: workflowID)
            #expect(status?.input == .string(topic))
        }
    }

    @Test(arguments: Backend.allCases) func aMessageSentByASecondRuntimeOnTheSameDatabaseIsReceived(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let url = setup.url
        try await withLaunchedRuntime(url: url, pollingInterval: .milliseconds(100)) { runtime in
            try runtime.register("remote-listener") { (ctx: WorkflowContext, _: String) -> String? in
                try await ctx.recv(String.self, topic: "cross-process", timeout: .seconds(30))
            }
        } test: { runtime, listener in
            let handle = try await runtime.startWorkflow(listener, input: "", options: WorkflowOptions(workflowID: "remote-1"))
            try await waitForSteps(of: "remote-1", atLeast: 1, in: runtime)
            // Another process: its own connection and wake-up registry, so only polling (or, on PostgreSQL, a
            // notification) can carry the message across.
            // It must not recover the first runtime's PENDING workflow, hence another executor and no recovery.
            let other = try await DBOSRuntime(configuration: DBOSConfiguration(
                systemDatabaseURL: url, executorID: "other-process", applicationVersion: "test",
                recoversPendingWorkflows: false))
            let clock = ContinuousClock()
            let sentAt = clock.now
            do {
                try await other.send(to: "remote-1", topic: "cross-process", message: "from afar")
            } catch {
                await other.shutdown(gracePeriod: .zero)
                throw error
            }
            await other.shutdown(gracePeriod: .zero)
            #expect(try await handle.result() == "from afar")
            #expect(clock.now - sentAt < .seconds(10), "polling should pick up the message long before the 30 s timeout")
        }
    }
}

/// A message with several awkward strings.
private struct MessagingPayload: Codable, Sendable, Equatable {
    var text: String
    var lines: [String]
}
