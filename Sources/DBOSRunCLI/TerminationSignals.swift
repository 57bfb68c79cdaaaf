import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The write end of the pipe the signal handler reports to; set once, before the handler is installed.
/// `nonisolated(unsafe)`: written once before any signal can arrive, then only read (by the handler).
nonisolated(unsafe) private var signalPipeWriteDescriptor: Int32 = -1

/// Delivers SIGINT and SIGTERM to a closure, on a thread of its own.
///
/// The C handler only writes the signal number to a pipe (async-signal-safe); a dedicated thread reads the
/// pipe and calls the closure, so no blocking read runs on the cooperative pool. The signals are handled,
/// not ignored, so the shell steps the process starts get the default disposition back at `exec`.
enum TerminationSignals {
    /// Calls `body` with the signal number each time SIGINT or SIGTERM arrives. Call it once per process.
    static func handle(_ body: @escaping @Sendable (Int32) -> Void) {
        var descriptors: [Int32] = [-1, -1]
        guard pipe(&descriptors) == 0 else { return }
        let readDescriptor = descriptors[0]
        signalPipeWriteDescriptor = descriptors[1]
        let thread = Thread {
            var byte: UInt8 = 0
            while true {
                let count = read(readDescriptor, &byte, 1)
                if count == 1 {
                    body(Int32(byte))
                } else if count < 0, errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
        thread.start()
        for number in [SIGINT, SIGTERM] {
            _ = signal(number) { received in
                var byte = UInt8(truncatingIfNeeded: received)
                _ = write(signalPipeWriteDescriptor, &byte, 1)
            }
        }
    }

    /// The signal's name, for messages.
    static func name(of number: Int32) -> String {
        switch number {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        default: "signal \(number)"
        }
    }
}
