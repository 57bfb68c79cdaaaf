@testable import DBOS
import DBOSTestSupport
import Foundation
import Synchronization
import Testing

/// Counts how often code ran, from any task.
final class Counter: Sendable {
    private let value = Mutex(0)
    @discardableResult func increment() -> Int { value.withLock { $0 += 1; return $0 } }
    var count: Int { value.withLock { $0 } }
}

extension TestRuntime {
    /// Runs one statement directly on the system database, as a DBOS tool would read it.
    func rawQuery(_ sql: SQL) async throws -> [SQLRow] {
        switch backend {
        case .sqlite:
            return try SQLiteConnection(path: directory.file("system.sqlite")).query(sql)
        case .postgres:
            var target = try PostgresURL(url)
            target.parameters["options"] = "-c search_path=dbos"
            let connection = try await PostgresConnection.connect(target)
            defer { connection.close() }
            return try await connection.query(sql)
        }
    }
}

@Suite(.timeLimit(.minutes(2)))
struct WorkflowTests {
    @Test func theOutputsKeptForResultAreTheLastThousandSmallOnes() {
        var outputs = DBOSRuntime.RecentOutputs()
        for index in 0...DBOSRuntime.RecentOutputs.capacity { outputs.remember("\(index)", of: "run-\(index)") }
        #expect(outputs.output(of: "run-0") == nil, "the oldest was forgotten")
        #expect(outputs.output(of: "run-1") == "1")
        #expect(outputs.output(of: "run-\(DBOSRuntime.RecentOutputs.capacity)") == "\(DBOSRuntime.RecentOutputs.capacity)")
        let large = String(repeating: "x", count: DBOSRuntime.RecentOutputs.largestOutput + 1)
        outputs.remember(large, of: "large")
        #expect(outputs.output(of: "large") == nil, "a large output is read from the database instead")
    }

    @Test(arguments: Backend.allCases) func workflowRunsItsStepsAndReturnsTheOutput(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        let greet = try runtime.register("greet") { (context: WorkflowContext, name: String) -> String in
            let upper = try await context.runStep("upper") { name.uppercased() }
            return try await context.runStep("exclaim") { upper + "!" }
        }
        try await runtime.launch()
        let handle = try await runtime.startWorkflow(greet, input: "world", options: WorkflowOptions(workflowID: "g1"))
        #expect(try await handle.result() == "WORLD!")
        let status = try await handle.status()
        #expect(status.state == .success)
        #expect(status.input == "world")
        #expect(status.output == "WORLD!")
        #expect(status.recoveryAttempts == 1)
        let steps = try await runtime.listSteps(workflowID: "g1")
        #expect(steps.map(\.functionID) == [0, 1])
        #expect(steps.map(\.name) == ["upper", "exclaim"])
        #expect(steps.map(\.output) == ["WORLD", "WORLD!"])
        await runtime.shutdown()
    }

    /// A reference type, so that identity tells the value passed apart from a copy decoded from JSON.
    final class Parcel: Codable, Sendable {
        let label: String
        init(label: String) { self.label = label }
    }

    /// As in DBOS Go and Python, a run started in this process gets the caller's input value, and
    /// its handles here return the value the workflow returned while its task is alive; the JSON is
    /// what is stored, and what every other path (a handle after the run ended, a handle asking for
    /// JSON, a run started by name) decodes.
    @Test(arguments: Backend.allCases)
    func aRunStartedHereGetsTheCallersInputAndItsHandlesTheReturnedOutput(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        let sent = Parcel(label: "sent")
        let returned = Parcel(label: "returned")
        let received = Mutex<[Parcel]>([])
        let relay = try runtime.register("relay") { (context: WorkflowContext, parcel: Parcel) -> Parcel in
            received.withLock { $0.append(parcel) }
            _ = try await context.runStep("look") { parcel.label }
            return returned
        }
        try runtime.register(queue: WorkflowQueue(name: "parcels", workerConcurrency: 1))
        try await runtime.launch()
        // Started directly, and enqueued on a queue this process serves (its enqueue starts it).
        for options in [WorkflowOptions(), WorkflowOptions(queueName: "parcels")] {
            let handle = try await runtime.startWorkflow(relay, input: sent, options: options)
            #expect(try await handle.result() === returned)
            #expect(received.withLock { $0.last } === sent)
            // Once the run has ended, a copy decoded from its JSON (kept in memory, or read).
            #expect(await eventually(timeout: .seconds(20)) { runtime.localTask(of: handle.workflowID) == nil })
            let later = try await handle.result()
            #expect(later !== returned)
            #expect(later.label == "returned")
            let json = try await runtime.retrieveWorkflow(id: handle.workflowID, as: JSONValue.self).result()
            #expect(json == ["label": "returned"])
            #expect(try await handle.status().input == ["label": "sent"])
        }
        let named = try await runtime.startWorkflow(named: "relay", input: ["label": "named"])
        #expect(try await named.result() == ["label": "returned"])
        #expect(received.withLock { $0.last?.label } == "named")
        await runtime.shutdown()
    }

