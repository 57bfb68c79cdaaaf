import DBOS
import DBOSSpec
import DBOSTestSupport
import Foundation
import Testing

/// Crashes, recovery, resume and fork run with the spec text stored with the run, not the file on disk.
@Suite struct RecoveryTests {
    static let recoverV1 = """
        name: recover
        input:
          type: object
          required: [log, mark]
          properties:
            log: {type: string}
            mark: {type: string}
        steps:
          - id: first
            env: {LOG: "${{ input.log }}"}
            run: echo first >> "$LOG"; echo one
          - id: second
            env: {LOG: "${{ input.log }}", MARK: "${{ input.mark }}"}
            run: |
              echo second >> "$LOG"
              if [ ! -f "$MARK" ]; then touch "$MARK"; sleep 30; fi
              echo two
          - id: third
            env: {LOG: "${{ input.log }}", PREVIOUS: "${{ steps.first.output }}-${{ steps.second.output }}"}
            run: echo third >> "$LOG"; echo "$PREVIOUS-three"
        """

    static let recoverV2 = """
        name: recover
        steps:
          - id: replaced
            run: echo changed
        output: changed output
        """

    @Test func crashedRunRecoversWithItsStoredTextAfterTheFileChanged() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-interp")
        let log = SideEffectLog(path: directory.file("log"))
        let input: JSONValue = ["log": .string(log.path), "mark": .string(directory.file("mark"))]
        let v1 = try SpecFiles.write(Self.recoverV1, as: "recover.yaml", in: directory)
        let first = try await SpecTestRuntime.make(specs: [v1], directory: directory)
        _ = try await first.interpreter.start(spec: v1, input: input, workflowID: "crash-1")
        let deadline = ContinuousClock.now + .seconds(20)
        while !log.lines.contains("second"), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(log.lines == ["first", "second"])
        await first.runtime.shutdown(gracePeriod: .zero)

        let observer = try await DBOSRuntime(configuration: DBOSConfiguration(
            systemDatabaseURL: "sqlite:\(first.databasePath)", applicationVersion: "interpreter-tests"))
        #expect(try await observer.workflowStatus(id: "crash-1")?.state == .pending)
        await observer.shutdown(gracePeriod: .zero)

