import DBOS
import DBOSTestSupport
import Foundation
import Synchronization
import Testing

/// Concurrent steps, step retries, child workflows and workflow timeouts, within one run and across restarts.
@Suite struct ConcurrentStepTests {
    // MARK: Concurrent steps

    @Test(arguments: Backend.allCases) func concurrentStepsTakeSlotsInCallOrderWhateverOrderTheyFinishIn(backend: Backend) async throws {
        let log = CompletionLog()
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register("fan-out") { (ctx: WorkflowContext, _: String) -> FanOutResult in
                // Each step waits for the one started after it, so they finish in reverse call order.
                let first = ctx.startStep("first") { () async throws -> String in
                    try await log.waitFor("second")
                    log.append("first")
                    return "one"
                }
                let second = ctx.startStep("second") { () async throws -> String in
                    try await log.waitFor("third")
                    log.append("second")
                    return "two"
                }
                let third = ctx.startStep("third") { () async throws -> String in
                    log.append("third")
                    return "three"
                }
                return FanOutResult(
                    values: [try await first.value, try await second.value, try await third.value],
                    functionIDs: [first.functionID, second.functionID, third.functionID])
            }
        } test: { runtime, fanOut in
            let output = try await runtime.runWorkflow(fanOut, input: "", options: WorkflowOptions(workflowID: "fan-out-1"))
            #expect(output.values == ["one", "two", "three"])
            #expect(output.functionIDs == [0, 1, 2], "slots are taken when startStep is called")
            #expect(log.entries == ["third", "second", "first"])
            let steps = try await runtime.listSteps(workflowID: "fan-out-1")
            #expect(steps.map(\.functionID) == [0, 1, 2])
            #expect(steps.map(\.name) == ["first", "second", "third"])
            #expect(steps.map(\.output) == [.string("one"), .string("two"), .string("three")])
        }
    }

    @Test(arguments: Backend.allCases) func aTimeoutInterruptsAConcurrentStepTheWorkflowIsAwaiting(backend: Backend) async throws {
        let finished = AttemptCounter()
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register("slow-fan-out") { (ctx: WorkflowContext, _: String) -> String in
                let slow = ctx.startStep("slow") { () async throws -> String in
                    try await Task.sleep(for: .seconds(10))
                    _ = finished.increment()
                    return "slow done"
                }
                return try await slow.value
            }
        } test: { runtime, workflow in
            let clock = ContinuousClock()
            let start = clock.now
            let handle = try await runtime.startWorkflow(
                workflow, input: "", options: WorkflowOptions(workflowID: "slow-fan-out-1", timeout: .milliseconds(300)))
            let error = await #expect(throws: WorkflowError.self) { _ = try await handle.result() }
            #expect(error?.isCancellation == true, "ended with \(String(describing: error))")
            #expect(clock.now - start < .seconds(5), "the timeout must reach a step started with startStep, as it reaches runStep")
            #expect(try await handle.status().state == .cancelled)
            #expect(finished.value == 0, "the step's body must be interrupted, not run to its end")
            #expect(try await runtime.listSteps(workflowID: "slow-fan-out-1").isEmpty, "an interrupted step is not checkpointed")
        }
    }

    @Test(arguments: Backend.allCases) func aCancelledWorkflowStopsTheConcurrentStepsItWasNotAwaiting(backend: Backend) async throws {
        let attempts = AttemptCounter()
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register("busy-fan-out") { (ctx: WorkflowContext, _: String) -> String in
                let retrying = ctx.startStep(
                    "keeps-retrying", retry: StepRetryPolicy(maxAttempts: 1_000, baseInterval: .milliseconds(20), backoffFactor: 1)
                ) { () async throws -> String in
                    let attempt = attempts.increment()
                    throw StepTestFailure(message: "attempt \(attempt) failed")
                }
                // The workflow is sleeping, not awaiting the step, when its timeout expires.
                try await ctx.sleep(for: .seconds(10))
                return try await retrying.value
            }
        } test: { runtime, workflow in
            let handle = try await runtime.startWorkflow(
                workflow, input: "", options: WorkflowOptions(workflowID: "busy-fan-out-1", timeout: .milliseconds(300)))
            let error = await #expect(throws: WorkflowError.self) { _ = try await handle.result() }
            #expect(error?.isCancellation == true, "ended with \(String(describing: error))")
            #expect(try await handle.status().state == .cancelled)
            // Give a still-running step time to show itself: at 20 ms per attempt it would add many more.
            try await Task.sleep(for: .milliseconds(200))
            let afterCancel = attempts.value
            try await Task.sleep(for: .milliseconds(500))
            #expect(attempts.value == afterCancel, "the step kept retrying after its workflow was cancelled")
            #expect(try await runtime.listSteps(workflowID: "busy-fan-out-1").map(\.name) == ["DBOS.sleep"])
        }
    }

    // MARK: Retries

    @Test(arguments: Backend.allCases) func aStepThatKeepsFailingRecordsMaxStepRetriesExceededAfterItsLastAttempt(backend: Backend) async throws {
        let attempts = AttemptCounter()
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register("doomed") { (ctx: WorkflowContext, _: String) -> String in
                try await ctx.runStep("flaky", retry: StepRetryPolicy(maxAttempts: 4, baseInterval: .milliseconds(10))) {
                    () async throws -> String in
                    let attempt = attempts.increment()
                    throw StepTestFailure(message: "attempt \(attempt) failed")
                }
            }
        } test: { runtime, doomed in
            let handle = try await runtime.startWorkflow(doomed, input: "", options: WorkflowOptions(workflowID: "doomed-1"))
            let error = await #expect(throws: WorkflowError.self) { _ = try await handle.result() }
            switch error {
            case .maxStepRetriesExceeded(let step, let count, let lastError)?:
                #expect(step == "flaky")
                #expect(count == 4)
                #expect(lastError.contains("attempt 4 failed"))
            case .failed(_, let stored)?:
                #expect(stored.name == "MaxStepRetriesExceeded")
            default:
                Issue.record("expected maxStepRetriesExceeded, got \(String(describing: error))")
            }
            #expect(attempts.value == 4)
            let steps = try await runtime.listSteps(workflowID: "doomed-1")
            #expect(steps.count == 1)
            #expect(steps.first?.name == "flaky")
            #expect(steps.first?.error?.name == "MaxStepRetriesExceeded")
            #expect(steps.first?.error?.message.contains("4 attempts") == true)
            #expect(try await handle.status().state == .error)
        }
    }

    @Test(arguments: Backend.allCases) func aStepBodySeesItsOwnSlotAsItsStepID(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register("ids") { (ctx: WorkflowContext, _: String) -> [Int?] in
                let outside = ctx.stepID
                try await ctx.sleep(for: .zero)
                let first = try await ctx.runStep("first") { ctx.stepID }
                let (outer, nested) = try await ctx.runStep("outer") { () async throws -> Pair in
                    Pair(outer: ctx.stepID, nested: try await ctx.runStep("nested") { ctx.stepID })
                }.values
                let concurrent = try await ctx.startStep("concurrent") { ctx.stepID }.value
                return [outside, first, outer, nested, concurrent]
            }
        } test: { runtime, ids in
            let seen = try await runtime.runWorkflow(ids, input: "", options: WorkflowOptions(workflowID: "ids-1"))
            #expect(seen == [nil, 1, 2, 2, 3])
        }
    }

    @Test(arguments: Backend.allCases) func aStepRetriesOnlyTheErrorsItsPolicyAccepts(backend: Backend) async throws {
        let attempts = AttemptCounter()
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register("picky") { (ctx: WorkflowContext, _: String) -> String in
                let policy = StepRetryPolicy(maxAttempts: 5, baseInterval: .milliseconds(1)) { error in
                    (error as? StepTestFailure)?.message != "permanent"
                }
                return try await ctx.runStep("call", retry: policy) { () async throws -> String in
                    // Attempt 1 fails in a way worth retrying, attempt 2 in a way that is not.
                    let attempt = attempts.increment()
                    throw StepTestFailure(message: attempt == 1 ? "transient" : "permanent")
                }
            }
        } test: { runtime, picky in
            let handle = try await runtime.startWorkflow(picky, input: "", options: WorkflowOptions(workflowID: "picky-1"))
            await #expect(throws: (any Error).self) { _ = try await handle.result() }
            #expect(attempts.value == 2, "the refused error ends the step with attempts left")
            let step = try #require(try await runtime.listSteps(workflowID: "picky-1").first)
            #expect(step.error?.message == "permanent", "the step fails with that error, not MaxStepRetriesExceeded")
        }
    }

    @Test(arguments: Backend.allCases) func aStepThatSucceedsOnItsThirdAttemptRecordsItsOutputOnce(backend: Backend) async throws {
        let attempts = AttemptCounter()
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register("persistent") { (ctx: WorkflowContext, _: String) -> String in
                let value = try await ctx.runStep("flaky", retry: StepRetryPolicy(maxAttempts: 5, baseInterval: .milliseconds(10))) {
                    () async throws -> String in
                    let attempt = attempts.increment()
                    guard attempt >= 3 else { throw StepTestFailure(message: "attempt \(attempt) failed") }
                    return "succeeded on attempt \(attempt)"
                }
                let after = try await ctx.runStep("after") { "after" }
                return "\(value), \(after)"
            }
        } test: { runtime, persistent in
            let output = try await runtime.runWorkflow(persistent, input: "", options: WorkflowOptions(workflowID: "persistent-1"))
            #expect(output == "succeeded on attempt 3, after")
            #expect(attempts.value == 3)
            let steps = try await runtime.listSteps(workflowID: "persistent-1")
            #expect(steps.map(\.functionID) == [0, 1])
            #expect(steps.map(\.name) == ["flaky", "after"])
            #expect(steps.first?.output == .string("succeeded on attempt 3"))
            #expect(steps.first?.error == nil)
        }
    }

    // MARK: Child workflows

    @Test(arguments: Backend.allCases) func aChildWorkflowIsIdentifiedByItsParentAndSlot(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            let child = try runtime.register("child") { (ctx: WorkflowContext, input: String) -> String in
                try await ctx.runStep("shout") { input.uppercased() }
            }
            let parent = try runtime.register("parent") { (ctx: WorkflowContext, input: String) -> String in
                let prefix = try await ctx.runStep("before") { "got" }
                let handle = try await ctx.startChildWorkflow(child, input: input)
                #expect(handle.workflowID == "\(ctx.workflowID)-1")
                let second = try await ctx.runChildWorkflow(child, input: "again")
                return "\(prefix) \(try await handle.result()) \(second)"
            }
            return parent
        } test: { runtime, parent in
            let output = try await runtime.runWorkflow(parent, input: "hello", options: WorkflowOptions(workflowID: "parent-1"))
            #expect(output == "got HELLO AGAIN")

            let steps = try await runtime.listSteps(workflowID: "parent-1")
            #expect(steps.map(\.functionID) == [0, 1, 2])
            #expect(steps.map(\.name) == ["before", "child", "child"])
            #expect(steps.map(\.childWorkflowID) == [nil, "parent-1-1", "parent-1-2"])

            let child = try await runtime.workflowStatus(id: "parent-1-1")
            #expect(child?.parentWorkflowID == "parent-1")
            #expect(child?.name == "child")
            #expect(child?.state == .success)
            #expect(child?.output == .string("HELLO"))
            let children = try await runtime.listWorkflows(WorkflowFilter(parentWorkflowID: "parent-1", newestFirst: false))
            #expect(children.map(\.workflowID) == ["parent-1-1", "parent-1-2"])
            #expect(try await runtime.workflowStatus(id: "parent-1")?.parentWorkflowID == nil)
        }
    }

    // MARK: Timeouts

    @Test(arguments: Backend.allCases) func aWorkflowPastItsTimeoutIsCancelledWithItsChild(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            let child = try runtime.register("sleepy-child") { (ctx: WorkflowContext, _: String) -> String in
                try await ctx.sleep(for: .seconds(10))
                return "child woke"
            }
            let parent = try runtime.register("sleepy-parent") { (ctx: WorkflowContext, _: String) -> String in
                _ = try await ctx.startChildWorkflow(child, input: "")
                try await ctx.sleep(for: .seconds(10))
                return "parent woke"
            }
            return parent
        } test: { runtime, parent in
            let clock = ContinuousClock()
            let start = clock.now
            let handle = try await runtime.startWorkflow(
                parent, input: "", options: WorkflowOptions(workflowID: "sleepy-1", timeout: .milliseconds(300)))
            let error = await #expect(throws: WorkflowError.self) { _ = try await handle.result() }
            if case .cancelled(let workflowID, _)? = error {
                #expect(workflowID == "sleepy-1")
            } else {
                Issue.record("expected WorkflowError.cancelled, got \(String(describing: error))")
            }
            #expect(clock.now - start < .seconds(5), "the timeout must interrupt the 10 s sleep")

            let status = try await handle.status()
            #expect(status.state == .cancelled)
            #expect(status.timeout == .milliseconds(300))

            let steps = try await runtime.listSteps(workflowID: "sleepy-1")
            #expect(steps.first?.childWorkflowID == "sleepy-1-0", "the child was started before the timeout")
            let child = runtime.retrieveWorkflow(id: "sleepy-1-0", as: String.self)
            let childError = await #expect(throws: WorkflowError.self) { _ = try await child.result() }
            #expect(childError?.isCancellation == true, "child ended with \(String(describing: childError))")
            #expect(try await child.status().state == .cancelled)
            #expect(clock.now - start < .seconds(5))
        }
    }

    @Test(arguments: Backend.allCases) func aTimeoutInterruptsRecvAndGetEventWaits(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            let receiver = try runtime.register("timed-receiver") { (ctx: WorkflowContext, _: String) -> String? in
                try await ctx.recv(String.self, topic: "never", timeout: .seconds(30))
            }
            let watcher = try runtime.register("timed-watcher") { (ctx: WorkflowContext, _: String) -> String? in
                try await ctx.getEvent(workflowID: ctx.workflowID, key: "never", as: String.self, timeout: .seconds(30))
            }
            return (receiver, watcher)
        } test: { runtime, workflows in
            let (receiver, watcher) = workflows
            let clock = ContinuousClock()
            let start = clock.now
            let receiving = try await runtime.startWorkflow(
                receiver, input: "", options: WorkflowOptions(workflowID: "timed-receiver-1", timeout: .milliseconds(300)))
            let watching = try await runtime.startWorkflow(
                watcher, input: "", options: WorkflowOptions(workflowID: "timed-watcher-1", timeout: .milliseconds(300)))
            for handle in [receiving, watching] {
                let error = await #expect(throws: WorkflowError.self) { _ = try await handle.result() }
                #expect(error?.isCancellation == true, "\(handle.workflowID) ended with \(String(describing: error))")
                #expect(try await handle.status().state == .cancelled)
            }
            #expect(clock.now - start < .seconds(5), "the timeouts must interrupt the 30 s waits")
            // Neither wait completed, so neither recorded its result slot.
            #expect(try await runtime.listSteps(workflowID: "timed-receiver-1").map(\.name) == ["DBOS.sleep"])
            #expect(try await runtime.listSteps(workflowID: "timed-watcher-1").map(\.name) == ["DBOS.sleep"])
        }
    }

    @Test(arguments: Backend.allCases) func aWorkflowThatFinishesWithinItsTimeoutSucceedsAndItsChildInheritsTheDeadline(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            let child = try runtime.register("quick-child") { (ctx: WorkflowContext, input: String) -> String in
                try await ctx.runStep("echo") { input }
            }
            return try runtime.register("quick-parent") { (ctx: WorkflowContext, input: String) -> String in
                // The child asks for a longer timeout than the parent has left: the parent's deadline wins.
                try await ctx.runChildWorkflow(child, input: input, options: WorkflowOptions(timeout: .seconds(3_600)))
            }
        } test: { runtime, parent in
            let handle = try await runtime.startWorkflow(
                parent, input: "in time", options: WorkflowOptions(workflowID: "quick-1", timeout: .seconds(60)))
            #expect(try await handle.result() == "in time")
            let status = try await handle.status()
            #expect(status.state == .success)
            #expect(status.timeout == .seconds(60))
            let deadline = try #require(status.deadline)
            #expect(abs(deadline.timeIntervalSince(status.createdAt) - 60) < 1)
            let child = try await runtime.workflowStatus(id: "quick-1-0")
            #expect(child?.state == .success)
            #expect(child?.deadline == deadline, "a child never outlives its parent's deadline")
        }
    }

    @Test(arguments: Backend.allCases) func aQueuedChildGetsWhatIsLeftOfItsParentsTimeoutEvenAfterTheParentEnds(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register(queue: WorkflowQueue(name: "children", workerConcurrency: 4))
            let child = try runtime.register("queued-sleeper") { (ctx: WorkflowContext, _: String) -> String in
                try await ctx.sleep(for: .seconds(60))
                return "outlived its parent's deadline"
            }
            let own = try runtime.register("queued-own-timeout") { (ctx: WorkflowContext, _: String) -> String in
                try await ctx.sleep(for: .seconds(60))
                return "outlived its own timeout"
            }
            return try runtime.register("enqueuing-parent") { (ctx: WorkflowContext, _: String) -> String in
                // Not awaited: the parent ends long before its deadline, the children go on.
                _ = try await ctx.startChildWorkflow(child, input: "", options: WorkflowOptions(queueName: "children"))
                _ = try await ctx.startChildWorkflow(
                    own, input: "", options: WorkflowOptions(timeout: .milliseconds(300), queueName: "children"))
                return "enqueued"
            }
        } test: { runtime, parent in
            let handle = try await runtime.startWorkflow(
                parent, input: "", options: WorkflowOptions(workflowID: "enqueuing-1", timeout: .seconds(2)))
            #expect(try await handle.result() == "enqueued")
            let inherited = try #require(try await runtime.workflowStatus(id: "enqueuing-1-0"))
            let inheritedTimeout = try #require(inherited.timeout, "a queued child inherits what is left of its parent's timeout")
            #expect(inheritedTimeout > .zero && inheritedTimeout <= .seconds(2))
            #expect(try await runtime.workflowStatus(id: "enqueuing-1-1")?.timeout == .milliseconds(300), "its own shorter timeout stays")
            for id in ["enqueuing-1-0", "enqueuing-1-1"] {
                let outcome = await resultWithin(.seconds(30)) { try await runtime.retrieveWorkflow(id: id).result() }
                switch outcome {
                case nil: Issue.record("\(id) was still running after 30 s: it did not time out")
                case .success(let value)?: Issue.record("\(id) should have timed out, got \(value)")
                case .failure?: #expect(try await runtime.workflowStatus(id: id)?.state == .cancelled)
                }
            }
        }
    }

    @Test(arguments: Backend.allCases) func aParentAwaitingAChildThatTimesOutFailsInsteadOfHanging(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            let child = try runtime.register("short-lived-child") { (ctx: WorkflowContext, _: String) -> String in
                try await ctx.sleep(for: .seconds(10))
                return "child woke"
            }
            return try runtime.register("awaiting-parent") { (ctx: WorkflowContext, _: String) -> String in
                try await ctx.runChildWorkflow(child, input: "", options: WorkflowOptions(timeout: .milliseconds(200)))
            }
        } test: { runtime, parent in
            let handle = try await runtime.startWorkflow(parent, input: "", options: WorkflowOptions(workflowID: "awaiting-1"))
            let outcome = await resultWithin(.seconds(10)) { try await handle.result() }
            switch outcome {
            case nil:
                Issue.record("the parent's result() did not return within 10 s: the parent was left PENDING")
            case .success(let value)?:
                Issue.record("the parent cannot succeed without its child's output, got \(value)")
            case .failure(let error)?:
                #expect("\(error)".contains("awaiting-1-0"), "the error names the cancelled child: \(error)")
            }
            let child = try await runtime.workflowStatus(id: "awaiting-1-0")
            #expect(child?.state == .cancelled)
            let status = try await handle.status()
            #expect(status.state == .error, "the parent failed: its awaited child was cancelled")
            #expect(status.error?.name == "WorkflowCancelled")
        }
    }

    @Test(arguments: Backend.allCases) func aTimeoutInterruptsAWaitForAnotherWorkflowsResult(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            let peer = try runtime.register("slow-peer") { (ctx: WorkflowContext, _: String) -> String in
                _ = try await ctx.recv(String.self, topic: "finish", timeout: .seconds(30))
                return "peer finished"
            }
            let awaiter = try runtime.register("impatient-awaiter") { (_: WorkflowContext, peerID: String) -> String in
                try await runtime.retrieveWorkflow(id: peerID, as: String.self).result()
            }
            return (peer, awaiter)
        } test: { runtime, workflows in
            let (peer, awaiter) = workflows
            let peerHandle = try await runtime.startWorkflow(peer, input: "", options: WorkflowOptions(workflowID: "peer-1"))
            let clock = ContinuousClock()
            let start = clock.now
            let handle = try await runtime.startWorkflow(
                awaiter, input: "peer-1", options: WorkflowOptions(workflowID: "awaiter-1", timeout: .milliseconds(300)))
            let outcome = await resultWithin(.seconds(10)) { try await handle.result() }
            if case .failure(let error as WorkflowError)? = outcome {
                #expect(error.isCancellation, "ended with \(error)")
            } else {
                Issue.record("expected the awaiter to be cancelled by its timeout, got \(String(describing: outcome))")
            }
            #expect(clock.now - start < .seconds(5), "the timeout must interrupt the wait for the peer's result")
            #expect(try await handle.status().state == .cancelled)
            #expect(try await peerHandle.status().state == .pending, "the peer is not a child: it runs on")
            try await runtime.send(to: "peer-1", topic: "finish", message: "finish")
            #expect(try await peerHandle.result() == "peer finished")
        }
    }

    @Test(arguments: Backend.allCases) func cancellingACallerEndsItsWaitForAResultButNotTheRun(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register("long-runner") { (ctx: WorkflowContext, _: String) -> String in
                _ = try await ctx.recv(String.self, topic: "finish", timeout: .seconds(30))
                return "finished"
            }
        } test: { runtime, workflow in
            let handle = try await runtime.startWorkflow(workflow, input: "", options: WorkflowOptions(workflowID: "long-1"))
            let clock = ContinuousClock()
            let start = clock.now
            let waiting = Task { try await handle.result() }
            try await Task.sleep(for: .milliseconds(200))
            waiting.cancel()
            let outcome = await resultWithin(.seconds(10)) { try await waiting.value }
            if case .failure(let error)? = outcome {
                #expect(error is CancellationError, "ended with \(error)")
            } else {
                Issue.record("expected the cancelled wait to end with CancellationError, got \(String(describing: outcome))")
            }
            #expect(clock.now - start < .seconds(5), "a cancelled caller stops waiting")
            #expect(try await handle.status().state == .pending, "the run itself goes on")
            try await runtime.send(to: "long-1", topic: "finish", message: "finish")
            #expect(try await handle.result() == "finished")
        }
    }

    // MARK: Across restarts

    @Test(arguments: Backend.allCases) func concurrentStepsReplayTheirRecordedOutputsAfterARestart(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let url = setup.url
        let executions = AttemptCounter()

        func register(_ runtime: DBOSRuntime) throws -> Workflow<String, [String]> {
            try runtime.register("replayed-fan-out") { (ctx: WorkflowContext, _: String) -> [String] in
                let tasks = ["a", "b", "c"].map { name in
                    ctx.startStep("step-\(name)") { () async throws -> String in
                        _ = executions.increment()
                        return "\(name)-\(UUID().uuidString.prefix(8))"
                    }
                }
                var values: [String] = []
                for task in tasks { values.append(try await task.value) }
                _ = try await ctx.recv(String.self, topic: "go", timeout: .seconds(60))
                return values
            }
        }

        try await withLaunchedRuntime(url: url, register: register) { runtime, workflow in
            _ = try await runtime.startWorkflow(workflow, input: "", options: WorkflowOptions(workflowID: "replayed-1"))
            try await waitForSteps(of: "replayed-1", atLeast: 4, in: runtime)
        }
        #expect(executions.value == 3)
        try await withLaunchedRuntime(url: url, register: register) { runtime, _ in
            let firstRun = try await runtime.listSteps(workflowID: "replayed-1").prefix(3).map(\.output)
            try await runtime.send(to: "replayed-1", topic: "go", message: "go")
            let output = try await runtime.retrieveWorkflow(id: "replayed-1", as: [String].self).result()
            #expect(executions.value == 3, "recorded steps must not run again")
            #expect(output.map { JSONValue.string($0) } == firstRun.map { $0 ?? .null })
            let names = try await runtime.listSteps(workflowID: "replayed-1").map(\.name)
            #expect(names == ["step-a", "step-b", "step-c", "DBOS.recv", "DBOS.sleep"])
        }
    }

    @Test(arguments: Backend.allCases) func aStepStartedInsideAnotherStepTakesNoSlotSoTheWorkflowReplaysAfterARestart(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let url = setup.url
        let outerRuns = AttemptCounter()

        func register(_ runtime: DBOSRuntime) throws -> Workflow<String, String> {
            try runtime.register("nested-steps") { (ctx: WorkflowContext, _: String) -> String in
                let outer = try await ctx.runStep("outer") { () async throws -> Int in
                    _ = outerRuns.increment()
                    let inner = ctx.startStep("inner") { 1 }
                    #expect(inner.functionID == StepTask<Int>.noSlot)
                    return try await inner.value + 1
                }
                _ = try await ctx.recv(String.self, topic: "go", timeout: .seconds(60))
                let after = try await ctx.runStep("after") { 10 }
                return "\(outer + after)"
            }
        }

        try await withLaunchedRuntime(url: url, register: register) { runtime, workflow in
            _ = try await runtime.startWorkflow(workflow, input: "", options: WorkflowOptions(workflowID: "nested-1"))
            // outer (0), then recv's sleep (2).
            try await waitForSteps(of: "nested-1", atLeast: 2, in: runtime)
            let names = try await runtime.listSteps(workflowID: "nested-1").map(\.name)
            #expect(names == ["outer", "DBOS.sleep"], "the nested step is part of the outer one")
        }
        try await withLaunchedRuntime(url: url, register: register) { runtime, _ in
            try await runtime.send(to: "nested-1", topic: "go", message: "go")
            let output = try await runtime.retrieveWorkflow(id: "nested-1", as: String.self).result()
            #expect(output == "12")
            #expect(outerRuns.value == 1, "the outer step was replayed, not run again")
            let steps = try await runtime.listSteps(workflowID: "nested-1")
            #expect(steps.map(\.name) == ["outer", "DBOS.recv", "DBOS.sleep", "after"])
        }
    }

    @Test(arguments: Backend.allCases) func aRecoveredParentReattachesToItsChildInsteadOfStartingAnother(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let url = setup.url

        func register(_ runtime: DBOSRuntime) throws -> Workflow<String, String> {
            let child = try runtime.register("waiting-child") { (ctx: WorkflowContext, _: String) -> String in
                try await ctx.recv(String.self, topic: "child-go", timeout: .seconds(60)) ?? "child timed out"
            }
            return try runtime.register("waiting-parent") { (ctx: WorkflowContext, _: String) -> String in
                let handle = try await ctx.startChildWorkflow(child, input: "")
                _ = try await ctx.recv(String.self, topic: "parent-go", timeout: .seconds(60))
                return "parent saw \(try await handle.result())"
            }
        }

        try await withLaunchedRuntime(url: url, register: register) { runtime, parent in
            _ = try await runtime.startWorkflow(parent, input: "", options: WorkflowOptions(workflowID: "family-1"))
            // The child's slot (0) and the recv's sleep (2).
            try await waitForSteps(of: "family-1", atLeast: 2, in: runtime)
            try await waitForSteps(of: "family-1-0", atLeast: 1, in: runtime)
        }
        try await withLaunchedRuntime(url: url, register: register) { runtime, _ in
            try await runtime.send(to: "family-1-0", topic: "child-go", message: "hello from the child")
            try await runtime.send(to: "family-1", topic: "parent-go", message: "go")
            let output = try await runtime.retrieveWorkflow(id: "family-1", as: String.self).result()
            #expect(output == "parent saw hello from the child")
            let children = try await runtime.listWorkflows(WorkflowFilter(parentWorkflowID: "family-1"))
            #expect(children.map(\.workflowID) == ["family-1-0"], "exactly one child")
            #expect(children.first?.recoveryAttempts == 2, "the child was recovered, not started again")
        }
    }

    @Test(arguments: Backend.allCases) func aTimeoutThatExpiredWhileTheProcessWasDownCancelsTheRecoveredRun(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let url = setup.url

        func register(_ runtime: DBOSRuntime) throws -> Workflow<String, String> {
            try runtime.register("deadline-bound") { (ctx: WorkflowContext, _: String) -> String in
                _ = try await ctx.recv(String.self, topic: "go", timeout: .seconds(60))
                return "finished"
            }
        }

        try await withLaunchedRuntime(url: url, register: register) { runtime, workflow in
            _ = try await runtime.startWorkflow(
                workflow, input: "", options: WorkflowOptions(workflowID: "deadline-1", timeout: .seconds(1)))
            try await waitForSteps(of: "deadline-1", atLeast: 1, in: runtime)
        }
        // The process is down past the deadline.
        try await Task.sleep(for: .milliseconds(1_200))
        try await withLaunchedRuntime(url: url, register: register) { runtime, _ in
            let clock = ContinuousClock()
            let start = clock.now
            let handle = runtime.retrieveWorkflow(id: "deadline-1", as: String.self)
            let error = await #expect(throws: WorkflowError.self) { _ = try await handle.result() }
            #expect(error?.isCancellation == true, "ended with \(String(describing: error))")
            #expect(clock.now - start < .seconds(5), "the stored deadline, not a fresh timeout, applies")
            let status = try await handle.status()
            #expect(status.state == .cancelled)
        }
    }
}

