import CLibPQ
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `NOTIFY` received on a channel the listener subscribed to.
struct PostgresNotification: Sendable, Hashable {
    var channel: String
    var payload: String
    /// The server process that sent it; lets a sender recognise its own notifications.
    var senderProcessID: Int32
}

/// Receives `NOTIFY`s on a fixed set of channels over its own connection, on its own thread.
///
/// Notifications only arrive between statements and are lost while disconnected, so the listener
/// needs a connection nobody else uses, and after a reconnect it calls `onReconnect` so that waiters
/// re-check the database for anything they missed. It reconnects by itself with backoff (at once,
/// then 1 s doubling to 30 s, ±25 % jitter), forever, until `stop()`.
final class PostgresListener: Sendable {
    private let loop: PostgresListenerLoop

    private init(loop: PostgresListenerLoop) {
        self.loop = loop
    }

    deinit { stop() }

    /// Connects, LISTENs on `channels`, and returns once notifications can be received; throws if
    /// the first connection fails. The callbacks run on the listener's thread, one at a time, and
    /// should return quickly (resume a continuation, yield to a stream).
    static func start(
        url: PostgresURL,
        channels: [String],
        onNotification: @escaping @Sendable (PostgresNotification) -> Void,
        onReconnect: @escaping @Sendable () -> Void = {}
    ) async throws -> PostgresListener {
        let loop = try PostgresListenerLoop(
            url: url, channels: channels, onNotification: onNotification, onReconnect: onReconnect)
        try await withCheckedThrowingContinuation { (started: CheckedContinuation<Void, any Error>) in
            let thread = Thread { loop.run(reportingStartTo: started) }
            thread.name = "dbos-postgres-listener"
            thread.start()
        }
        return PostgresListener(loop: loop)
    }

    /// The channels it LISTENs on.
    var channels: [String] { loop.channels }

    /// Holds a shared advisory lock on `key` (a text the server hashes) on the listener's connection
    /// until `releaseSharedLock(_:)` is called as often as this was: a statement that finds it held
    /// (`pg_try_advisory_xact_lock`) knows a process listens for it. Held again after a reconnect,
    /// before `onReconnect` runs. Returns once held, or at once while disconnected.
    func holdSharedLock(_ key: String) async {
        await withCheckedContinuation { (held: CheckedContinuation<Void, Never>) in
            loop.enqueue(.hold(key, held))
        }
    }

    /// Gives back one hold of `holdSharedLock(_:)`.
    func releaseSharedLock(_ key: String) {
        loop.enqueue(.release(key))
    }

    /// Asks the thread to close the connection and exit. Returns at once; a callback already running
    /// may finish, but no new one starts.
    func stop() {
        loop.stop()
    }
}

/// The listener thread's state.
///
/// `@unchecked Sendable` is safe because `handle` is only touched on the listener thread; the
/// other stored properties are immutable or atomic, and the wake pipe's write end may be written
/// from any thread.
private final class PostgresListenerLoop: @unchecked Sendable {
    let url: PostgresURL
    let channels: [String]
    let onNotification: @Sendable (PostgresNotification) -> Void
    let onReconnect: @Sendable () -> Void
    /// A pipe that `stop()` writes to, so the thread wakes from `poll` without a timeout.
    private let wakeReader: Int32
    private let wakeWriter: Int32
    private let isStopped = Atomic<Bool>(false)
    private var handle: PostgresConnectionHandle?

    enum Command {
        case hold(String, CheckedContinuation<Void, Never>)
        case release(String)
    }

    /// Lock requests for the thread, which runs them between notifications.
    private let commands = Mutex<[Command]>([])
    /// The shared locks held, by key, with how many holds each has; only touched on the thread.
    private var holds: [String: Int] = [:]

    init(
        url: PostgresURL, channels: [String],
        onNotification: @escaping @Sendable (PostgresNotification) -> Void,
        onReconnect: @escaping @Sendable () -> Void
    ) throws {
        self.url = url
        self.channels = channels
        self.onNotification = onNotification
        self.onReconnect = onReconnect
        var descriptors: [Int32] = [0, 0]
        guard pipe(&descriptors) == 0 else {
            throw PostgresError(kind: .connectionFailed, message: "cannot create a pipe: errno \(errno)")
        }
        for descriptor in descriptors {
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        }
        wakeReader = descriptors[0]
        wakeWriter = descriptors[1]
    }

    deinit {
        close(wakeReader)
        close(wakeWriter)
    }

    func stop() {
        guard !isStopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        wakeThread()
        // Nothing runs the queued commands any more: let their callers go on.
        for case .hold(_, let held) in commands.withLock({ commands in defer { commands = [] }; return commands }) {
            held.resume()
        }
    }

    func enqueue(_ command: Command) {
        let accepted = commands.withLock { commands -> Bool in
            guard !isStopped.load(ordering: .acquiring) else { return false }
            commands.append(command)
            return true
        }
        guard accepted else {
            if case .hold(_, let held) = command { held.resume() }
            return
        }
        wakeThread()
    }

    private func wakeThread() {
        var byte: UInt8 = 1
        _ = write(wakeWriter, &byte, 1)
    }