    @Test(arguments: Backend.allCases) func theSameWorkflowIDTwiceRunsOnce(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        let bodies = Counter()
        let steps = Counter()
        let once = try runtime.register("once") { (context: WorkflowContext, input: Int) -> Int in
            bodies.increment()
            return try await context.runStep("count") { steps.increment() + input }
        }
        try await runtime.launch()
        let first = try await runtime.runWorkflow(once, input: 10, options: WorkflowOptions(workflowID: "same"))
        let second = try await runtime.runWorkflow(once, input: 99, options: WorkflowOptions(workflowID: "same"))
        #expect(first == 11)
        #expect(second == 11)
        #expect(bodies.count == 1)
        #expect(steps.count == 1)
        await runtime.shutdown()
    }

    @Test(arguments: Backend.allCases) func startingARunningWorkflowAgainAttachesToIt(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        let bodies = Counter()
        let slow = try runtime.register("slow") { (context: WorkflowContext, _: String) -> String in
            bodies.increment()
            return try await context.recv(String.self, topic: "go", timeout: .seconds(30)) ?? "timeout"
        }
        try await runtime.launch()
        let first = try await runtime.startWorkflow(slow, input: "", options: WorkflowOptions(workflowID: "s1"))
        let second = try await runtime.startWorkflow(slow, input: "", options: WorkflowOptions(workflowID: "s1"))
        try await runtime.send(to: "s1", topic: "go", message: "done")
        #expect(try await first.result() == "done")
        #expect(try await second.result() == "done")
        #expect(bodies.count == 1)
        await runtime.shutdown()
    }

    @Test(arguments: Backend.allCases) func inputsOutputsAndErrorsAreStoredAsPortableJSON(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        struct Order: Codable, Sendable { var id: String; var amount: Int }
        struct Declined: Error, CustomStringConvertible { var description: String { "card declined" } }
        let ok = try runtime.register("ok") { (_: WorkflowContext, order: Order) -> Order in order }
        let fails = try runtime.register("fails") { (context: WorkflowContext, _: Order) -> Int in
            try await context.runStep("charge") { () -> Int in throw Declined() }
        }
        try await runtime.launch()
        _ = try await runtime.runWorkflow(ok, input: Order(id: "o-1", amount: 5), options: WorkflowOptions(workflowID: "ok"))
        await #expect(throws: Declined.self) {
            try await runtime.runWorkflow(fails, input: Order(id: "o-2", amount: 7), options: WorkflowOptions(workflowID: "bad"))
        }
        await runtime.shutdown()

        let rows = try await setup.rawQuery(
            "SELECT workflow_uuid, inputs, output, error, serialization, status FROM workflow_status ORDER BY workflow_uuid")
        #expect(rows.map { $0.string("status") } == ["ERROR", "SUCCESS"])
        #expect(rows.allSatisfy { $0.string("serialization") == "portable_json" })
        #expect(rows[1].string("inputs") == #"{"namedArgs":{},"positionalArgs":[{"amount":5,"id":"o-1"}]}"#)
        #expect(rows[1].string("output") == #"{"amount":5,"id":"o-1"}"#)
        let error = try JSONValue(parsing: try #require(rows[0].string("error")))
        #expect(error["name"] == "Declined")
        #expect(error["message"] == "card declined")
        let step = try #require(try await setup.rawQuery("SELECT error, serialization FROM operation_outputs WHERE workflow_uuid = 'bad'").first)
        #expect(step.string("serialization") == "portable_json")
        #expect(try JSONValue(parsing: try #require(step.string("error")))["message"] == "card declined")
    }

