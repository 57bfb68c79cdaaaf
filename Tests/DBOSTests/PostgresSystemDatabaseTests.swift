@testable import DBOS
import DBOSTestSupport
import Foundation
import Synchronization
import Testing

/// The PostgreSQL system database under conditions SQLite never meets: server restarts, outages and
/// killed connections in the middle of workflows and queues, queue limits shared by several
/// processes, a database that does not exist yet (or that its role alone may reach), migrations
/// racing from several processes, unreachable servers and rejected logins, and wake-ups carried by
/// LISTEN/NOTIFY from another process.
///
/// Tests that restart or stop the server start one of their own, so the tests sharing
/// `SharedPostgresServer` are not disturbed. They run one at a time: a dozen servers starting at
/// once on a small machine would starve the timing-sensitive tests of every other suite.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct PostgresSystemDatabaseTests {
    /// How the server goes away in the middle of a workflow.
    enum Disruption: String, CaseIterable, Sendable, CustomTestStringConvertible {
        /// `pg_ctl stop -m fast` then start: clients are told to disconnect (57P01).
        case fastRestart
        /// `pg_ctl stop -m immediate` then start: backends die without a word, recovery runs.
        case immediateRestart
        /// The server is down for three seconds before it comes back.
        case outage

        var testDescription: String { rawValue }

        func apply(to server: PostgresServer) throws {
            switch self {
            case .fastRestart: try server.restart(mode: .fast)
            case .immediateRestart: try server.restart(mode: .immediate)
            case .outage:
                try server.stopServer(mode: .fast)
                Thread.sleep(forTimeInterval: 3)
                try server.startServer()
            }
        }
    }

    @Test(arguments: Disruption.allCases)
    func aWorkflowKeepsRunningAcrossAServerRestartAndRunsEveryStepOnce(disruption: Disruption) async throws {
        try await withDurableServer { server in try await runAcrossDisruption(disruption, of: server) }
    }

    private func runAcrossDisruption(_ disruption: Disruption, of server: PostgresServer) async throws {
        let runtime = try await DBOSRuntime(configuration: DBOSConfiguration(
            systemDatabaseURL: server.url(database: "restarted"), applicationVersion: "test",
            pollingInterval: .milliseconds(50), cancellationCheckInterval: .milliseconds(100)))
        let stepCount = 40
        let executions = StepExecutions()
        let longRunning = try runtime.register("long-running") { (context: WorkflowContext, steps: Int) -> Int in
            var total = 0
            for index in 0..<steps {
                total += try await context.runStep("step-\(index)") {
                    executions.record(index)
                    try await Task.sleep(for: .milliseconds(50))
                    return index
                }
            }
            return total
        }
        try await runtime.launch()
        let handle = try await runtime.startWorkflow(
            longRunning, input: stepCount, options: WorkflowOptions(workflowID: "across-\(disruption.rawValue)"))
        #expect(await eventually { executions.distinctSteps >= 5 }, "the workflow never got going")

        try await runOnOwnThread { try disruption.apply(to: server) }
        #expect(executions.distinctSteps < stepCount, "the workflow finished before the server went away")

        let output = try await handle.result()
        #expect(output == (0..<stepCount).reduce(0, +))
        #expect(try await handle.status().state == .success)
        #expect(executions.counts == Array(repeating: 1, count: stepCount), "every step body ran exactly once")
        let steps = try await runtime.listSteps(workflowID: "across-\(disruption.rawValue)")
        #expect(steps.map(\.name) == (0..<stepCount).map { "step-\($0)" })
        #expect(steps.map(\.functionID) == Array(0..<stepCount))
        #expect(steps.map(\.output) == (0..<stepCount).map { JSONValue.integer(Int64($0)) })
        await runtime.shutdown(gracePeriod: .zero)
    }

    @Test func shutdownWhileTheServerIsDownReturnsAndTheNextProcessResumesTheRun() async throws {
        try await withDurableServer { server in
            let url = server.url(database: "shut_down_in_outage")
            let executions = StepExecutions()
            func open() async throws -> (DBOSRuntime, Workflow<Int, Int>) {
                let runtime = try await DBOSRuntime(configuration: DBOSConfiguration(
                    systemDatabaseURL: url, applicationVersion: "test", pollingInterval: .milliseconds(50)))
                let workflow = try runtime.register("outlasting") { (context: WorkflowContext, steps: Int) -> Int in
                    for index in 0..<steps {
                        try await context.runStep("step-\(index)") {
                            executions.record(index)
                            try await Task.sleep(for: .milliseconds(50))
                        }
                    }
                    return steps
                }
                try await runtime.launch()
                return (runtime, workflow)
            }
            let (first, workflow) = try await open()
            _ = try await first.startWorkflow(workflow, input: 20, options: WorkflowOptions(workflowID: "outlasting-1"))
            #expect(await eventually { executions.distinctSteps >= 3 })
            try await runOnOwnThread { try server.stopServer(mode: .fast) }

            // The engine retries while the server is down, but a shutdown must not wait for it.
            let clock = ContinuousClock()
            let start = clock.now
            await first.shutdown(gracePeriod: .seconds(1))
            #expect(clock.now - start < .seconds(10), "shutdown hung on the unreachable server")

            try await runOnOwnThread { try server.startServer() }
            let (second, _) = try await open()
            #expect(try await second.retrieveWorkflow(id: "outlasting-1", as: Int.self).result() == 20)
            let counts = executions.counts
            #expect(counts.count == 20 && counts.allSatisfy { $0 >= 1 })
            #expect(counts.filter { $0 > 1 }.count <= 1, "only the step in flight at the shutdown may run again: \(counts)")
            let names = try await second.listSteps(workflowID: "outlasting-1").map(\.name)
            #expect(names == (0..<20).map { "step-\($0)" })
            await second.shutdown(gracePeriod: .zero)
        }
    }

    @Test(arguments: Disruption.allCases)
    func aRecvWaitingAcrossAServerRestartGetsAMessageSentAfterIt(disruption: Disruption) async throws {
        try await withDurableServer { server in try await receiveAcross(disruption, of: server) }
    }

    /// A caller that must not wait long for a lost server (a one-shot `dbos-run` command) gets the
    /// connection error, naming the server, once its limit has passed; without a limit the same
    /// call waits for the server to come back.
    @Test func aCallWithAWaitLimitFailsOnceItPassesWhileTheServerIsDown() async throws {
        try await withDurableServer { server in
            let client = try await DBOSClient(systemDatabaseURL: server.url(database: "wait_limit"))
            _ = try await client.listWorkflows()
            try await runOnOwnThread { try server.stopServer(mode: .fast) }
            let clock = ContinuousClock()
            let start = clock.now
            await #expect {
                _ = try await ConnectionRetryDeadline.within(.seconds(2)) { try await client.listWorkflows() }
            } throws: { error in
                "\(error)".contains("127.0.0.1:\(server.port)")
            }
            let waited = clock.now - start
            #expect(waited >= .milliseconds(1_500) && waited < .seconds(20), "waited \(waited)")

            let restart = Task {
                try await Task.sleep(for: .seconds(2))
                try await runOnOwnThread { try server.startServer() }
            }
            #expect(try await client.listWorkflows().isEmpty)
            try await restart.value
            await client.close()
        }
    }

    private func receiveAcross(_ disruption: Disruption, of server: PostgresServer) async throws {
        let url = server.url(database: "recv_across_restart")
        // Long fallbacks: only the reconnected listener (or its catch-up re-check) can wake the recv in time.
        let receiving = try await DBOSRuntime(configuration: notifiedOnly(url: url, executorID: "receiver"))
        let listener = try receiving.register("patient-listener") { (context: WorkflowContext, _: String) -> String? in
            try await context.recv(String.self, topic: "after-restart", timeout: .seconds(120))
        }
        try await receiving.launch()
        let handle = try await receiving.startWorkflow(listener, input: "", options: WorkflowOptions(workflowID: "patient-1"))
        // recv's DBOS.sleep slot (its deadline) is written before it waits.
        #expect(await eventually { (try? await receiving.listSteps(workflowID: "patient-1").count) ?? 0 >= 1 })

        try await runOnOwnThread { try disruption.apply(to: server) }

        // Another process sends once the server is back.
        let sending = try await DBOSRuntime(configuration: DBOSConfiguration(
            systemDatabaseURL: url, executorID: "sender", applicationVersion: "test", recoversPendingWorkflows: false))
        let clock = ContinuousClock()
        let sentAt = clock.now
        try await sending.send(to: "patient-1", topic: "after-restart", message: "still here")
        await sending.shutdown(gracePeriod: .zero)
        #expect(try await handle.result() == "still here")
        #expect(clock.now - sentAt < .seconds(20), "the recv should wake on the notification, not at a 60 s poll")
        await receiving.shutdown(gracePeriod: .zero)
    }

    @Test func waitersInAnotherProcessAreWokenByNotificationsAfterARestart() async throws {
        try await withDurableServer { server in
            let url = server.url(database: "woken_after_restart")
            let first = try await DBOSRuntime(configuration: notifiedOnly(url: url, executorID: "process-a"))
            try first.register(queue: WorkflowQueue(name: "after-restart", pollingInterval: .seconds(60)))
            let publisher = try first.register("gated") { (context: WorkflowContext, _: String) -> String in
                _ = try await context.recv(String.self, topic: "go", timeout: .seconds(120))
                try await context.setEvent(key: "status", value: "published")
                return "finished"
            }
            _ = try first.register("doubled") { (_: WorkflowContext, input: Int) -> Int in input * 2 }
            try await first.launch()
            let second = try await DBOSRuntime(configuration: notifiedOnly(url: url, executorID: "process-b"))
            try await second.launch()

            _ = try await first.startWorkflow(publisher, input: "", options: WorkflowOptions(workflowID: "gated-1"))
            #expect(await eventually { (try? await first.listSteps(workflowID: "gated-1").count) ?? 0 >= 1 })
            async let event = second.getEvent(workflowID: "gated-1", key: "status", as: String.self, timeout: .seconds(120))
            async let completed = second.retrieveWorkflow(id: "gated-1", as: String.self).result()
            try await Task.sleep(for: .milliseconds(300))

            try await runOnOwnThread { try server.restart(mode: .fast) }

            let clock = ContinuousClock()
            let start = clock.now
            try await first.send(to: "gated-1", topic: "go", message: "go")
            #expect(try await event == "published")
            #expect(try await completed == "finished")
            #expect(clock.now - start < .seconds(20), "the second process's waits were not woken after the restart")

            let client = try await DBOSClient(systemDatabaseURL: url, pollingInterval: .seconds(60))
            let enqueuedAt = clock.now
            let queued = try await client.enqueue(workflowName: "doubled", queueName: "after-restart", input: 21)
            #expect(try await queued.result() == .integer(42))
            #expect(clock.now - enqueuedAt < .seconds(20), "the queue runner was not woken after the restart")
            await client.close()
            await second.shutdown(gracePeriod: .zero)
            await first.shutdown(gracePeriod: .zero)
        }
    }

    @Test func aDatabaseThatDoesNotExistIsCreated() async throws {
        let server = try await SharedPostgresServer.get()
        // Upper case and a dash: the name must be quoted, not folded to lower case.
        let name = "Created-By-DBOS-\(UUID().uuidString.prefix(8))"
        #expect(try await databaseExists(name, on: server) == false)

        let runtime = try await DBOSRuntime(configuration: DBOSConfiguration(
            systemDatabaseURL: server.url(database: name), applicationVersion: "test"))
        let greet = try runtime.register("greet") { (_: WorkflowContext, name: String) -> String in "hello \(name)" }
        try await runtime.launch()
        #expect(try await runtime.runWorkflow(greet, input: "new database") == "hello new database")
        await runtime.shutdown(gracePeriod: .zero)
        #expect(try await databaseExists(name, on: server))
    }

    @Test(arguments: [Disruption.fastRestart, .immediateRestart])
    func queuedRunsAllFinishOnceAcrossAServerRestart(disruption: Disruption) async throws {
        try await withDurableServer { server in
            let runtime = try await DBOSRuntime(configuration: DBOSConfiguration(
                systemDatabaseURL: server.url(database: "queued_across"), applicationVersion: "test",
                pollingInterval: .milliseconds(50)))
            let log = IntervalLog()
            try runtime.register(queue: WorkflowQueue(name: "limited", workerConcurrency: 2, pollingInterval: .milliseconds(50)))
            let work = try runtime.register("queued-work") { (context: WorkflowContext, index: Int) -> Int in
                try await context.runStep("work") { try await log.run(context.workflowID, for: .milliseconds(100)) }
                return index
            }
            try await runtime.launch()
            var handles: [WorkflowHandle<Int>] = []
            for index in 0..<20 {
                handles.append(try await runtime.startWorkflow(
                    work, input: index, options: WorkflowOptions(workflowID: "queued-\(index)", queueName: "limited")))
            }
            #expect(await eventually { log.all.count >= 3 }, "the queue never got going")
            try await runOnOwnThread { try disruption.apply(to: server) }
            #expect(log.all.count < 20, "the queue drained before the server went away")

            for (index, handle) in handles.enumerated() { #expect(try await handle.result() == index) }
            let ran = log.all.map(\.id)
            #expect(ran.count == 20 && Set(ran).count == 20, "every run's step ran exactly once: \(ran.sorted())")
            #expect(log.maximumOverlap <= 2, "worker concurrency exceeded")
            await runtime.shutdown(gracePeriod: .zero)
        }
    }

    @Test func workersInFourProcessesNeverExceedAQueuesGlobalLimits() async throws {
        // Four runtimes stand in for four processes; a notification wakes all their queue runners
        // at once, so their dequeues race. Each must count what the others claimed.
        let setup = try await TestRuntime(.postgres)
        defer { setup.directory.remove() }
        let log = IntervalLog()
        var runtimes: [DBOSRuntime] = []
        for worker in 0..<4 {
            let runtime = try await setup.make(executorID: "worker-\(worker)")
            try runtime.register(queue: WorkflowQueue(
                name: "shared", workerConcurrency: 3, globalConcurrency: 3, pollingInterval: .milliseconds(50)))
            try runtime.register(queue: WorkflowQueue(
                name: "rated", rateLimit: WorkflowQueue.RateLimit(limit: 4, period: .seconds(2)), pollingInterval: .milliseconds(50)))
            _ = try runtime.register("held") { (context: WorkflowContext, _: Int) -> Int in
                try await context.runStep("hold") { try await log.run(context.workflowID, for: .milliseconds(100)) }
                return 1
            }
            try await runtime.launch()
            runtimes.append(runtime)
        }
        let client = try await DBOSClient(systemDatabaseURL: setup.url, pollingInterval: .milliseconds(50))
        var handles: [WorkflowHandle<JSONValue>] = []
        for index in 0..<24 {
            handles.append(try await client.enqueue(
                workflowName: "held", queueName: "shared", input: index, options: WorkflowOptions(workflowID: "shared-\(index)")))
        }
        for handle in handles { #expect(try await handle.result() == .integer(1)) }
        #expect(log.maximumOverlap <= 3, "global concurrency exceeded")

        // A rate limit is global too: 4 starts per 2 s, whichever process starts them.
        var rated: [WorkflowHandle<JSONValue>] = []
        for index in 0..<8 {
            rated.append(try await client.enqueue(
                workflowName: "held", queueName: "rated", input: index, options: WorkflowOptions(workflowID: "rated-\(index)")))
        }
        // Every start within one second of the first enqueue lies within one 2 s window.
        try await Task.sleep(for: .seconds(1))
        let startedEarly = log.startOrder.filter { $0.hasPrefix("rated-") }.count
        #expect(startedEarly <= 4, "the rate limit was exceeded: \(startedEarly) started within one period")
        for handle in rated { #expect(try await handle.result() == .integer(1)) }

        await client.close()
        for runtime in runtimes { await runtime.shutdown(gracePeriod: .zero) }
    }

    @Test func workflowsFinishOnceWhileTheirConnectionsAreKilledOverAndOver() async throws {
        // pg_terminate_backend on every connection of the database, every 150 ms: network blips that
        // hit queries, commits and the listener at random points. Nothing may fail, run twice or be lost.
        let setup = try await TestRuntime(.postgres)
        defer { setup.directory.remove() }
        let runtime = try await setup.make()
        let executions = StepExecutions()
        try runtime.register(queue: WorkflowQueue(name: "blipped", workerConcurrency: 3, pollingInterval: .milliseconds(50)))
        let stepper = try runtime.register("stepper") { (context: WorkflowContext, offset: Int) -> Int in
            var total = 0
            for index in 0..<10 {
                total += try await context.runStep("step-\(index)") {
                    executions.record(offset + index)
                    try await Task.sleep(for: .milliseconds(20))
                    return index
                }
                try await context.setEvent(key: "progress", value: index)
            }
            let message = try await context.recv(String.self, topic: "finish", timeout: .seconds(60))
            return message == "finish" ? total : -1
        }
        try await runtime.launch()

        let killer = try connectionKiller(of: setup.url)
        var handles: [WorkflowHandle<Int>] = []
        for run in 0..<6 {
            handles.append(try await runtime.startWorkflow(
                stepper, input: run * 100,
                options: WorkflowOptions(workflowID: "blipped-\(run)", queueName: run.isMultiple(of: 2) ? "blipped" : nil)))
        }
        for run in 0..<6 {
            let progress = try await runtime.getEvent(workflowID: "blipped-\(run)", key: "progress", as: Int.self, timeout: .seconds(60))
            #expect(progress != nil)
            while try await runtime.getEvent(workflowID: "blipped-\(run)", key: "progress", as: Int.self, timeout: .seconds(60)) != 9 {
                try await Task.sleep(for: .milliseconds(50))
            }
            try await runtime.send(to: "blipped-\(run)", topic: "finish", message: "finish")
        }
        for handle in handles { #expect(try await handle.result() == 45) }
        killer.cancel()
        let killed = try await killer.value
        #expect(killed > 0, "no connection was killed: the test tested nothing")

        let expected = (0..<6).flatMap { run in (0..<10).map { run * 100 + $0 } }
        #expect(executions.counts.enumerated().filter { expected.contains($0.offset) }.allSatisfy { $0.element == 1 },
                "every step body ran exactly once")
        #expect(executions.distinctSteps == expected.count)
        for run in 0..<6 {
            let names = try await runtime.listSteps(workflowID: "blipped-\(run)").map(\.name)
            #expect(names.filter { $0.hasPrefix("step-") } == (0..<10).map { "step-\($0)" })
            #expect(names.filter { $0 == "DBOS.setEvent" }.count == 10)
        }
        await runtime.shutdown(gracePeriod: .zero)
    }

    @Test func aRoleThatMayConnectOnlyToItsOwnExistingDatabaseCanUseIt() async throws {
        // Managed PostgreSQL services often let an application's role reach its own database only:
        // an existing database must not need the `postgres` or `template1` maintenance databases.
        try await withDurableServer { server in
            let admin = try await PostgresConnection.connect(PostgresURL(server.url(database: "postgres")))
            do {
                try await admin.execute("CREATE ROLE confined LOGIN")
                try await admin.execute("CREATE DATABASE confined_app OWNER confined")
                try await admin.execute("REVOKE CONNECT ON DATABASE postgres, template1 FROM PUBLIC")
            } catch {
                admin.close()
                throw error
            }
            admin.close()
            let runtime = try await DBOSRuntime(configuration: DBOSConfiguration(
                systemDatabaseURL: "postgresql://confined@127.0.0.1:\(server.port)/confined_app", applicationVersion: "test"))
            let greet = try runtime.register("greet") { (_: WorkflowContext, name: String) -> String in "hello \(name)" }
            try await runtime.launch()
            #expect(try await runtime.runWorkflow(greet, input: "confined") == "hello confined")
            await runtime.shutdown(gracePeriod: .zero)
        }
    }

    @Test func manyConnectionsCreatingTheSameMissingDatabaseAtOnceAllSucceed() async throws {
        let server = try await SharedPostgresServer.get()
        let name = "raced_\(UUID().uuidString.prefix(8).lowercased())"
        let url = try PostgresURL(server.url(database: name))
        // The losers of the race see either duplicate_database (42P04) or, when both inserts reach
        // pg_database together, a unique violation (23505); neither is a failure.
        let created = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 {
                group.addTask { try await PostgresConnection.createDatabaseIfMissing(url) }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(created.filter { $0 }.count == 1, "exactly one call created it: \(created)")
        #expect(try await databaseExists(name, on: server))
    }

    @Test func migrationsFromFourProcessesAtOnceApplyTheSchemaOnce() async throws {
        // A fresh URL names a database that does not exist yet: the processes race to create it too.
        let setup = try await TestRuntime(.postgres)
        defer { setup.directory.remove() }
        let processes = try (0..<4).map { index in
            try ChildProcess(
                executable: builtExecutable(named: "dbos-run"), arguments: ["migrate", "--db", setup.url],
                outputPath: setup.directory.file("migrate-\(index).out"))
        }
        for process in processes {
            #expect(await process.waitForExit() == 0, "\(process.output)")
        }

        let dbosLevels = try await setup.rawQuery("SELECT version FROM dbos.dbos_migrations").map { $0.int("version") }
        #expect(dbosLevels == [PostgresSchema.dbosSchemaLevel])
        #expect(dbosLevels == [125])
        let swiftLevels = try await setup.rawQuery("SELECT version FROM dbos.dbos_swift_migrations").map { $0.int("version") }
        #expect(swiftLevels == [PostgresSchema.migrations.count])
        let tables = try await setup.rawQuery("""
            SELECT count(*) AS tables FROM information_schema.tables
            WHERE table_schema = 'dbos' AND table_name = 'workflow_status'
            """)
        #expect(tables.first?.int("tables") == 1)
    }

    @Test func aSchemaWrittenByANewerVersionIsRefusedAndANewerDBOSLevelIsKept() async throws {
        let setup = try await TestRuntime(.postgres)
        defer { setup.directory.remove() }
        try await setup.make().shutdown(gracePeriod: .zero)
        let latest = PostgresSchema.migrations.count

        // A newer DBOS (another language's library) raised its level: we keep its number and run.
        _ = try await setup.rawQuery("UPDATE dbos.dbos_migrations SET version = 200 RETURNING version")
        try await setup.make().shutdown(gracePeriod: .zero)
        #expect(try await setup.rawQuery("SELECT version FROM dbos.dbos_migrations").map { $0.int("version") } == [200])

        // A newer dbos-swift migrated it further: refused, and left as it is.
        _ = try await setup.rawQuery("UPDATE dbos.dbos_swift_migrations SET version = \(latest + 1) RETURNING version")
        let error = await #expect(throws: SystemDatabaseError.self) { _ = try await setup.make() }
        if case .schemaTooNew(let found, let supported)? = error {
            #expect(found == latest + 1 && supported == latest)
        } else {
            Issue.record("expected schemaTooNew, got \(String(describing: error))")
        }
        #expect(try await setup.rawQuery("SELECT version FROM dbos.dbos_swift_migrations").map { $0.int("version") } == [latest + 1])
    }

    @Test(arguments: [
        ("postgres://user:secret@127.0.0.1:1/db", "127.0.0.1:1"),
        // localhost resolves to two addresses, so libpq reports two failures over several lines.
        ("postgresql://user:secret@localhost:1/db?sslmode=disable", "localhost:1"),
    ])
    func anUnreachableServerIsReportedQuicklyInOneLineWithoutThePassword(url: String, server: String) async throws {
        let clock = ContinuousClock()
        let start = clock.now
        let error = await #expect(throws: (any Error).self) {
            _ = try await DBOSRuntime(configuration: DBOSConfiguration(systemDatabaseURL: url, applicationVersion: "test"))
        }
        #expect(clock.now - start < .seconds(10), "an unreachable server must not be retried forever at startup")
        expectOneLineWithoutPassword(error, naming: server)
    }

    @Test func aRejectedLoginIsReportedInOneLineWithoutThePassword() async throws {
        let server = try await SharedPostgresServer.get()
        let url = "postgresql://no_such_role:secret@127.0.0.1:\(server.port)/db"
        let error = await #expect(throws: (any Error).self) {
            _ = try await DBOSRuntime(configuration: DBOSConfiguration(systemDatabaseURL: url, applicationVersion: "test"))
        }
        expectOneLineWithoutPassword(error, naming: "127.0.0.1:\(server.port)")
        #expect(error.map { "\($0)" }?.contains("no_such_role") == true, "says why: \(String(describing: error))")
    }

    private func expectOneLineWithoutPassword(_ error: (any Error)?, naming server: String) {
        let description = error.map { "\($0)" } ?? ""
        #expect(!description.contains("\n"), "one line: \(description)")
        #expect(description.contains(server), "names the server: \(description)")
        #expect(!description.contains("secret"))
        #expect(!(error.map { String(reflecting: $0) } ?? "").contains("secret"))
        #expect(!(error?.localizedDescription.contains("secret") ?? false))
        #expect(!description.contains("search_path"), "shows the URL as given, not the engine's session options: \(description)")
    }

    @Test func notificationsFromAnotherProcessWakeWaitersWithoutPolling() async throws {
        let setup = try await TestRuntime(.postgres)
        defer { setup.directory.remove() }
        // Polls once a minute at most: everything below must be woken by a notification.
        let first = try await DBOSRuntime(configuration: notifiedOnly(url: setup.url, executorID: "process-a"))
        try first.register(queue: WorkflowQueue(name: "notified", pollingInterval: .seconds(60)))
        let listener = try first.register("inbox") { (context: WorkflowContext, _: String) -> String? in
            try await context.recv(String.self, topic: "mail", timeout: .seconds(120))
        }
        let publisher = try first.register("publisher") { (context: WorkflowContext, _: String) -> String in
            _ = try await context.recv(String.self, topic: "go", timeout: .seconds(120))
            try await context.setEvent(key: "status", value: "published")
            _ = try await context.recv(String.self, topic: "finish", timeout: .seconds(120))
            return "finished"
        }
        _ = try first.register("queued") { (_: WorkflowContext, input: Int) -> Int in input * 2 }
        let streamer = try first.register("streamer") { (context: WorkflowContext, _: String) -> Int in
            for index in 0..<3 {
                _ = try await context.recv(String.self, topic: "next", timeout: .seconds(120))
                try await context.writeStream(key: "values", value: index)
            }
            try await context.closeStream(key: "values")
            return 3
        }
        try await first.launch()
        let second = try await DBOSRuntime(configuration: notifiedOnly(url: setup.url, executorID: "process-b"))
        try await second.launch()
        let client = try await DBOSClient(systemDatabaseURL: setup.url, pollingInterval: .seconds(60))
        let clock = ContinuousClock()

        // (a) A recv in the first process receives a message the second sends.
        let inbox = try await first.startWorkflow(listener, input: "", options: WorkflowOptions(workflowID: "inbox-1"))
        #expect(await eventually { (try? await first.listSteps(workflowID: "inbox-1").count) ?? 0 >= 1 })
        var start = clock.now
        try await second.send(to: "inbox-1", topic: "mail", message: "from process b")
        #expect(try await inbox.result() == "from process b")
        #expect(clock.now - start < .seconds(10), "recv was not woken by the notification")

        // (b) getEvent in the second process sees an event a workflow of the first sets.
        let publishing = try await first.startWorkflow(
            publisher, input: "", options: WorkflowOptions(workflowID: "publisher-1"))
        start = clock.now
        async let event = second.getEvent(workflowID: "publisher-1", key: "status", as: String.self, timeout: .seconds(120))
        try await Task.sleep(for: .milliseconds(300))
        try await first.send(to: "publisher-1", topic: "go", message: "go")
        #expect(try await event == "published")
        #expect(clock.now - start < .seconds(10), "getEvent was not woken by the notification")

        // (c) result() in the second process returns when the first's workflow completes.
        start = clock.now
        async let completed = second.retrieveWorkflow(id: "publisher-1", as: String.self).result()
        try await Task.sleep(for: .milliseconds(300))
        try await first.send(to: "publisher-1", topic: "finish", message: "finish")
        #expect(try await completed == "finished")
        #expect(try await publishing.result() == "finished")
        #expect(clock.now - start < .seconds(10), "the wait for the result was not woken by the notification")

        // (d) A run a client enqueues is started by the first process's queue runner at once.
        start = clock.now
        let queued = try await client.enqueue(
            workflowName: "queued", queueName: "notified", input: 21, options: WorkflowOptions(workflowID: "queued-1"))
        #expect(try await queued.result() == .integer(42))
        #expect(clock.now - start < .seconds(10), "the queue runner was not woken by the notification")
        #expect(try await first.workflowStatus(id: "queued-1")?.executorID == "process-a")

        // (e) A stream read in the second process sees each value the first's workflow writes.
        let streaming = try await first.startWorkflow(streamer, input: "", options: WorkflowOptions(workflowID: "streamer-1"))
        start = clock.now
        async let streamed: [Int] = {
            var values: [Int] = []
            for try await value in second.readStream(workflowID: "streamer-1", key: "values", as: Int.self) {
                values.append(value)
            }
            return values
        }()
        for _ in 0..<3 {
            try await Task.sleep(for: .milliseconds(200))
            try await first.send(to: "streamer-1", topic: "next", message: "next")
        }
        #expect(try await streamed == [0, 1, 2])
        #expect(try await streaming.result() == 3)
        #expect(clock.now - start < .seconds(10), "the stream reader was not woken by the notifications")

        // (f) The client, which runs no queue, is not woken by every enqueue: it does not listen for
        // them (and its result() in (d) was still woken by the completion).
        func channels(_ runtime: DBOSRuntime) -> [String] {
            ((runtime.database as? SQLSystemDatabase)?.backend as? PostgresBackend)?.listenedChannels ?? []
        }
        #expect(channels(first).contains(PostgresBackend.Channel.queues))
        #expect(channels(client.runtime).contains(PostgresBackend.Channel.completions))
        #expect(!channels(client.runtime).contains(PostgresBackend.Channel.queues))

        await client.close()
        await second.shutdown(gracePeriod: .zero)
        await first.shutdown(gracePeriod: .zero)
    }

    /// A completion notifies (PostgreSQL's NOTIFY, which wakes every listening process) only while a
    /// process waits for that run's outcome: the runs nobody waits for elsewhere wake nobody.
    @Test func aCompletionNotifiesOnlyWhileAnotherProcessWaitsForIt() async throws {
        let setup = try await TestRuntime(.postgres)
        defer { setup.directory.remove() }
        let worker = try await DBOSRuntime(configuration: notifiedOnly(url: setup.url, executorID: "worker"))
        let gated = try worker.register("gated") { (context: WorkflowContext, _: String) -> String in
            _ = try await context.recv(String.self, topic: "go", timeout: .seconds(120))
            return "done"
        }
        try await worker.launch()
        let waiter = try await DBOSRuntime(configuration: notifiedOnly(url: setup.url, executorID: "waiter"))
        try await waiter.launch()
        let received = Mutex<[String]>([])
        let observer = try await PostgresListener.start(
            url: PostgresURL(setup.url), channels: [PostgresBackend.Channel.completions],
            onNotification: { notification in received.withLock { $0.append(notification.payload) } })
        defer { observer.stop() }

        // Nobody elsewhere waits: no notification.
        let alone = try await worker.startWorkflow(gated, input: "", options: WorkflowOptions(workflowID: "alone-1"))
        try await worker.send(to: "alone-1", topic: "go", message: "go")
        #expect(try await alone.result() == "done")

        // The other process waits: the completion notifies, and its wait ends without polling.
        let waited = try await worker.startWorkflow(gated, input: "", options: WorkflowOptions(workflowID: "waited-1"))
        let clock = ContinuousClock()
        let start = clock.now
        async let result = waiter.retrieveWorkflow(id: "waited-1", as: String.self).result()
        try await Task.sleep(for: .milliseconds(300))
        try await worker.send(to: "waited-1", topic: "go", message: "go")
        #expect(try await result == "done")
        #expect(clock.now - start < .seconds(10), "the wait was not woken by the notification")
        #expect(try await waited.result() == "done")

        // The wait is over: no notification again.
        let after = try await worker.startWorkflow(gated, input: "", options: WorkflowOptions(workflowID: "after-1"))
        try await worker.send(to: "after-1", topic: "go", message: "go")
        #expect(try await after.result() == "done")
        let waitedNotified = await eventually(timeout: .seconds(5)) { received.withLock { $0.contains("waited-1") } }
        try await Task.sleep(for: .milliseconds(500))
        #expect(waitedNotified)
        #expect(received.withLock { $0.filter { $0 != "waited-1" } }.isEmpty, "notified: \(received.withLock { $0 })")

        await waiter.shutdown(gracePeriod: .zero)
        await worker.shutdown(gracePeriod: .zero)
    }
}

/// How many times each step body of a workflow ran, from whatever task runs it.
private final class StepExecutions: Sendable {
    private let runs = Mutex<[Int: Int]>([:])

    func record(_ index: Int) { runs.withLock { $0[index, default: 0] += 1 } }

    /// How many different steps have started.
    var distinctSteps: Int { runs.withLock { $0.count } }

    /// The execution count of steps 0, 1, 2, ... up to the highest one that ran.
    var counts: [Int] {
        runs.withLock { runs in
            guard let last = runs.keys.max() else { return [] }
            return (0...last).map { runs[$0] ?? 0 }
        }
    }
}

/// Terminates every connection to the database of `url` every 100 ms until cancelled; its value is
/// how many it terminated.
func connectionKiller(of url: String) throws -> Task<Int, any Error> {
    let target = try PostgresURL(url)
    let database = try #require(target.database)
    return Task {
        let admin = try await PostgresConnection.connect(target.withDatabase("postgres"))
        defer { admin.close() }
        var killed = 0
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(100))
            let rows = try await admin.query("""
                SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity
                WHERE datname = \(database) AND pid <> pg_backend_pid()
                """)
            killed += rows.count
        }
        return killed
    }
}

