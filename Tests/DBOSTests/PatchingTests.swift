import DBOS
import DBOSTestSupport
import Foundation
import Testing

/// Patching (DBOS's `Patch` / `DeprecatePatch`): a workflow's code changes while runs of the old
/// code are unfinished; each run keeps the branch its checkpoints recorded.
@Suite(.timeLimit(.minutes(2)))
struct PatchingTests {
    /// The three versions of one workflow: before the patch, with it, with it retired.
    enum Version: Sendable {
        case original
        case patched
        case deprecated
    }

    /// A runtime with patching on, serving `version` of the "payment" workflow: a step, a wait for
    /// "go", the charge as that version does it, and a wait for "finish" that keeps the run open.
    private func open(_ setup: TestRuntime, _ version: Version) async throws -> DBOSRuntime {
        var configuration = DBOSConfiguration(
            systemDatabaseURL: setup.url, executorID: "payments", pollingInterval: .milliseconds(50))
        configuration.enablesPatching = true
        let runtime = try await DBOSRuntime(configuration: configuration)
        _ = try runtime.register("payment") { (context: WorkflowContext, _: String) -> String in
            _ = try await context.runStep("prepare") { "prepared" }
            _ = try await context.recv(String.self, topic: "go", timeout: .seconds(60))
            let charged: String
            switch version {
            case .original:
                charged = try await context.runStep("charge") { "charged at once" }
            case .patched:
                if try await context.patch("two-phase") {
                    _ = try await context.runStep("authorize") { "authorized" }
                    charged = try await context.runStep("capture") { "charged in two phases" }
                } else {
                    charged = try await context.runStep("charge") { "charged at once" }
                }
            case .deprecated:
                try context.deprecatePatch("two-phase")
                _ = try await context.runStep("authorize") { "authorized" }
                charged = try await context.runStep("capture") { "charged in two phases" }
            }
            _ = try await context.recv(String.self, topic: "finish", timeout: .seconds(60))
            return charged
        }
        try await runtime.launch()
        return runtime
    }

    /// Starts a run and waits until it waits for "go".
    private func start(_ id: String, on runtime: DBOSRuntime) async throws {
        _ = try await runtime.startWorkflow(named: "payment", input: .string(id), options: WorkflowOptions(workflowID: id))
        try await waitForSteps(of: id, atLeast: 2, in: runtime)
    }

    /// Sends "go" and waits until the run has charged and waits for "finish".
    private func charge(_ id: String, on runtime: DBOSRuntime) async throws {
        try await runtime.send(to: id, topic: "go", message: "go")
        let charged = await eventually(timeout: .seconds(20)) {
            let names = (try? await stepNames(id, on: runtime)) ?? []
            return names.contains { $0 == "charge" || $0 == "capture" } && names.last == "DBOS.sleep"
        }
        try #require(charged, "run \(id) did not charge")
    }

    private func finish(_ id: String, on runtime: DBOSRuntime) async throws -> String {
        try await runtime.send(to: id, topic: "finish", message: "finish")
        return try await runtime.retrieveWorkflow(id: id, as: String.self).result()
    }

    private func stepNames(_ id: String, on runtime: DBOSRuntime) async throws -> [String] {
        try await runtime.listSteps(workflowID: id).map(\.name)
    }

    @Test(arguments: Backend.allCases)
    func eachRunKeepsTheBranchItsCheckpointsRecordedAcrossVersions(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let waits = ["DBOS.recv", "DBOS.sleep"]

        // The original code: two runs charged at once and still open, one waiting before the charge.
        let original = try await open(setup, .original)
        for id in ["old-1", "old-2"] {
            try await start(id, on: original)
            try await charge(id, on: original)
        }
        try await start("waiting", on: original)
        await original.shutdown(gracePeriod: .zero)

        // Patched: a run the old code took past the patch point keeps its branch; one that had not
        // reached it, and a new one, take the patched branch, which records the patch.
        let patched = try await open(setup, .patched)
        #expect(try await finish("old-1", on: patched) == "charged at once")
        #expect(try await stepNames("old-1", on: patched) == ["prepare"] + waits + ["charge"] + waits)
        try await charge("waiting", on: patched)
        #expect(try await finish("waiting", on: patched) == "charged in two phases")
        try await start("new", on: patched)
        try await charge("new", on: patched)
        #expect(try await stepNames("new", on: patched)
            == ["prepare"] + waits + ["DBOS.patch-two-phase", "authorize", "capture", "DBOS.sleep"])
        #expect(try await patched.workflowStatus(id: "new")?.applicationVersion == ApplicationVersion.patchingEnabled)
        await patched.shutdown(gracePeriod: .zero)