        let v2 = try SpecFiles.write(Self.recoverV2, as: "recover.yaml", in: directory)
        let second = try await SpecTestRuntime.make(specs: [v2], directory: directory)
        let output = try await second.runtime.retrieveWorkflow(id: "crash-1").result()
        let kinds = second.events.kinds(of: "crash-1")
        let steps = try await second.runtime.listSteps(workflowID: "crash-1")
        let lines = log.lines
        await second.close()
        #expect(output == "one-two-three")
        // `second` was interrupted before its checkpoint, so it ran again; the checkpointed `first` did not.
        #expect(lines == ["first", "second", "second", "third"])
        #expect(kinds.contains(.stepReplayed(stepID: "first", slot: 0)))
        #expect(steps.map(\.name) == ["first", "second", "third"])
    }

    @Test func concurrentStepsRecoverByTheirFixedSlots() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-interp")
        let log = SideEffectLog(path: directory.file("log"))
        let input: JSONValue = ["log": .string(log.path), "mark": .string(directory.file("mark"))]
        let spec = try SpecFiles.write("""
            name: branches
            steps:
              - id: slow
                env: {LOG: "${{ input.log }}", MARK: "${{ input.mark }}"}
                run: |
                  echo slow >> "$LOG"
                  if [ ! -f "$MARK" ]; then touch "$MARK"; sleep 30; fi
                  echo S
              - id: fast
                needs: []
                env: {LOG: "${{ input.log }}"}
                run: echo fast >> "$LOG"; echo F
              - id: join
                needs: [slow, fast]
                env: {A: "${{ steps.slow.output }}", B: "${{ steps.fast.output }}"}
                run: echo "$A$B"
            """, as: "branches.yaml", in: directory)
        let first = try await SpecTestRuntime.make(specs: [spec], directory: directory)
        _ = try await first.interpreter.start(spec: spec, input: input, workflowID: "branches-1")
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let steps = try await first.runtime.listSteps(workflowID: "branches-1")
            if log.lines.contains("slow"), steps.contains(where: { $0.name == "fast" }) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        await first.runtime.shutdown(gracePeriod: .zero)

        let second = try await SpecTestRuntime.make(specs: [spec], directory: directory)
        let output = try await second.runtime.retrieveWorkflow(id: "branches-1").result()
        let steps = try await second.runtime.listSteps(workflowID: "branches-1")
        let kinds = second.events.kinds(of: "branches-1")
        let lines = log.lines
        await second.close()
        #expect(output == "SF")
        #expect(lines.filter { $0 == "fast" }.count == 1)
        #expect(lines.filter { $0 == "slow" }.count == 2)
        #expect(steps.map(\.name) == ["slow", "fast", "join"])
        #expect(steps.map(\.functionID) == [0, 1, 2])
        #expect(kinds.contains(.stepReplayed(stepID: "fast", slot: 1)))
    }

    @Test func resumeAndForkUseTheStoredSpecText() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-interp")
        let log = SideEffectLog(path: directory.file("log"))
        let flag = directory.file("flag")
        let input: JSONValue = ["log": .string(log.path), "flag": .string(flag)]
        let v1 = try SpecFiles.write("""
            name: resumable
            steps:
              - id: gate
                env: {LOG: "${{ input.log }}", FLAG: "${{ input.flag }}"}
                run: echo gate >> "$LOG"; test -f "$FLAG" && echo open
              - id: after
                env: {LOG: "${{ input.log }}", GATE: "${{ steps.gate.output }}"}
                run: echo after >> "$LOG"; echo "v1 $GATE"
            """, as: "resumable.yaml", in: directory)
        let first = try await SpecTestRuntime.make(specs: [v1], directory: directory)
        await #expect(throws: (any Error).self) { try await first.run(v1, input: input, id: "resume-1") }
        await first.runtime.shutdown(gracePeriod: .seconds(1))

        let v2 = try SpecFiles.write("""
            name: resumable
            steps:
              - id: other
                run: echo v2
            """, as: "resumable.yaml", in: directory)
        let second = try await SpecTestRuntime.make(specs: [v2], directory: directory)
        _ = FileManager.default.createFile(atPath: flag, contents: nil)
        let resumed = try await second.interpreter.resume(workflowID: "resume-1").result()
        let forked = try await second.interpreter.fork(workflowID: "resume-1", fromSlot: 1, newWorkflowID: "fork-1").result()
        let stored = try await second.interpreter.storedSpec(ofWorkflow: "fork-1")
        let lines = log.lines
        let attributes = try await second.runtime.workflowStatus(id: "fork-1")?.attributes
        await second.close()
        #expect(try SpecInterpreter.storedSpecs(in: attributes).map(\.name) == ["resumable"])
        #expect(try SpecInterpreter.storedSpecs(in: attributes).first?.steps.map(\.id) == ["gate", "after"])
        #expect(resumed == "v1 open")
        #expect(forked == "v1 open")
        #expect(stored.steps.map(\.id) == ["gate", "after"])
        // The failed gate ran twice (first run, resume); the fork copied its checkpoint and re-ran only `after`.
        #expect(lines == ["gate", "gate", "after", "after"])
    }

    @Test func crashedChildRunRecoversWithTheChildTextStoredWithItsRoot() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-interp")
        let log = SideEffectLog(path: directory.file("log"))
        let input: JSONValue = ["log": .string(log.path), "mark": .string(directory.file("mark"))]
        let parentText = """
            name: parent
            steps:
              - id: call
                workflow: worker
                with: {log: "${{ input.log }}", mark: "${{ input.mark }}"}
            output: parent got ${{ steps.call.output }}
            """
        _ = try SpecFiles.write("""
            name: worker
            steps:
              - id: work
                env: {LOG: "${{ input.log }}", MARK: "${{ input.mark }}"}
                run: |
                  echo work >> "$LOG"
                  if [ ! -f "$MARK" ]; then touch "$MARK"; sleep 30; fi
                  echo v1 work
            """, as: "worker.yaml", in: directory)
        let parent = try SpecFiles.write(parentText, as: "parent.yaml", in: directory)
        let worker = try SpecLoader().load(file: directory.file("worker.yaml"))
        let first = try await SpecTestRuntime.make(specs: [parent], directorySpecs: [worker], directory: directory)
        _ = try await first.interpreter.start(spec: parent, input: input, workflowID: "family-1")
        let deadline = ContinuousClock.now + .seconds(20)
        while !log.lines.contains("work"), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        await first.runtime.shutdown(gracePeriod: .zero)

        _ = try SpecFiles.write("""
            name: worker
            steps:
              - id: work
                run: echo v2 work
            """, as: "worker.yaml", in: directory)
        let newWorker = try SpecLoader().load(file: directory.file("worker.yaml"))
        let newParent = try SpecLoader().load(file: directory.file("parent.yaml"))
        let second = try await SpecTestRuntime.make(specs: [newParent], directorySpecs: [newWorker], directory: directory)
        let output = try await second.runtime.retrieveWorkflow(id: "family-1").result()
        let childAttributes = try await second.runtime.workflowStatus(id: "family-1-0")?.attributes
        let lines = log.lines
        await second.close()
        #expect(output == "parent got v1 work")
        #expect(lines == ["work", "work"])
        let child = try #require(RunAttributes(childAttributes))
        #expect(child.rootWorkflowID == "family-1")
        #expect(child.specName == "worker")
    }

    @Test func specTimeoutCancelsTheRunAndKillsItsShell() async throws {
        let directory = try TemporaryDirectory(prefix: "dbos-interp")
        let spec = try SpecFiles.write("""
            name: bounded
            timeout: 500ms
            steps:
              - id: long
                run: sleep 20
            """, as: "bounded.yaml", in: directory)
        let environment = try await SpecTestRuntime.make(specs: [spec], directory: directory)
        let start = ContinuousClock.now
        var caught: (any Error)?
        do {
            _ = try await environment.run(spec, id: "bounded-1")
        } catch {
            caught = error
        }
        let elapsed = ContinuousClock.now - start
        let status = try await environment.runtime.workflowStatus(id: "bounded-1")
        await environment.close()
        #expect((caught as? WorkflowError)?.isCancellation == true)
        #expect(status?.state == .cancelled)
        #expect(elapsed < .seconds(15))
    }
}