    /// Runs the queued lock requests on the connection (while disconnected they only count: the
    /// reconnect takes the locks). A failed statement breaks nothing: the waiter falls back to
    /// polling, and a broken connection is found by the receive loop.
    private func runCommands() {
        var drained = [UInt8](repeating: 0, count: 64)
        while read(wakeReader, &drained, drained.count) > 0 {}
        for command in commands.withLock({ commands in defer { commands = [] }; return commands }) {
            switch command {
            case .hold(let key, let held):
                holds[key, default: 0] += 1
                if holds[key] == 1 { try? lock(key, shared: true) }
                held.resume()
            case .release(let key):
                guard let count = holds[key] else { continue }
                if count > 1 {
                    holds[key] = count - 1
                } else {
                    holds[key] = nil
                    try? lock(key, shared: false)
                }
            }
        }
    }

    /// Takes (or gives back) the shared lock of `key` on the current connection.
    private func lock(_ key: String, shared take: Bool) throws {
        guard let connection = handle, !connection.isBroken else { return }
        let function = take ? "pg_advisory_lock_shared" : "pg_advisory_unlock_shared"
        _ = try connection.run("SELECT \(unescaped: function)(\(unescaped: String(PostgresBackend.completionLockClass)), hashtext(\(key))) AS locked")
    }

    /// The thread's body: first connection, then the receive loop until stopped.
    func run(reportingStartTo started: CheckedContinuation<Void, any Error>) {
        do {
            handle = try connectAndListen()
            started.resume()
        } catch {
            started.resume(throwing: error)
            return
        }
        defer { handle?.finish() }
        while !isStopped.load(ordering: .acquiring) {
            guard let connection = handle, let pointer = connection.pointer else { return }
            deliverPendingNotifications(pointer)
            switch waitForInput(socket: PQsocket(pointer), timeout: nil) {
            case .stopped:
                return
            case .commands:
                runCommands()
            case .timedOut:
                continue
            case .readable:
                if PQconsumeInput(pointer) == 0 || connection.isBroken {
                    connection.finish()
                    handle = nil
                    handle = reconnect()
                }
            }
        }
    }

    private func connectAndListen() throws -> PostgresConnectionHandle {
        let connection = try PostgresConnectionHandle(connectingTo: url)
        for channel in channels {
            _ = try connection.run(SQL(stringLiteral: "LISTEN " + PostgresConnectionHandle.quotedIdentifier(channel)))
        }
        return connection
    }

    /// Reconnects with backoff until it succeeds (then calls `onReconnect`) or the listener stops.
    private func reconnect() -> PostgresConnectionHandle? {
        var delay = 1.0
        while !isStopped.load(ordering: .acquiring) {
            if let connection = try? connectAndListen() {
                // The locks went with the old connection: take them again before waiters re-check.
                handle = connection
                for key in holds.keys { try? lock(key, shared: true) }
                if !isStopped.load(ordering: .acquiring) { onReconnect() }
                return connection
            }
            // Lock requests meanwhile are counted (and their callers let go) without waiting for the backoff.
            let retryAt = ContinuousClock.now + .seconds(delay * Double.random(in: 0.75...1.25))
            while ContinuousClock.now < retryAt {
                switch waitForInput(socket: nil, timeout: (retryAt - ContinuousClock.now).seconds) {
                case .stopped: return nil
                case .commands: runCommands()
                case .readable, .timedOut: break
                }
            }
            delay = min(delay * 2, 30)
        }
        return nil
    }

    private func deliverPendingNotifications(_ pointer: OpaquePointer) {
        while let notification = PQnotifies(pointer) {
            let received = PostgresNotification(
                channel: String(cString: notification.pointee.relname),
                payload: String(cString: notification.pointee.extra),
                senderProcessID: notification.pointee.be_pid)
            PQfreemem(notification)
            if isStopped.load(ordering: .acquiring) { return }
            onNotification(received)
        }
    }

    private enum WaitResult { case readable, stopped, commands, timedOut }

    /// Waits until `socket` is readable (or has hung up), the wake pipe is written, or `timeout`
    /// seconds pass.
    private func waitForInput(socket: Int32?, timeout: Double?) -> WaitResult {
        var descriptors = [pollfd(fd: wakeReader, events: Int16(POLLIN), revents: 0)]
        if let socket, socket >= 0 {
            descriptors.append(pollfd(fd: socket, events: Int16(POLLIN), revents: 0))
        }
        let milliseconds = timeout.map { Int32(($0 * 1000).rounded()) } ?? -1
        while true {
            let ready = poll(&descriptors, nfds_t(descriptors.count), milliseconds)
            if ready < 0 && errno == EINTR { continue }
            if isStopped.load(ordering: .acquiring) { return .stopped }
            if descriptors[0].revents != 0 { return .commands }
            if ready > 0 && descriptors.count > 1 && descriptors[1].revents != 0 { return .readable }
            // A poll failure on the socket is treated as input, so PQconsumeInput reports the error.
            if ready < 0 { return .readable }
            return .timedOut
        }
    }
}