/// What the fan-out workflow saw: each step's value and the slot it took, in call order.
private struct FanOutResult: Codable, Sendable {
    var values: [String]
    var functionIDs: [Int]
}

/// A failure thrown by a step body.
/// Two step IDs read in one step (a tuple is not `Codable`).
private struct Pair: Codable, Sendable {
    var outer: Int?
    var nested: Int?
    var values: (Int?, Int?) { (outer, nested) }
}

private struct StepTestFailure: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Counts a step body's attempts across the concurrent contexts that run it.
private final class AttemptCounter: Sendable {
    private let count = Mutex(0)

    /// Counts one more attempt and returns its number (from 1).
    func increment() -> Int {
        count.withLock { count in
            count += 1
            return count
        }
    }

    var value: Int { count.withLock { $0 } }
}

/// The order in which concurrent step bodies finished.
private final class CompletionLog: Sendable {
    private let names = Mutex<[String]>([])

    func append(_ name: String) { names.withLock { $0.append(name) } }

    var entries: [String] { names.withLock { $0 } }

    /// Waits (up to 20 s) until `name` has finished.
    func waitFor(_ name: String) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while !entries.contains(name) {
            guard ContinuousClock.now < deadline else { throw StepTestFailure(message: "\(name) never finished") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

/// The outcome of `body`, or nil when it takes longer than `limit`. The answer comes at the limit
/// even if `body` ignores cancellation (it is cancelled and left to finish on its own).
private func resultWithin<T: Sendable>(
    _ limit: Duration, _ body: @escaping @Sendable () async throws -> T
) async -> Result<T, any Error>? {
    await withCheckedContinuation { continuation in
        let answer = FirstAnswer(continuation)
        let work = Task {
            do { answer.give(.success(try await body())) } catch { answer.give(.failure(error)) }
        }
        Task {
            try? await Task.sleep(for: limit)
            answer.give(nil)
            work.cancel()
        }
    }
}

/// Resumes a continuation with the first value given; later values are dropped.
private final class FirstAnswer<Value: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<Value, Never>?>

    init(_ continuation: CheckedContinuation<Value, Never>) {
        self.continuation = Mutex(continuation)
    }

    func give(_ value: Value) {
        let waiting = continuation.withLock { continuation in
            defer { continuation = nil }
            return continuation
        }
        waiting?.resume(returning: value)
    }
}
