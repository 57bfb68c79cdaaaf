import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The process groups of the `run:` steps running on this machine, one small file each in a
/// directory every worker of this user shares, so that a worker about to run a step first stops
/// what a killed worker left running of the same step, instead of running the command beside it.
///
/// A `run:` command gets a session of its own (so a timeout can kill its background jobs too), and
/// so the kernel does not stop it when its worker dies: after a SIGKILL, the old command would go on
/// while the recovered run starts the step again. Each file names the system database, the run,
/// the step's slot, the command's process group and the worker, with the start times the kernel
/// gives those processes, checked just before a kill so that a reused process ID is not taken for
/// them. Before each attempt of a step, the files of the same step whose worker is gone are looked
/// at: a group whose leader still runs is killed (SIGKILL) and waited for until none of its
/// processes is left, at most `stopTimeout`; the file is removed.
///
/// Linux only (it reads `/proc`); elsewhere nothing is recorded. Only processes of this machine,
/// this boot and this PID namespace can be stopped; a run recovered on another machine cannot stop
/// a command still running on the first. A worker killed between starting the command and writing
/// its file (a few system calls) leaves nothing to find, and a group whose shell already exited
/// (its background jobs still running) is not killed: its file is taken for stale.
struct StepProcessRegistry: Sendable {
    /// What one file holds.
    struct Entry: Codable, Equatable, Sendable {
        var database: String
        var workflowID: String
        var slot: Int
        var processGroup: Int32
        var processStart: UInt64
        var worker: Int32
        var workerStart: UInt64
        var machineID: String
        var bootID: String
        var pidNamespace: String
    }

    /// The directory of the files (created 0700 when the first command starts).
    let directory: String
    /// Which system database the runs are in (a hash of its URL, of a SQLite file's real path), so
    /// runs of another application that happen to share an ID are left alone.
    let database: String
    /// How long a stopped group may take to go before the step runs anyway.
    var stopTimeout: Duration = .seconds(5)

    /// The registry of this user's workers for runs in the system database at `databaseURL`; nil
    /// where it cannot work: an in-memory database (its runs are never recovered), or no `/proc`.
    init?(databaseURL: String, directory: String? = nil) {
        guard let identity = Self.identity(ofDatabase: databaseURL), !Self.bootID.isEmpty,
            !Self.pidNamespace.isEmpty, Self.workerStart != 0
        else { return nil }
        database = SHA256.hexDigest(of: identity)
        self.directory = directory
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("dbos-step-processes-\(getuid())").path
    }

    /// The URL, with a SQLite file named by its real path (the same forms the engine accepts:
    /// `sqlite:PATH`, `sqlite:///RELATIVE`, `sqlite:////ABSOLUTE`); nil for an in-memory database.
    static func identity(ofDatabase url: String) -> String? {
        guard url.hasPrefix("sqlite:") else { return url }
        var path = String(url.dropFirst("sqlite:".count))
        guard path != ":memory:" else { return nil }
        if path.hasPrefix("///") { path = String(path.dropFirst(3)) }
        if !path.hasPrefix("/") { path = FileManager.default.currentDirectoryPath + "/" + path }
        guard let resolved = realpath(path, nil) else { return "sqlite:" + (path as NSString).standardizingPath }
        defer { free(resolved) }
        return "sqlite:" + String(cString: resolved)
    }

