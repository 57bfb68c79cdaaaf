import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A throwaway PostgreSQL cluster for tests: its own data directory, port and socket directory, so
/// tests never depend on (or disturb) a server installed on the machine.
///
/// Every failure throws `PostgresServer.Failure` carrying the command's output, so a machine without
/// PostgreSQL makes the tests fail with the reason instead of silently skipping them.
public final class PostgresServer: Sendable {
    /// A command that failed, with what it printed.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// How `pg_ctl stop` shuts the server down.
    public enum ShutdownMode: String, Sendable {
        /// Disconnect clients cleanly (SQLSTATE 57P01), then stop.
        case fast
        /// Kill backends without cleanup, like a crash; recovery runs on the next start.
        case immediate
    }

    /// The TCP port on 127.0.0.1.
    public let port: Int
    /// The temporary directory holding the data directory, socket and log.
    public let directory: String
    private let binDirectory: String
    private var dataDirectory: String { "\(directory)/data" }
    private var logFile: String { "\(directory)/server.log" }

    /// The connection URL for `database` (superuser `postgres`, trust authentication).
    public func url(database: String = "postgres") -> String {
        "postgresql://postgres@127.0.0.1:\(port)/\(database)"
    }

    /// Creates a cluster with `initdb` and starts it. Binaries come from `PATH` or the newest
    /// `/usr/lib/postgresql/*/bin`. When running as root, the cluster is run by the `postgres` user,
    /// since PostgreSQL refuses to run as root.
    ///
    /// The cluster trades durability for speed (`fsync`, `synchronous_commit` and `full_page_writes`
    /// off); `settings` override any `postgresql.conf` setting, e.g. `synchronous_commit: "on"` for a
    /// test that stops the server with `.immediate` and needs every acknowledged commit to survive.
    public static func start(settings: [String: String] = [:]) throws -> PostgresServer {
        let binDirectory = try findBinDirectory()
        var lastFailure: (any Error)?
        // Another process may take the port between our probe and the server's bind: try again.
        for _ in 0..<3 {
            let directory = NSTemporaryDirectory() + "dbos-pg-\(UUID().uuidString.prefix(8))"
            let server = PostgresServer(port: try freePort(), directory: directory, binDirectory: binDirectory)
            do {
                try server.initialize(settings: settings)
                try server.startServer()
                register(server)
                return server
            } catch {
                lastFailure = error
                try? server.runTool("pg_ctl", ["-D", server.dataDirectory, "-m", "immediate", "-w", "stop"])
                try? FileManager.default.removeItem(atPath: directory)
            }
        }
        throw lastFailure!
    }

    private init(port: Int, directory: String, binDirectory: String) {
        self.port = port
        self.directory = directory
        self.binDirectory = binDirectory
    }

    /// Stops the server and deletes its files.
    public func stop() {
        try? stopServer(mode: .immediate)
        try? FileManager.default.removeItem(atPath: directory)
        Self.unregister(self)
    }

    /// Stops and starts the server on the same port, dropping every connection.
    public func restart(mode: ShutdownMode = .fast) throws {
        try stopServer(mode: mode)
        try startServer()
    }

    /// Stops the server, keeping its data, for outage tests; `startServer()` brings it back.
    public func stopServer(mode: ShutdownMode = .fast) throws {
        try runTool("pg_ctl", ["-D", dataDirectory, "-m", mode.rawValue, "-w", "-t", "60", "stop"])
    }

    /// Starts the (stopped) server and waits until it accepts connections.
    public func startServer() throws {
        try runTool("pg_ctl", ["-D", dataDirectory, "-l", logFile, "-w", "-t", "60", "start"])
    }

    /// Runs one SQL statement as the superuser, over the Unix socket.
    public func execute(_ statement: String, database: String = "postgres") throws {
        // psql sits next to the real pg_ctl, which PATH may only hold a link to.
        let tools = URL(fileURLWithPath: "\(binDirectory)/pg_ctl").resolvingSymlinksInPath().deletingLastPathComponent().path
        try runTool(tools + "/psql", [
            "-h", directory, "-p", "\(port)", "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-qc", statement,
        ])
    }

    /// Makes TCP connections prove their password (scram-sha-256) from now on; the Unix socket stays trusted.
    public func requirePasswords() throws {
        let path = "\(dataDirectory)/pg_hba.conf"
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        let changed = lines.map { $0.hasPrefix("host") ? $0.replacingOccurrences(of: "trust", with: "scram-sha-256") : String($0) }
        try changed.joined(separator: "\n").write(toFile: path, atomically: false, encoding: .utf8)
        try runTool("pg_ctl", ["-D", dataDirectory, "-w", "reload"])
    }

