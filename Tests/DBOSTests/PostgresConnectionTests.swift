import DBOSTestSupport
import Foundation
import Synchronization
import Testing

@testable import DBOS

/// One throwaway cluster shared by the tests that do not disturb the server; started on first use.
enum SharedPostgresServer {
    // Started on a thread of its own: initdb and pg_ctl take seconds, which would otherwise hold
    // cooperative threads (and, through the lazy initialization, every test waiting for it).
    private static let starting = Task { try await runOnOwnThread { try PostgresServer.start() } }

    static func get() async throws -> PostgresServer {
        try await starting.value
    }

    static func url(database: String = "postgres") async throws -> PostgresURL {
        try PostgresURL(await get().url(database: database))
    }
}

/// A table name no other test uses, so tests can run in parallel on the shared server.
func uniqueTableName(_ prefix: String) -> String {
    "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
}

@Suite struct PostgresConnectionURLTests {
    @Test func parsesEveryPartOfAURL() throws {
        let url = try PostgresURL(
            "postgresql://dbos%40user:p%40ss:word@db.example.com:6543/my%20db?sslmode=require&connect_timeout=5&application_name=app")
        #expect(url.user == "dbos@user")
        #expect(url.password == "p@ss:word")
        #expect(url.host == "db.example.com")
        #expect(url.port == 6543)
        #expect(url.database == "my db")
        #expect(url.parameters == ["sslmode": "require", "connect_timeout": "5", "application_name": "app"])
        #expect(url.hostAndPort == "db.example.com:6543")
    }

    @Test func redactedFormNeverShowsThePassword() throws {
        let url = try PostgresURL("postgres://user:secret@host:5432/db")
        #expect(url.redacted == "postgres://user:***@host:5432/db")
        #expect(!url.description.contains("secret"))
        #expect(!"\(url)".contains("secret"))
        let withoutPort = try PostgresURL("postgres://user:secret@host/db?sslmode=disable")
        #expect(withoutPort.redacted == "postgres://user:***@host:5432/db?sslmode=disable")
        let passwordInQuery = try PostgresURL("postgres://user@host/db?password=secret")
        #expect(passwordInQuery.password == "secret")
        #expect(!passwordInQuery.redacted.contains("secret"))
    }

    @Test func unixSocketDirectoryComesFromTheHostParameterOrAnEncodedHost() throws {
        let fromQuery = try PostgresURL("postgres://me@/app?host=/var/run/postgresql")
        #expect(fromQuery.host == "/var/run/postgresql")
        #expect(fromQuery.isUnixSocket)
        #expect(fromQuery.database == "app")
        let encoded = try PostgresURL("postgres://me@%2Ftmp%2Fsockets:5433/app")
        #expect(encoded.host == "/tmp/sockets")
        #expect(encoded.port == 5433)
        #expect(encoded.hostAndPort == "/tmp/sockets:5433")
        #expect(!encoded.connectionKeywords.contains { $0.keyword == "keepalives_idle" })
    }

    @Test func ipv6HostsAndDefaultsParse() throws {
        let ipv6 = try PostgresURL("postgres://[::1]:5444/db")
        #expect(ipv6.host == "::1")
        #expect(ipv6.port == 5444)
        #expect(ipv6.hostAndPort == "[::1]:5444")
        let minimal = try PostgresURL("postgres://localhost")
        #expect(minimal.user == nil && minimal.password == nil && minimal.database == nil)
        #expect(minimal.hostAndPort == "localhost:5432")
    }

    @Test func malformedURLsAreRejectedWithoutEchoingThem() {
        for text in ["mysql://u:secret@h/db", "postgres://u:secret@h:99999/db", "u:secret@h/db", "postgres://u:secret@h:x/db"] {
            #expect {
                try PostgresURL(text)
            } throws: { error in
                let error = error as? PostgresError
                return error?.kind == .invalidURL && !(error?.description.contains("secret") ?? true)
            }
        }
    }

    @Test func maintenanceCopyPointsAtAnotherDatabase() throws {
        let url = try PostgresURL("postgres://u:pw@h:1234/app?sslmode=prefer")
        let maintenance = url.withDatabase("postgres")
        #expect(maintenance.database == "postgres")
        #expect(maintenance.host == "h" && maintenance.port == 1234 && maintenance.password == "pw")
        #expect(maintenance.parameters["sslmode"] == "prefer")
    }

    @Test func libpqKeywordsCarryEveryPartAndOurDefaults() throws {
        let url = try PostgresURL("postgres://u:pw@h:1234/app?sslmode=require&connect_timeout=3")
        let keywords = Dictionary(uniqueKeysWithValues: url.connectionKeywords.map { ($0.keyword, $0.value) })
        #expect(keywords["host"] == "h")
        #expect(keywords["port"] == "1234")
        #expect(keywords["user"] == "u")
        #expect(keywords["password"] == "pw")
        #expect(keywords["dbname"] == "app")
        #expect(keywords["sslmode"] == "require")
        #expect(keywords["connect_timeout"] == "3")
        #expect(keywords["client_encoding"] == "UTF8")
    }
}