    /// The start time of a running process (clock ticks since boot), nil if it is gone or a zombie.
    static func startTime(of processID: Int32) -> UInt64? {
        guard processID > 0,
            let stat = try? String(contentsOfFile: "/proc/\(processID)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // After the command name: state (field 3), then fields 4 ... 22, the start time.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, fields[0] != "Z", fields[0] != "X" else { return nil }
        return UInt64(fields[19])
    }

    private static func firstLine(of path: String) -> String {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private static let machineID = firstLine(of: "/etc/machine-id")
    private static let bootID = firstLine(of: "/proc/sys/kernel/random/boot_id")
    private static let pidNamespace = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/pid")) ?? ""
    private static let worker = getpid()
    private static let workerStart = startTime(of: getpid()) ?? 0

    /// The start of the file names of one step's commands, so a step opens only its own files.
    private func prefix(workflowID: String, slot: Int) -> String {
        String(SHA256.hexDigest(of: "\(database)\n\(workflowID)\n\(slot)").prefix(24))
    }

    /// Records a command that just started in a session of its own (its process group is its ID).
    /// Returns the file to remove once the command is over; nil if it could not be written (the
    /// command then runs unrecorded, as before this registry existed).
    func commandStarted(workflowID: String, slot: Int, processGroup: Int32) -> String? {
        guard processGroup > 1, let processStart = Self.startTime(of: processGroup) else { return nil }
        let entry = Entry(
            database: database, workflowID: workflowID, slot: slot, processGroup: processGroup,
            processStart: processStart, worker: Self.worker, workerStart: Self.workerStart, machineID: Self.machineID,
            bootID: Self.bootID, pidNamespace: Self.pidNamespace)
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            guard Self.isOwnedByThisUser(directory, type: .typeDirectory) else { return nil }
            let path = "\(directory)/\(prefix(workflowID: workflowID, slot: slot))-\(processGroup)-\(processStart).json"
            // Read only by this user's workers (a umask letting the group write would make it untrusted).
            guard FileManager.default.createFile(
                atPath: path, contents: try JSONEncoder().encode(entry), attributes: [.posixPermissions: 0o600])
            else { return nil }
            return path
        } catch {
            return nil
        }
    }

    /// Forgets a command that is over.
    func commandEnded(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Stops what earlier attempts of this step left running under workers that are gone, waits
    /// for it to go, and returns the process groups it killed. Cancelled, it stops waiting.
    @discardableResult
    func stopLeftovers(workflowID: String, slot: Int) async -> [Int32] {
        var killed: [Int32] = []
        for (path, entry) in entries(named: prefix(workflowID: workflowID, slot: slot))
        where entry.database == database && entry.workflowID == workflowID && entry.slot == slot {
            guard let stillRunning = leftover(entry, path: path) else { continue }
            if stillRunning {
                kill(-entry.processGroup, SIGKILL)
                killed.append(entry.processGroup)
                // Until no process of the group is left (its leader's parent, gone with the worker,
                // was replaced by one that reaps it).
                let deadline = ContinuousClock.now + stopTimeout
                while kill(-entry.processGroup, 0) == 0 || errno == EPERM, ContinuousClock.now < deadline {
                    guard (try? await Task.sleep(for: .milliseconds(10))) != nil else { break }
                }
            }
            commandEnded(path)
        }
        return killed
    }

    /// Kills every command of this system database that a worker which is gone left running (its run
    /// is re-run, by this worker or another, or was cancelled: either way the old command must
    /// stop), without waiting; a step about to run again still waits for its own. Files of other
    /// databases are only removed once nothing they name runs any more. Returns the groups killed.
    @discardableResult
    func stopAllLeftovers() -> [Int32] {
        var killed: [Int32] = []
        for (path, entry) in entries(named: "") {
            guard let stillRunning = leftover(entry, path: path) else { continue }
            if stillRunning, entry.database == database {
                kill(-entry.processGroup, SIGKILL)
                killed.append(entry.processGroup)
            } else if !stillRunning {
                commandEnded(path)
            }
        }
        return killed
    }

    /// For an entry whose worker is gone, whether its command's group leader still runs; nil when
    /// the entry is not for this process to judge (its worker runs, or it is of another machine or
    /// PID namespace). An entry of this machine from before it restarted is removed.
    private func leftover(_ entry: Entry, path: String) -> Bool? {
        guard entry.machineID == Self.machineID, entry.processGroup > 1 else { return nil }
        guard entry.bootID == Self.bootID else {
            commandEnded(path)
            return nil
        }
        guard entry.pidNamespace == Self.pidNamespace, Self.startTime(of: entry.worker) != entry.workerStart else {
            return nil
        }
        return Self.startTime(of: entry.processGroup) == entry.processStart
    }

    /// Whether `path` is of `type` (not a symbolic link), belongs to this process's user and only
    /// that user may write it.
    static func isOwnedByThisUser(_ path: String, type: FileAttributeType) -> Bool {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            attributes[.type] as? FileAttributeType == type,
            (attributes[.ownerAccountID] as? NSNumber)?.uint32Value == getuid(),
            let permissions = (attributes[.posixPermissions] as? NSNumber)?.intValue
        else { return false }
        return permissions & 0o022 == 0
    }

    /// The entries whose file names start with `prefix`, with their files. Files someone else could
    /// have written (or a directory they could write in) would let them choose which groups get
    /// killed, so those are not read.
    private func entries(named prefix: String) -> [(path: String, entry: Entry)] {
        guard Self.isOwnedByThisUser(directory, type: .typeDirectory),
            let names = try? FileManager.default.contentsOfDirectory(atPath: directory)
        else { return [] }
        return names.filter { $0.hasPrefix(prefix) && $0.hasSuffix(".json") }.compactMap { name in
            let path = "\(directory)/\(name)"
            guard Self.isOwnedByThisUser(path, type: .typeRegular), let data = FileManager.default.contents(atPath: path),
                let entry = try? JSONDecoder().decode(Entry.self, from: data)
            else { return nil }
            return (path, entry)
        }
    }
}
