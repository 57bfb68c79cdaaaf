import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The live part of the progress display on a terminal: one bottom line listing the steps running now
/// with their elapsed time, redrawn a few times a second, above which every progress line is printed.
///
/// Everything written to stderr goes through `write(_:)` (see `printError`), which clears the status line
/// first, so lines never mix with it. Off a terminal it is never enabled and `write(_:)` is a plain write.
final class TerminalStatusLine: Sendable {
    /// The process's one status line (stderr is one).
    static let shared = TerminalStatusLine()

    private struct State {
        var enabled = false
        var shown = false
        var running: [(label: String, since: ContinuousClock.Instant)] = []
        var frame = 0
        var ticker: Task<Void, Never>?
    }

    private let state = Mutex(State())
    private static let spinner = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]

    /// Turns the status line on (stderr must be a terminal) and starts redrawing it.
    func enable() {
        state.withLock { state in
            guard !state.enabled else { return }
            state.enabled = true
            state.ticker = Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(200))
                    self?.redraw()
                }
            }
        }
    }

    /// Clears the status line and stops redrawing it; later writes are plain.
    func disable() {
        state.withLock { state in
            state.ticker?.cancel()
            state.ticker = nil
            if state.shown { Self.emit("\r\u{1B}[K") }
            state.shown = false
            state.enabled = false
            state.running = []
        }
    }

    /// Writes one line to stderr above the status line.
    func write(_ line: String) {
        state.withLock { state in
            guard state.enabled else {
                Self.emit(line + "\n")
                return
            }
            Self.emit((state.shown ? "\r\u{1B}[K" : "") + line + "\n")
            state.shown = false
            Self.draw(&state)
        }
    }

    /// A step began running.
    func started(_ label: String) {
        state.withLock { state in
            guard state.enabled else { return }
            state.running.append((label, ContinuousClock.now))
        }
    }

    /// A step stopped running.
    func finished(_ label: String) {
        state.withLock { state in
            guard state.enabled else { return }
            if let index = state.running.firstIndex(where: { $0.label == label }) { state.running.remove(at: index) }
        }
    }

    private func redraw() {
        state.withLock { state in
            guard state.enabled else { return }
            state.frame += 1
            Self.draw(&state)
        }
    }

    private static func draw(_ state: inout State) {
        guard !state.running.isEmpty else {
            if state.shown { emit("\r\u{1B}[K") }
            state.shown = false
            return
        }
        let now = ContinuousClock.now
        let steps = state.running.map { "\($0.label) \(ProgressReporter.text(for: now - $0.since))" }
        var text = "\(spinner[state.frame % spinner.count]) running: " + steps.joined(separator: ", ")
        // A line longer than the terminal would wrap, and "\r" would then clear only its last row.
        let width = terminalWidth() - 1
        if text.count > width { text = String(text.prefix(max(width - 1, 0))) + "…" }
        emit("\r\u{1B}[K\u{1B}[2m" + text + "\u{1B}[0m")
        state.shown = true
    }

    private static func terminalWidth() -> Int {
        var size = winsize()
        guard ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 80 }
        return Int(size.ws_col)
    }

    private static func emit(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