    @Test(arguments: Backend.allCases) func aRecoveredWorkflowSkipsItsCheckpointedSteps(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let stepRuns = Counter()
        func register(_ runtime: DBOSRuntime) throws -> Workflow<String, String> {
            try runtime.register("resumable") { (context: WorkflowContext, _: String) -> String in
                let first = try await context.runStep("first") { stepRuns.increment() }
                let message = try await context.recv(String.self, topic: "continue", timeout: .seconds(30)) ?? "none"
                return "\(first)-\(message)"
            }
        }
        let crashed = try await setup.make()
        let workflow = try register(crashed)
        try await crashed.launch()
        _ = try await crashed.startWorkflow(workflow, input: "", options: WorkflowOptions(workflowID: "r1"))
        #expect(await eventually { stepRuns.count == 1 })
        // Shutting down stops the run where it is and leaves it PENDING, like a crash would.
        await crashed.shutdown(gracePeriod: .zero)

        let recovered = try await setup.make()
        _ = try register(recovered)
        try await recovered.launch()
        try await recovered.send(to: "r1", topic: "continue", message: "go")
        #expect(try await recovered.retrieveWorkflow(id: "r1", as: String.self).result() == "1-go")
        #expect(stepRuns.count == 1)
        #expect(try await recovered.workflowStatus(id: "r1")?.recoveryAttempts == 2)
        await recovered.shutdown()
    }

    @Test(arguments: Backend.allCases) func recoveryOnlyResumesThisExecutorsRunsOfThisVersion(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        func register(_ runtime: DBOSRuntime) throws -> Workflow<String, String> {
            try runtime.register("waits") { (context: WorkflowContext, _: String) -> String in
                try await context.recv(String.self, topic: "t", timeout: .seconds(30)) ?? "none"
            }
        }
        let old = try await setup.make(version: "v1")
        let workflow = try register(old)
        try await old.launch()
        _ = try await old.startWorkflow(workflow, input: "", options: WorkflowOptions(workflowID: "old-version"))
        await old.shutdown(gracePeriod: .zero)

        let otherVersion = try await setup.make(version: "v2")
        _ = try register(otherVersion)
        try await otherVersion.launch()
        #expect(try await otherVersion.recoverPendingWorkflows().isEmpty)
        await otherVersion.shutdown()

        let otherExecutor = try await setup.make(executorID: "elsewhere", version: "v1")
        _ = try register(otherExecutor)
        try await otherExecutor.launch()
        #expect(try await otherExecutor.recoverPendingWorkflows().isEmpty)
        await otherExecutor.shutdown()

        let same = try await setup.make(version: "v1", recovers: false)
        _ = try register(same)
        try await same.launch()
        #expect(try await same.recoverPendingWorkflows() == ["old-version"])
        await same.shutdown(gracePeriod: .zero)
    }