        // Deprecated: a run that recorded the patch replays past its marker; a new run writes none.
        let deprecated = try await open(setup, .deprecated)
        #expect(try await finish("new", on: deprecated) == "charged in two phases")
        #expect(try await stepNames("new", on: deprecated)
            == ["prepare"] + waits + ["DBOS.patch-two-phase", "authorize", "capture"] + waits)
        try await start("fresh", on: deprecated)
        try await charge("fresh", on: deprecated)
        #expect(try await finish("fresh", on: deprecated) == "charged in two phases")
        #expect(try await stepNames("fresh", on: deprecated) == ["prepare"] + waits + ["authorize", "capture"] + waits)
        // A run of the old branch cannot be finished by code without it: retire a patch only once none is left.
        await #expect {
            _ = try await deprecated.retrieveWorkflow(id: "old-2", as: String.self).result()
        } throws: { error in
            "\(error)".contains("charge") && "\(error)".contains("authorize")
        }
        await deprecated.shutdown(gracePeriod: .zero)
    }

    @Test(arguments: Backend.allCases)
    func aForkPastThePatchPointTakesThePatchedBranchAgain(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let runtime = try await open(setup, .patched)
        try await start("patched-run", on: runtime)
        try await charge("patched-run", on: runtime)
        #expect(try await finish("patched-run", on: runtime) == "charged in two phases")
        // Slots: 0 prepare, 1-2 the wait for "go", 3 the patch, 4 authorize, 5 capture.
        let fork = try await runtime.forkWorkflow(id: "patched-run", fromStep: 5, newWorkflowID: "forked", as: String.self)
        try await waitForSteps(of: "forked", atLeast: 6, in: runtime)
        try await runtime.send(to: "forked", topic: "finish", message: "finish")
        #expect(try await fork.result() == "charged in two phases")
        #expect(try await stepNames("forked", on: runtime)
            == ["prepare", "DBOS.recv", "DBOS.sleep", "DBOS.patch-two-phase", "authorize", "capture", "DBOS.recv", "DBOS.sleep"])
        await runtime.shutdown(gracePeriod: .zero)
    }

    @Test func patchingMustBeEnabledAndIsRefusedInsideAStep() async throws {
        try await withLaunchedRuntime(register: { runtime in
            try runtime.register("unpatched") { (context: WorkflowContext, _: Int) -> Bool in
                try await context.patch("anything")
            }
        }) { runtime, unpatched in
            let handle = try await runtime.startWorkflow(unpatched, input: 1)
            await #expect { _ = try await handle.result() } throws: { error in
                "\(error)".contains("patch(_:) needs DBOSConfiguration.enablesPatching")
            }
        }

        let setup = try await TestRuntime()
        defer { setup.directory.remove() }
        var configuration = DBOSConfiguration(systemDatabaseURL: setup.url, pollingInterval: .milliseconds(50))
        configuration.enablesPatching = true
        let runtime = try await DBOSRuntime(configuration: configuration)
        let inStep = try runtime.register("in-step") { (context: WorkflowContext, _: Int) -> Bool in
            try await context.runStep("outer") { try await context.patch("anything") }
        }
        try await runtime.launch()
        let handle = try await runtime.startWorkflow(inStep, input: 1)
        await #expect { _ = try await handle.result() } throws: { error in
            "\(error)".contains("patch(_:) cannot be called inside step 'outer'")
        }
        await runtime.shutdown(gracePeriod: .zero)
    }
}