@Suite struct PostgresConnectionTests {
    @Test func everyValueKindAndNullRoundTripsAsABindParameter() async throws {
        let connection = try await PostgresConnection.connect(SharedPostgresServer.url())
        defer { connection.close() }
        let rows = try await connection.query("""
            SELECT \(Int64.max)::int8 AS big, \(-7)::int4 AS small, \(2.5)::float8 AS ratio,
                   \("héllo 👋")::text AS greeting, \(true)::bool AS yes, \(false)::bool AS no,
                   \(nil as String?)::text AS nothing, \(nil as Int?)::int8 AS no_number,
                   \(Double.infinity)::float8 AS infinite, 12.25::numeric AS exact, 3::int2 AS tiny,
                   \(SQLValue.null)::text IS NULL AS null_is_null
            """)
        #expect(rows.count == 1)
        let row = try #require(rows.first)
        #expect(row["big"] == .integer(Int64.max))
        #expect(row["small"] == .integer(-7))
        #expect(row["ratio"] == .double(2.5))
        #expect(row["greeting"] == .text("héllo 👋"))
        #expect(row["yes"] == .bool(true))
        #expect(row["no"] == .bool(false))
        #expect(row["nothing"] == .null)
        #expect(row["no_number"] == .null)
        #expect(row["infinite"] == .double(.infinity))
        #expect(row["exact"] == .double(12.25))
        #expect(row["tiny"] == .integer(3))
        #expect(row["null_is_null"] == .bool(true))
    }

    @Test func metacharactersInValuesCannotInjectSQL() async throws {
        let connection = try await PostgresConnection.connect(SharedPostgresServer.url())
        defer { connection.close() }
        let table = uniqueTableName("injection")
        try await connection.execute("CREATE TABLE \(unescaped: table) (value text)")
        let hostile = #"'); DROP TABLE \#(table); -- "quoted" $1 \ ; '' ?1"#
        #expect(try await connection.execute("INSERT INTO \(unescaped: table) VALUES (\(hostile))") == 1)
        let rows = try await connection.query("SELECT value FROM \(unescaped: table) WHERE value = \(hostile)")
        #expect(rows.map { $0.string("value") } == [hostile])
        try await connection.execute("DROP TABLE \(unescaped: table)")
    }

