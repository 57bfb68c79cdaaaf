import DBOSTestSupport
import Foundation

/// The two `dbos-chaos-worker worker` processes of a chaos test, on one system database: worker `a`
/// (executor ID `chaos-a`) and `b` (`chaos-b`). Each process gets a name of its own (`a1`, `a2`, ...,
/// `$CHAOS_WORKER`) that its step bodies write into the execution log, and a SIGKILL is logged as
/// `kill NAME` once the process is gone, so the log orders every execution against the kills.
actor ChaosWorkers {
    /// Where the workers' output and the execution log go.
    let directory: TemporaryDirectory
    let databaseURL: String
    /// The execution log the step bodies append to.
    nonisolated var logPath: String { directory.file("executions.log") }
    /// The names of the processes SIGKILLed so far.
    private(set) var killed: Set<String> = []
    private var running: [String: (name: String, process: ChildProcess)] = [:]
    private var incarnations: [String: Int] = [:]

    /// The specs the workers serve.
    static let specsDirectory: String = {
        var url = URL(fileURLWithPath: #filePath)
        url.deleteLastPathComponent()
        url.deleteLastPathComponent()
        return url.appendingPathComponent("DBOSChaosWorker/Specs").path
    }()

    init(directory: TemporaryDirectory, databaseURL: String) {
        self.directory = directory
        self.databaseURL = databaseURL
    }

    /// Starts both workers.
    func startBoth() throws {
        try start("a")
        try start("b")
    }

    /// Starts worker `letter` under its next process name.
    private func start(_ letter: String) throws {
        let incarnation = incarnations[letter, default: 0] + 1
        incarnations[letter] = incarnation
        let name = "\(letter)\(incarnation)"
        let process = try ChildProcess(
            executable: builtExecutable(named: "dbos-chaos-worker"),
            arguments: ["worker", Self.specsDirectory, "--executor-id", "chaos-\(letter)", "--grace-period", "1s"],
            outputPath: directory.file("\(name).out"), errorOutputPath: directory.file("\(name).err"),
            environment: ["DBOS_SYSTEM_DATABASE_URL": databaseURL, "CHAOS_LOG": logPath, "CHAOS_WORKER": name])
        running[letter] = (name, process)
    }

    /// SIGKILLs worker `letter`, waits until it is gone, logs the kill and starts it again with the same executor ID.
    func killAndRestart(_ letter: String) async throws {
        guard let (name, process) = running[letter] else { return }
        process.kill()
        guard await process.waitForExit(timeout: .seconds(30)) != nil else {
            throw ChaosFailure("worker \(name) did not die of SIGKILL within 30 s")
        }
        appendLine("kill \(name)", toFile: logPath)
        killed.insert(name)
        try start(letter)
    }

    /// Throws when a worker ended by itself (it must only ever end by our SIGKILL or SIGTERM).
    func checkBothRunning() throws {
        for (name, process) in running.values where !process.isRunning {
            throw ChaosFailure("worker \(name) exited by itself:\n\(String(process.errorOutput.suffix(3000)))")
        }
    }

    /// SIGKILLs both workers, when a test fails: no worker outlives its test.
    func killAll() async {
        for (_, process) in running.values {
            process.kill()
            _ = await process.waitForExit(timeout: .seconds(30))
        }
        running = [:]
    }

    /// Stops both workers with SIGTERM; returns a problem for each that does not exit cleanly.
    func stop() async -> [String] {
        var problems: [String] = []
        for (name, process) in running.values {
            process.kill(signal: SIGTERM)
            let status = await process.waitForExit(timeout: .seconds(30))
            if status != 0 {
                process.kill()
                problems.append("worker \(name) ended with \(status.map(String.init) ?? "a timeout") on SIGTERM:\n\(String(process.errorOutput.suffix(2000)))")
            }
        }
        running = [:]
        return problems
    }
}

/// A chaos test's own failure, with what went wrong.
struct ChaosFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
