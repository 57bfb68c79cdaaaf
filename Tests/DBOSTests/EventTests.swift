import DBOS
import DBOSTestSupport
import Foundation
import Testing

/// `setEvent` and `getEvent`: reading from outside, waiting for a later value, overwrites, timeouts,
/// and the checkpoint that makes a workflow's `getEvent` replay the value it first read.
@Suite struct EventTests {
    @Test(arguments: Backend.allCases) func anEventSetByAWorkflowIsReadFromOutside(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register("publisher") { (ctx: WorkflowContext, value: String) -> String in
                try await ctx.setEvent(key: "status", value: value)
                return "done"
            }
        } test: { runtime, publisher in
            _ = try await runtime.runWorkflow(publisher, input: "ready", options: WorkflowOptions(workflowID: "publisher-1"))
            let value = try await runtime.getEvent(workflowID: "publisher-1", key: "status", as: String.self, timeout: .seconds(1))
            #expect(value == "ready")
            let steps = try await runtime.listSteps(workflowID: "publisher-1")
            #expect(steps.map(\.name) == ["DBOS.setEvent"])
        }
    }

    @Test(arguments: Backend.allCases) func eventsAndStreamValuesWrittenInAStepBelongToThatStep(backend: Backend) async throws {
        let bodyRuns = Counter()
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register("reporter") { (ctx: WorkflowContext, _: String) -> String in
                try await ctx.runStep("work") {
                    bodyRuns.increment()
                    try await ctx.setEvent(key: "progress", value: 50)
                    try await ctx.writeStream(key: "log", value: "halfway")
                }
                try await ctx.setEvent(key: "progress", value: 100)
                try await ctx.closeStream(key: "log")
                return "done"
            }
        } test: { runtime, reporter in
            _ = try await runtime.runWorkflow(reporter, input: "", options: WorkflowOptions(workflowID: "reporter-1"))
            // Written as part of step 0: no slot of their own, so the workflow's own operations keep theirs.
            let steps = try await runtime.listSteps(workflowID: "reporter-1")
            #expect(steps.map(\.name) == ["work", "DBOS.setEvent", "DBOS.closeStream"])
            #expect(steps.map(\.functionID) == [0, 1, 2])
            #expect(try await runtime.getEvent(workflowID: "reporter-1", key: "progress", as: Int.self, timeout: .zero) == 100)
            var logged: [String] = []
            for try await value in runtime.readStream(workflowID: "reporter-1", key: "log", as: String.self) { logged.append(value) }
            #expect(logged == ["halfway"])

            // A fork after the step keeps what the step wrote, without running its body again.
            let fork = try await runtime.forkWorkflow(id: "reporter-1", fromStep: 1, newWorkflowID: "reporter-fork", as: String.self)
            _ = try await fork.result()
            #expect(bodyRuns.count == 1)
            logged = []
            for try await value in runtime.readStream(workflowID: "reporter-fork", key: "log", as: String.self) { logged.append(value) }
            #expect(logged == ["halfway"])
        }
    }

    @Test(arguments: Backend.allCases) func getEventWaitsForAnEventSetLater(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register("late-publisher") { (ctx: WorkflowContext, _: String) -> String in
                _ = try await ctx.recv(String.self, topic: "go", timeout: .seconds(30))
                try await ctx.setEvent(key: "status", value: "late")
                return "done"
            }
        } test: { runtime, publisher in
            let handle = try await runtime.startWorkflow(publisher, input: "", options: WorkflowOptions(workflowID: "late-1"))
            let clock = ContinuousClock()
            let start = clock.now
            async let waited = runtime.getEvent(workflowID: "late-1", key: "status", as: String.self, timeout: .seconds(30))
            try await Task.sleep(for: .milliseconds(300))
            try await runtime.send(to: "late-1", topic: "go", message: "go")
            #expect(try await waited == "late")
            #expect(clock.now - start < .seconds(10), "getEvent should return soon after setEvent, not at its 30 s timeout")
            #expect(try await handle.result() == "done")
        }
    }

    @Test(arguments: Backend.allCases) func getEventInsideAWorkflowWakesPromptlyWhenTheEventIsSet(backend: Backend) async throws {
        // A polling interval longer than the test: only the local wake-up can end the wait in time.
        try await withLaunchedRuntime(backend, pollingInterval: .seconds(60)) { runtime in
            let publisher = try runtime.register("gated-publisher") { (ctx: WorkflowContext, _: String) -> String in
                _ = try await ctx.recv(String.self, topic: "go", timeout: .seconds(30))
                try await ctx.setEvent(key: "answer", value: 42)
                return "done"
            }
            let waiter = try runtime.register("waiter") { (ctx: WorkflowContext, publisherID: String) -> Int? in
                try await ctx.getEvent(workflowID: publisherID, key: "answer", as: Int.self, timeout: .seconds(30))
            }
            return (publisher, waiter)
        } test: { runtime, workflows in
            let (publisher, waiter) = workflows
            _ = try await runtime.startWorkflow(publisher, input: "", options: WorkflowOptions(workflowID: "gated-1"))
            let waiting = try await runtime.startWorkflow(waiter, input: "gated-1", options: WorkflowOptions(workflowID: "waiter-1"))
            // The waiter's DBOS.sleep slot (its durable deadline) is written before it waits.
            try await waitForSteps(of: "waiter-1", atLeast: 1, in: runtime)
            let clock = ContinuousClock()
            let sentAt = clock.now
            try await runtime.send(to: "gated-1", topic: "go", message: "go")
            #expect(try await waiting.result() == 42)
            #expect(clock.now - sentAt < .seconds(10), "getEvent should wake on setEvent, not at its 30 s timeout")
        }
    }

    @Test(arguments: Backend.allCases) func anEventSetInAnotherRuntimeOnTheSameDatabaseIsSeenByAWaitingGetEvent(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let url = setup.url
        try await withLaunchedRuntime(url: url) { runtime in
            try runtime.register("remote-publisher") { (ctx: WorkflowContext, _: String) -> String in
                _ = try await ctx.recv(String.self, topic: "go", timeout: .seconds(30))
                try await ctx.setEvent(key: "status", value: "published elsewhere")
                return "done"
            }
        } test: { runtime, publisher in
            let handle = try await runtime.startWorkflow(publisher, input: "", options: WorkflowOptions(workflowID: "remote-publisher-1"))
            // Another process reading the same database: only polling (or, on PostgreSQL, a notification) can
            // tell it the event was set.
            let other = try await DBOSRuntime(configuration: DBOSConfiguration(
                systemDatabaseURL: url, executorID: "other-process", applicationVersion: "test",
                recoversPendingWorkflows: false, pollingInterval: .milliseconds(100)))
            let clock = ContinuousClock()
            let start = clock.now
            let value: String?
            do {
                async let waited = other.getEvent(
                    workflowID: "remote-publisher-1", key: "status", as: String.self, timeout: .seconds(30))
                try await Task.sleep(for: .milliseconds(300))
                try await runtime.send(to: "remote-publisher-1", topic: "go", message: "go")
                value = try await waited
            } catch {
                await other.shutdown(gracePeriod: .zero)
                throw error
            }
            await other.shutdown(gracePeriod: .zero)
            #expect(value == "published elsewhere")
            #expect(clock.now - start < .seconds(10), "polling should see the event long before the 30 s timeout")
            #expect(try await handle.result() == "done")
        }
    }

    @Test(arguments: Backend.allCases) func eventKeysAndValuesWithQuotesUnicodeAndNULCharactersRoundTrip(backend: Backend) async throws {
        let awkwardKey = "key 'with' \"quotes\"; DROP TABLE workflow_events; --\u{0}é🎉"
        // PostgreSQL text cannot hold a NUL character, so there the key goes without one (values are
        // JSON, where a NUL is escaped, so they keep theirs).
        let key = backend == .sqlite ? awkwardKey : awkwardKey.replacingOccurrences(of: "\u{0}", with: "")
        let value = ["O'Reilly \\ \"x\"", "\u{0}", "中文 👩‍👩‍👧‍👦", ""]
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register("awkward-publisher") { (ctx: WorkflowContext, key: String) -> String in
                try await ctx.setEvent(key: key, value: value)
                let withoutNUL = key.replacingOccurrences(of: "\u{0}", with: "")
                if withoutNUL != key {
                    try await ctx.setEvent(key: withoutNUL, value: ["decoy"])
                }
                return "done"
            }
        } test: { runtime, publisher in
            if backend == .postgres {
                // A key with a NUL is refused with a clear error that fails the run.
                await #expect {
                    try await runtime.runWorkflow(publisher, input: awkwardKey, options: WorkflowOptions(workflowID: "awkward-nul"))
                } throws: { error in "\(error)".contains("NUL character") }
            }
            _ = try await runtime.runWorkflow(publisher, input: key, options: WorkflowOptions(workflowID: "awkward-'1'"))
            let read = try await runtime.getEvent(workflowID: "awkward-'1'", key: key, as: [String].self, timeout: .seconds(1))
            #expect(read == value)
        }
    }

    @Test(arguments: Backend.allCases) func overwritingAnEventKeepsTheLatestValue(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register("counter") { (ctx: WorkflowContext, _: String) -> String in
                for value in 1...3 {
                    try await ctx.setEvent(key: "count", value: value)
                }
                return "done"
            }
        } test: { runtime, counter in
            _ = try await runtime.runWorkflow(counter, input: "", options: WorkflowOptions(workflowID: "counter-1"))
            let value = try await runtime.getEvent(workflowID: "counter-1", key: "count", as: Int.self, timeout: .seconds(1))
            #expect(value == 3)
            let steps = try await runtime.listSteps(workflowID: "counter-1")
            #expect(steps.map(\.name) == ["DBOS.setEvent", "DBOS.setEvent", "DBOS.setEvent"])
            #expect(steps.map(\.functionID) == [0, 1, 2])
        }
    }

    @Test(arguments: Backend.allCases) func getEventTimesOutReturningNil(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register("silent") { (_: WorkflowContext, _: String) -> String in "done" }
        } test: { runtime, silent in
            _ = try await runtime.runWorkflow(silent, input: "", options: WorkflowOptions(workflowID: "silent-1"))
            let clock = ContinuousClock()
            let start = clock.now
            let value = try await runtime.getEvent(workflowID: "silent-1", key: "never", as: String.self, timeout: .seconds(1))
            let elapsed = clock.now - start
            #expect(value == nil)
            #expect(elapsed >= .milliseconds(900), "getEvent returned before its timeout")
            #expect(elapsed < .seconds(10), "getEvent kept waiting long past its 1 s timeout")
        }
    }

    @Test(arguments: Backend.allCases) func getEventInsideAWorkflowTimesOutReturningNil(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register("impatient") { (ctx: WorkflowContext, _: String) -> String? in
                try await ctx.getEvent(workflowID: ctx.workflowID, key: "never", as: String.self, timeout: .milliseconds(500))
            }
        } test: { runtime, impatient in
            let value = try await runtime.runWorkflow(impatient, input: "", options: WorkflowOptions(workflowID: "impatient-1"))
            #expect(value == nil)
            let steps = try await runtime.listSteps(workflowID: "impatient-1")
            #expect(steps.map(\.name) == ["DBOS.getEvent", "DBOS.sleep"])
            #expect(steps.first?.output == .null)
        }
    }

    @Test(arguments: Backend.allCases) func getEventInsideAWorkflowIsCheckpointedAndReplaysTheValueFirstRead(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let url = setup.url

        /// The producer publishes "first", waits, then overwrites with "second". The consumer reads the
        /// event, then waits; after a restart its replayed getEvent must still see "first".
        func registerWorkflows(_ runtime: DBOSRuntime) throws -> (Workflow<String, String>, Workflow<String, String>) {
            let producer = try runtime.register("producer") { (ctx: WorkflowContext, _: String) -> String in
                try await ctx.setEvent(key: "phase", value: "first")
                _ = try await ctx.recv(String.self, topic: "go", timeout: .seconds(60))
                try await ctx.setEvent(key: "phase", value: "second")
                return "produced"
            }
            let consumer = try runtime.register("consumer") { (ctx: WorkflowContext, producerID: String) -> String in
                let seen = try await ctx.getEvent(workflowID: producerID, key: "phase", as: String.self, timeout: .seconds(10))
                _ = try await ctx.recv(String.self, topic: "continue", timeout: .seconds(60))
                return seen ?? "nothing"
            }
            return (producer, consumer)
        }

        // First process: the consumer reads "first" and is stopped while waiting.
        try await withLaunchedRuntime(url: url, register: registerWorkflows) { runtime, workflows in
            let (producer, consumer) = workflows
            _ = try await runtime.startWorkflow(producer, input: "", options: WorkflowOptions(workflowID: "producer-1"))
            _ = try await runtime.startWorkflow(consumer, input: "producer-1", options: WorkflowOptions(workflowID: "consumer-1"))
            // getEvent (0), its sleep (1), recv's sleep (3): the consumer is waiting in recv.
            try await waitForSteps(of: "consumer-1", atLeast: 3, in: runtime)
        }
        // The first runtime shut down with both runs still PENDING.
        // Second process: recovery replays the consumer from its checkpoints.
        try await withLaunchedRuntime(url: url, register: registerWorkflows) { runtime, _ in
            let producer = runtime.retrieveWorkflow(id: "producer-1", as: String.self)
            let consumer = runtime.retrieveWorkflow(id: "consumer-1", as: String.self)
            #expect(try await consumer.status().state == .pending)
            try await runtime.send(to: "producer-1", topic: "go", message: "go")
            #expect(try await producer.result() == "produced")
            #expect(try await runtime.getEvent(workflowID: "producer-1", key: "phase", as: String.self, timeout: .seconds(1)) == "second")

            try await runtime.send(to: "consumer-1", topic: "continue", message: "continue")
            #expect(try await consumer.result() == "first", "a replayed getEvent must return the checkpointed value")

            let steps = try await runtime.listSteps(workflowID: "consumer-1")
            #expect(steps.map(\.functionID) == [0, 1, 2, 3])
            #expect(steps.map(\.name) == ["DBOS.getEvent", "DBOS.sleep", "DBOS.recv", "DBOS.sleep"])
            #expect(steps.first?.output == .string("first"))
            #expect(try await consumer.status().recoveryAttempts == 2)
        }
    }
}