    @Test func duplicateKeyIsClassifiedAsUniqueViolation() async throws {
        let connection = try await PostgresConnection.connect(SharedPostgresServer.url())
        defer { connection.close() }
        let table = uniqueTableName("unique")
        try await connection.execute("CREATE TABLE \(unescaped: table) (id text PRIMARY KEY)")
        try await connection.execute("INSERT INTO \(unescaped: table) VALUES (\("a"))")
        let error = await #expect(throws: PostgresError.self) {
            try await connection.execute("INSERT INTO \(unescaped: table) VALUES (\("a"))")
        }
        #expect(error?.isUniqueViolation == true)
        #expect(error?.sqlState == "23505")
        #expect(error?.isConnectionLost == false)
        #expect(error?.isSerializationFailure == false)
        #expect(error?.detail?.contains("(id)=(a)") == true)
        // The connection stays usable after a statement error.
        #expect(try await connection.query("SELECT count(*) AS n FROM \(unescaped: table)").first?.int("n") == 1)
    }

    @Test func syntaxErrorsCarryTheStatementButNotItsValues() async throws {
        let connection = try await PostgresConnection.connect(SharedPostgresServer.url())
        defer { connection.close() }
        let error = await #expect(throws: PostgresError.self) {
            try await connection.query("SELEC \("value-not-shown")")
        }
        #expect(error?.sqlState == "42601")
        #expect(error?.statement == "SELEC $1")
        #expect(error?.description.contains("value-not-shown") == false)
    }

    @Test func thrownErrorRollsTheTransactionBack() async throws {
        struct Abort: Error {}
        let connection = try await PostgresConnection.connect(SharedPostgresServer.url())
        defer { connection.close() }
        let table = uniqueTableName("rollback")
        try await connection.execute("CREATE TABLE \(unescaped: table) (id int)")
        await #expect(throws: Abort.self) {
            try await connection.transaction { transaction in
                try transaction.execute("INSERT INTO \(unescaped: table) VALUES (\(1))")
                throw Abort()
            }
        }
        let committed = try await connection.transaction(isolationLevel: .serializable) { transaction in
            try transaction.execute("INSERT INTO \(unescaped: table) VALUES (\(2))")
            return try transaction.query("SELECT count(*) AS n FROM \(unescaped: table)").first?.int("n")
        }
        #expect(committed == 1)
        let ids = try await connection.query("SELECT id FROM \(unescaped: table)").map { $0.int("id") }
        #expect(ids == [2])
        // A failed statement inside the body also rolls back, and the session is usable afterwards.
        await #expect(throws: PostgresError.self) {
            try await connection.transaction { transaction in
                try transaction.execute("INSERT INTO \(unescaped: table) VALUES (\(3))")
                try transaction.execute("INSERT INTO no_such_table VALUES (1)")
            }
        }
        #expect(try await connection.query("SELECT id FROM \(unescaped: table)").count == 1)
        // A body that swallows a statement error does not get a silent rollback reported as success.
        let aborted = await #expect(throws: PostgresError.self) {
            try await connection.transaction { transaction in
                try transaction.execute("INSERT INTO \(unescaped: table) VALUES (\(4))")
                _ = try? transaction.execute("INSERT INTO no_such_table VALUES (1)")
            }
        }
        #expect(aborted?.sqlState == "25P02")
        #expect(try await connection.query("SELECT id FROM \(unescaped: table)").count == 1)
    }

    @Test func preparedStatementsArePreparedOncePerSession() async throws {
        let connection = try await PostgresConnection.connect(SharedPostgresServer.url())
        defer { connection.close() }
        for number in 1...3 {
            let rows = try await connection.query("SELECT \(number)::int8 + 1 AS next", prepared: true)
            #expect(rows.first?.int("next") == number + 1)
        }
        #expect(try await connection.preparedStatementCount == 1)
        _ = try await connection.query("SELECT \("x")::text AS other", prepared: true)
        #expect(try await connection.preparedStatementCount == 2)
        let server = try await connection.query("SELECT count(*) AS n FROM pg_prepared_statements")
        #expect(server.first?.int("n") == 2)
        // A session that lost its statements (DISCARD ALL) prepares them again.
        try await connection.execute("DISCARD ALL")
        await #expect(throws: PostgresError.self) {
            try await connection.query("SELECT \(1)::int8 + 1 AS next", prepared: true)
        }
        #expect(try await connection.query("SELECT \(1)::int8 + 1 AS next", prepared: true).first?.int("next") == 2)
    }

    @Test func unreachableServerErrorNamesHostAndPortButNotThePassword() async throws {
        let url = try PostgresURL("postgres://someone:TopSecret99@127.0.0.1:1/app?connect_timeout=2")
        let error = await #expect(throws: PostgresError.self) {
            try await PostgresConnection.connect(url)
        }
        let message = error?.description ?? ""
        #expect(message.hasPrefix("cannot connect to PostgreSQL at 127.0.0.1:1: "))
        #expect(!message.contains("TopSecret99"))
        #expect(!message.contains("\n"))
        #expect(error?.isConnectionLost == true)
    }

    @Test func unknownDatabaseIsNotRetriedAsAConnectionLoss() async throws {
        let url = try await SharedPostgresServer.url(database: "no_such_database_here")
        let error = await #expect(throws: PostgresError.self) {
            try await PostgresConnection.connect(url)
        }
        #expect(error?.kind == .connectionRejected)
        #expect(error?.isConnectionLost == false)
    }

    @Test func creatingAnExistingDatabaseIsANoOp() async throws {
        let name = "dbos \"quoted\" \(UUID().uuidString.prefix(6))"
        let url = try await SharedPostgresServer.url().withDatabase(name)
        #expect(try await PostgresConnection.createDatabaseIfMissing(url) == true)
        #expect(try await PostgresConnection.createDatabaseIfMissing(url) == false)
        let connection = try await PostgresConnection.connect(url)
        defer { connection.close() }
        #expect(try await connection.query("SELECT current_database() AS name").first?.string("name") == name)
    }

    @Test func noticesDoNotBreakTheSession() async throws {
        let connection = try await PostgresConnection.connect(SharedPostgresServer.url())
        defer { connection.close() }
        try await connection.execute("DO $$ BEGIN RAISE NOTICE 'hello from the server'; END $$")
        #expect(try await connection.query("SELECT 1 AS one").first?.int("one") == 1)
    }
}