    @Test(arguments: Backend.allCases) func aWorkflowThatKeepsCrashingIsAbandonedAfterItsMaxRecoveryAttempts(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        func register(_ runtime: DBOSRuntime) throws -> Workflow<String, String> {
            try runtime.register("fragile", maxRecoveryAttempts: 1) { (context: WorkflowContext, _: String) -> String in
                try await context.recv(String.self, topic: "t", timeout: .seconds(30)) ?? "none"
            }
        }
        let first = try await setup.make()
        let workflow = try register(first)
        try await first.launch()
        _ = try await first.startWorkflow(workflow, input: "", options: WorkflowOptions(workflowID: "fragile-1"))
        await first.shutdown(gracePeriod: .zero)
        for _ in 0..<2 {
            let next = try await setup.make()
            _ = try register(next)
            try await next.launch()
            await next.shutdown(gracePeriod: .zero)
        }
        let last = try await setup.make(recovers: false)
        _ = try register(last)
        try await last.launch()
        let status = try #require(try await last.workflowStatus(id: "fragile-1"))
        #expect(status.state == .maxRecoveryAttemptsExceeded)
        await #expect {
            try await last.retrieveWorkflow(id: "fragile-1", as: String.self).result()
        } throws: { error in
            guard case WorkflowError.maxRecoveryAttemptsExceeded = error else { return false }
            return true
        }
        await last.shutdown()
    }

    @Test(arguments: Backend.allCases) func durableSleepRecordsItsWakeUpTime(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        let nap = try runtime.register("nap") { (context: WorkflowContext, _: String) -> String in
            try await context.sleep(for: .milliseconds(300))
            return "awake"
        }
        try await runtime.launch()
        let before = Date()
        #expect(try await runtime.runWorkflow(nap, input: "", options: WorkflowOptions(workflowID: "nap")) == "awake")
        let after = Date()
        #expect(after.timeIntervalSince(before) >= 0.3)
        let sleep = try #require(try await runtime.listSteps(workflowID: "nap").first)
        #expect(sleep.name == "DBOS.sleep")
        let wakeUp = try #require(sleep.completedAt)
        #expect(wakeUp >= before.addingTimeInterval(0.29))
        #expect(sleep.output == .integer(Int64(wakeUp.timeIntervalSince1970 * 1000)))
        await runtime.shutdown()
    }

    @Test(arguments: Backend.allCases) func cancelStopsARunningWorkflowAndItsChild(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        let childSteps = Counter()
        let child = try runtime.register("child") { (context: WorkflowContext, _: String) -> String in
            for index in 0..<1000 {
                _ = try await context.runStep("tick-\(index)") { childSteps.increment() }
                try await context.sleep(for: .milliseconds(20))
            }
            return "never"
        }
        let parent = try runtime.register("parent") { (context: WorkflowContext, _: String) -> String in
            try await context.runChildWorkflow(child, input: "")
        }
        try await runtime.launch()
        let handle = try await runtime.startWorkflow(parent, input: "", options: WorkflowOptions(workflowID: "p"))
        #expect(await eventually { childSteps.count >= 3 })
        try await runtime.cancelWorkflow(id: "p")
        await #expect {
            try await handle.result()
        } throws: { error in (error as? WorkflowError)?.isCancellation == true }
        #expect(try await runtime.workflowStatus(id: "p")?.state == .cancelled)
        #expect(try await runtime.workflowStatus(id: "p-0")?.state == .cancelled)
        let stepsAtCancel = childSteps.count
        try await Task.sleep(for: .milliseconds(300))
        #expect(childSteps.count <= stepsAtCancel + 1)
        await runtime.shutdown()
    }

    @Test(arguments: Backend.allCases) func aCancelFromAnotherProcessStopsTheRunAtItsNextStep(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        let ticks = Counter()
        let looping = try runtime.register("looping") { (context: WorkflowContext, _: String) -> String in
            for index in 0..<1000 {
                _ = try await context.runStep("tick-\(index)") { ticks.increment() }
                try await context.sleep(for: .milliseconds(20))
            }
            return "never"
        }
        try await runtime.launch()
        let handle = try await runtime.startWorkflow(looping, input: "", options: WorkflowOptions(workflowID: "loop"))
        #expect(await eventually { ticks.count >= 2 })
        // A second runtime on the same file stands in for the `workflows cancel` command.
        let other = try await setup.make(executorID: "cli", recovers: false)
        try await other.launch()
        try await other.cancelWorkflow(id: "loop")
        await other.shutdown()
        await #expect {
            try await handle.result()
        } throws: { error in (error as? WorkflowError)?.isCancellation == true }
        await runtime.shutdown()
    }

    @Test(arguments: Backend.allCases) func runsInALongSleepStopWhenAnotherProcessCancelsThem(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        let napper = try runtime.register("napper") { (context: WorkflowContext, _: String) -> String in
            try await context.sleep(for: .seconds(3_600))
            return "awake"
        }
        try await runtime.launch()
        // Two runs asleep for an hour; another process cancels the younger one. No step will ever
        // notice: only the watchdog can stop it, and it must leave the other one asleep.
        let kept = try await runtime.startWorkflow(napper, input: "", options: WorkflowOptions(workflowID: "kept"))
        let napping = try await runtime.startWorkflow(napper, input: "", options: WorkflowOptions(workflowID: "nap"))
        for id in ["kept", "nap"] {
            #expect(await eventually { (try? await runtime.listSteps(workflowID: id).count) == 1 })
        }
        let other = try await setup.make(executorID: "cli", recovers: false)
        try await other.launch()
        try await other.cancelWorkflow(id: "nap")
        await other.shutdown()
        await #expect {
            try await napping.result()
        } throws: { error in (error as? WorkflowError)?.isCancellation == true }
        #expect(runtime.localTask(of: "kept") != nil)
        #expect(try await kept.status().state == .pending)
        await runtime.shutdown(gracePeriod: .zero)
    }

    @Test(arguments: Backend.allCases) func operationsAtExplicitSlotsReplayFromThoseSlots(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        let runs = Counter()
        let slotted = try runtime.register("slotted") { (context: WorkflowContext, _: String) -> String in
            let late: String = try await context.executeStep(functionID: 5, name: "late", retry: .none) {
                runs.increment()
                return "five"
            }
            let early: String = try await context.executeStep(functionID: 2, name: "early", retry: .none) {
                runs.increment()
                return "two"
            }
            try await context.setEvent(key: "done", value: true, functionID: 7)
            return early + late
        }
        try await runtime.launch()
        let options = WorkflowOptions(workflowID: "slots", attributes: ["spec": "hello.yaml"])
        #expect(try await runtime.runWorkflow(slotted, input: "", options: options) == "twofive")
        let steps = try await runtime.listSteps(workflowID: "slots")
        #expect(steps.map(\.functionID) == [2, 5, 7])
        #expect(steps.map(\.name) == ["early", "late", "DBOS.setEvent"])
        #expect(try await runtime.workflowStatus(id: "slots")?.attributes == ["spec": "hello.yaml"])
        // A fork from slot 5 keeps slot 2's checkpoint and runs slot 5 again.
        let fork = try await runtime.forkWorkflow(id: "slots", fromStep: 5, as: String.self)
        #expect(try await fork.result() == "twofive")
        #expect(runs.count == 3)
        #expect(try await fork.status().attributes == ["spec": "hello.yaml"])
        await runtime.shutdown()
    }

    @Test(arguments: Backend.allCases) func aRunWhoseProcessDiedCanBeTakenOverByAnotherExecutor(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let firstRuns = Counter()
        func register(_ runtime: DBOSRuntime) throws -> Workflow<String, String> {
            try runtime.register("orphan") { (context: WorkflowContext, _: String) -> String in
                _ = try await context.runStep("first") { firstRuns.increment() }
                return try await context.recv(String.self, topic: "go", timeout: .seconds(30)) ?? "none"
            }
        }
        let died = try await setup.make(executorID: "died")
        let workflow = try register(died)
        try await died.launch()
        _ = try await died.startWorkflow(workflow, input: "", options: WorkflowOptions(workflowID: "orphan-1"))
        #expect(await eventually { firstRuns.count == 1 })
        await died.shutdown(gracePeriod: .zero)

        let otherVersion = try await setup.make(executorID: "other", version: "v2", recovers: false)
        _ = try register(otherVersion)
        try await otherVersion.launch()
        await #expect {
            try await otherVersion.recoverWorkflow(id: "orphan-1")
        } throws: { error in
            guard case WorkflowError.applicationVersionMismatch = error else { return false }
            return true
        }
        await otherVersion.shutdown()

        let rescuer = try await setup.make(executorID: "rescuer", recovers: false)
        _ = try register(rescuer)
        try await rescuer.launch()
        let handle = try await rescuer.recoverWorkflow(id: "orphan-1")
        try await rescuer.send(to: "orphan-1", topic: "go", message: "rescued")
        #expect(try await handle.result() == .string("rescued"))
        #expect(firstRuns.count == 1)
        let status = try #require(try await rescuer.workflowStatus(id: "orphan-1"))
        #expect(status.executorID == "rescuer")
        #expect(status.recoveryAttempts == 2)
        await rescuer.shutdown()
    }
}