/// A runtime configuration that polls once a minute at most, so only notifications can wake its
/// waits within a test; it recovers nothing, as another process's runs are not its own.
private func notifiedOnly(url: String, executorID: String) -> DBOSConfiguration {
    DBOSConfiguration(
        systemDatabaseURL: url, executorID: executorID, applicationVersion: "test",
        recoversPendingWorkflows: false, pollingInterval: .seconds(60), notificationFallbackInterval: .seconds(60))
}

/// Whether a database of this name exists on `server`.
private func databaseExists(_ name: String, on server: PostgresServer) async throws -> Bool {
    let connection = try await PostgresConnection.connect(PostgresURL(server.url(database: "postgres")))
    defer { connection.close() }
    return try await !connection.query("SELECT 1 AS found FROM pg_database WHERE datname = \(name)").isEmpty
}

/// Runs `body` with a server of its own (see `startDurableServer`), stopped however `body` ends.
private func withDurableServer(_ body: (PostgresServer) async throws -> Void) async throws {
    let server = try await startDurableServer()
    do {
        try await body(server)
    } catch {
        _ = try? await runOnOwnThread { server.stop() }
        throw error
    }
    _ = try? await runOnOwnThread { server.stop() }
}

/// Starts a server of the test's own whose commits survive a crash. Test servers run with
/// `synchronous_commit = off` for speed; an immediate stop then loses the last ~200 ms of commits,
/// as it would on any server configured so, and the engine can only keep what the server keeps.
private func startDurableServer() async throws -> PostgresServer {
    let server = try await runOnOwnThread { try PostgresServer.start() }
    do {
        let connection = try await PostgresConnection.connect(PostgresURL(server.url(database: "postgres")))
        defer { connection.close() }
        try await connection.execute("ALTER SYSTEM SET synchronous_commit = on")
        _ = try await connection.query("SELECT pg_reload_conf()")
    } catch {
        _ = try? await runOnOwnThread { server.stop() }
        throw error
    }
    return server
}