/// A thread-safe counter that remembers its highest value, shared by concurrent test tasks.
final class PeakCounter: Sendable {
    private let current = Atomic<Int>(0)
    private let peak = Atomic<Int>(0)

    func increment() {
        let now = current.add(1, ordering: .relaxed).newValue
        peak.max(now, ordering: .relaxed)
    }

    func decrement() { current.subtract(1, ordering: .relaxed) }

    var value: Int { current.load(ordering: .relaxed) }
    var maximum: Int { peak.load(ordering: .relaxed) }
}

/// The first element `stream` yields within `timeout`, or nil.
func firstElement<Element: Sendable>(of stream: AsyncStream<Element>, within timeout: Duration) async -> Element? {
    await withTaskGroup(of: Element?.self) { group in
        group.addTask {
            var iterator = stream.makeAsyncIterator()
            return await iterator.next()
        }
        group.addTask {
            try? await Task.sleep(for: timeout)
            return nil
        }
        let first = await group.next() ?? nil
        group.cancelAll()
        return first
    }
}

@Suite struct PostgresConnectionPoolTests {
    @Test func fiftyConcurrentQueriesShareAPoolOfFour() async throws {
        let pool = PostgresConnectionPool(url: try await SharedPostgresServer.url(), maximumConnections: 4)
        defer { pool.close() }
        let lent = PeakCounter()
        let numbers = try await withThrowingTaskGroup(of: Int.self) { group in
            for number in 0..<50 {
                group.addTask {
                    try await pool.withConnection { connection in
                        lent.increment()
                        defer { lent.decrement() }
                        let rows = try await connection.query("SELECT \(number)::int8 AS n, pg_sleep(0.01)::text AS slept")
                        return rows.first?.int("n") ?? -1
                    }
                }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(numbers.sorted() == Array(0..<50))
        #expect(pool.openConnectionCount <= 4)
        #expect((1...4).contains(lent.maximum))
    }

    @Test func connectionThatLostItsLinkIsReplaced() async throws {
        let url = try await SharedPostgresServer.url()
        let pool = PostgresConnectionPool(url: url, maximumConnections: 1)
        defer { pool.close() }
        let firstPID = try await pool.withConnection { try await $0.query("SELECT pg_backend_pid() AS pid").first?.int("pid") }
        let admin = try await PostgresConnection.connect(url)
        defer { admin.close() }
        _ = try await admin.query("SELECT pg_terminate_backend(\(firstPID))")
        let error = await #expect(throws: PostgresError.self) {
            try await pool.withConnection { try await $0.query("SELECT 1 AS one") }
        }
        #expect(error?.isConnectionLost == true)
        #expect(pool.openConnectionCount == 0)
        let secondPID = try await pool.withConnection { try await $0.query("SELECT pg_backend_pid() AS pid").first?.int("pid") }
        #expect(secondPID != nil && secondPID != firstPID)
    }

    @Test func waitingForABusyPoolCanBeCancelled() async throws {
        let pool = PostgresConnectionPool(url: try await SharedPostgresServer.url(), maximumConnections: 1)
        defer { pool.close() }
        let (held, heldContinuation) = AsyncStream.makeStream(of: Void.self)
        let holder = Task {
            try await pool.withConnection { _ in
                heldContinuation.yield()
                try await Task.sleep(for: .seconds(30))
            }
        }
        _ = await firstElement(of: held, within: .seconds(10))
        let waiter = Task { try await pool.withConnection { try await $0.query("SELECT 1 AS one") } }
        try await Task.sleep(for: .milliseconds(100))
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        holder.cancel()
        _ = await holder.result
        #expect(try await pool.withConnection { try await $0.query("SELECT 1 AS one") }.first?.int("one") == 1)
    }

    @Test func retryBackoffDoublesFromOneHundredMillisecondsUpToFiveSeconds() {
        let policy = PostgresRetryPolicy()
        #expect(policy.delay(afterAttempt: 0) == .milliseconds(100))
        #expect(policy.delay(afterAttempt: 1) == .milliseconds(200))
        #expect(policy.delay(afterAttempt: 5) == .milliseconds(3200))
        #expect(policy.delay(afterAttempt: 6) == .seconds(5))
        #expect(policy.delay(afterAttempt: 100) == .seconds(5))
    }

    @Test func retryingGivesUpAfterTheTotalDurationAndSkipsOtherErrors() async throws {
        let unreachable = try PostgresURL("postgres://u:pw@127.0.0.1:1/db?connect_timeout=1")
        let attempts = PeakCounter()
        let clock = ContinuousClock()
        let start = clock.now
        let lost = await #expect(throws: PostgresError.self) {
            try await retryingOnConnectionLoss(policy: PostgresRetryPolicy(maximumTotalDuration: .seconds(10))) {
                attempts.increment()
                return try await PostgresConnection.connect(unreachable)
            }
        }
        #expect(lost?.isConnectionLost == true)
        #expect(attempts.value > 1)
        #expect(clock.now - start < .seconds(30))

        let connection = try await PostgresConnection.connect(SharedPostgresServer.url())
        defer { connection.close() }
        let syntaxAttempts = PeakCounter()
        await #expect(throws: PostgresError.self) {
            try await retryingOnConnectionLoss {
                syntaxAttempts.increment()
                return try await connection.query("SELEC 1")
            }
        }
        #expect(syntaxAttempts.value == 1)
    }
}