    private func initialize(settings overrides: [String: String]) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if Self.isRoot {
            try Self.run("/bin/chown", ["postgres:postgres", directory])
        }
        try runTool("initdb", [
            "-D", dataDirectory, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync",
        ])
        // Settings go into the configuration file rather than `pg_ctl -o`, so restarts keep them.
        let settings = """

            listen_addresses = '127.0.0.1'
            port = \(port)
            unix_socket_directories = '\(directory)'
            fsync = off
            synchronous_commit = off
            full_page_writes = off
            max_connections = 500
            shared_buffers = 32MB
            max_wal_size = 1GB
            log_min_messages = warning

            """ + overrides.sorted { $0.key < $1.key }.map { "\($0.key) = '\($0.value)'\n" }.joined()
        let configuration = FileHandle(forWritingAtPath: "\(dataDirectory)/postgresql.conf")
        guard let configuration else { throw Failure(description: "cannot open \(dataDirectory)/postgresql.conf") }
        configuration.seekToEndOfFile()
        configuration.write(Data(settings.utf8))
        try configuration.close()
    }

    /// Runs a PostgreSQL tool, as the `postgres` user when we are root.
    private func runTool(_ tool: String, _ arguments: [String]) throws {
        let executable = tool.hasPrefix("/") ? tool : "\(binDirectory)/\(tool)"
        if Self.isRoot {
            try Self.run("/usr/sbin/runuser", ["-u", "postgres", "--", executable] + arguments)
        } else {
            try Self.run(executable, arguments)
        }
    }

    private static var isRoot: Bool { geteuid() == 0 }

    /// Runs a command with its output sent to a temporary file and throws with that output when it
    /// fails. It uses posix_spawn and waitpid rather than Foundation.Process: `pg_ctl start` leaves a
    /// daemon holding inherited descriptors, and Process's exit monitoring was seen to hang on it.
    private static func run(_ executable: String, _ arguments: [String]) throws {
        let outputPath = NSTemporaryDirectory() + "dbos-pg-output-\(UUID().uuidString.prefix(8)).txt"
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let command = ([executable] + arguments).joined(separator: " ")

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        let environment: [UnsafeMutablePointer<CChar>?] =
            ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for variable in environment { free(variable) } }

        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environment)
        guard spawned == 0 else {
            throw Failure(description: "cannot run \(command): \(String(cString: strerror(spawned)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw Failure(description: "waitpid for \(command) failed: errno \(errno)") }
        }
        let signal = status & 0x7f
        let exitCode = (status >> 8) & 0xff
        guard signal == 0, exitCode == 0 else {
            let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
            let how = signal == 0 ? "status \(exitCode)" : "signal \(signal)"
            throw Failure(description: "\(command) failed with \(how):\n\(text)")
        }
    }

    private static func findBinDirectory() throws -> String {
        let fileManager = FileManager.default
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for directory in path.split(separator: ":") where fileManager.isExecutableFile(atPath: "\(directory)/pg_ctl")
            && fileManager.isExecutableFile(atPath: "\(directory)/initdb") {
            return String(directory)
        }
        let versions = ((try? fileManager.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
            .compactMap(Int.init).sorted()
        for version in versions.reversed() where fileManager.isExecutableFile(atPath: "/usr/lib/postgresql/\(version)/bin/initdb") {
            return "/usr/lib/postgresql/\(version)/bin"
        }
        throw Failure(description: "PostgreSQL binaries (initdb, pg_ctl) not found in PATH or /usr/lib/postgresql/*/bin; install the postgresql package")
    }

    /// Asks the kernel for an unused port by binding to port 0.
    private static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(description: "socket() failed: errno \(errno)") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw Failure(description: "bind() failed: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard named == 0 else { throw Failure(description: "getsockname() failed: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    // Servers still running when the test process exits are stopped by an atexit handler, so a
    // test run does not leave PostgreSQL processes behind.
    private static let running = Mutex<[PostgresServer]>([])
    private static let exitHandlerInstalled = Mutex(false)

    private static func register(_ server: PostgresServer) {
        running.withLock { $0.append(server) }
        let install = exitHandlerInstalled.withLock { installed in
            defer { installed = true }
            return !installed
        }
        if install {
            atexit {
                for server in PostgresServer.running.withLock({ $0 }) { server.stop() }
            }
        }
    }

    private static func unregister(_ server: PostgresServer) {
        running.withLock { servers in servers.removeAll { $0 === server } }
    }
}