@Suite struct PostgresConnectionListenerTests {
    @Test func notificationFromAnotherConnectionArrives() async throws {
        let url = try await SharedPostgresServer.url()
        let channel = uniqueTableName("Channel")
        let (notifications, continuation) = AsyncStream.makeStream(of: PostgresNotification.self)
        let listener = try await PostgresListener.start(url: url, channels: [channel, "unused_channel"]) {
            continuation.yield($0)
        }
        defer { listener.stop() }
        let sender = try await PostgresConnection.connect(url)
        defer { sender.close() }
        _ = try await sender.query("SELECT pg_notify(\(channel), \("workflow-1::topic"))")
        // The listener has no polling: a notification arrives or never does. The bound only keeps
        // a broken listener from hanging the test (latency is measured by the benchmarks).
        let received = await firstElement(of: notifications, within: .seconds(10))
        #expect(received?.channel == channel)
        #expect(received?.payload == "workflow-1::topic")
    }
}

/// Tests that stop or restart the server get a cluster of their own, so the shared one stays up.
@Suite(.serialized) final class PostgresConnectionOutageTests {
    let server: PostgresServer

    init() throws {
        server = try PostgresServer.start()
    }

    deinit { server.stop() }

    @Test func listenerReconnectsAfterAnImmediateRestartAndDeliversAgain() async throws {
        let url = try PostgresURL(server.url())
        let (notifications, notificationContinuation) = AsyncStream.makeStream(of: PostgresNotification.self)
        let (reconnects, reconnectContinuation) = AsyncStream.makeStream(of: Void.self)
        let listener = try await PostgresListener.start(
            url: url, channels: ["dbos_test_channel"],
            onNotification: { notificationContinuation.yield($0) },
            onReconnect: { reconnectContinuation.yield() })
        defer { listener.stop() }

        try await notify(url, payload: "before")
        #expect(await firstElement(of: notifications, within: .seconds(10))?.payload == "before")

        try server.restart(mode: .immediate)
        #expect(await firstElement(of: reconnects, within: .seconds(30)) != nil)

        try await notify(url, payload: "after")
        #expect(await firstElement(of: notifications, within: .seconds(10))?.payload == "after")
    }

    @Test func queryDuringAnOutageFailsAsConnectionLossAndRetrySucceedsOnceTheServerIsBack() async throws {
        let url = try PostgresURL(server.url())
        let pool = PostgresConnectionPool(url: url, maximumConnections: 2)
        defer { pool.close() }
        _ = try await pool.withConnection { try await $0.query("SELECT 1 AS one") }
        let connection = try await PostgresConnection.connect(url)
        defer { connection.close() }

        try server.stopServer(mode: .fast)
        let error = await #expect(throws: PostgresError.self) {
            try await connection.query("SELECT 1 AS one")
        }
        #expect(error?.isConnectionLost == true)

        let server = server
        let restarter = Task.detached {
            try await Task.sleep(for: .seconds(1))
            try server.startServer()
        }
        let answer = try await retryingOnConnectionLoss(policy: PostgresRetryPolicy(maximumTotalDuration: .seconds(60))) {
            try await pool.withConnection { try await $0.query("SELECT 42 AS answer").first?.int("answer") }
        }
        #expect(answer == 42)
        try await restarter.value

        try await connection.reset()
        #expect(try await connection.query("SELECT 1 AS one").first?.int("one") == 1)
    }

    private func notify(_ url: PostgresURL, payload: String) async throws {
        let sender = try await PostgresConnection.connect(url)
        defer { sender.close() }
        _ = try await sender.query("SELECT pg_notify(\("dbos_test_channel"), \(payload))")
    }
}
