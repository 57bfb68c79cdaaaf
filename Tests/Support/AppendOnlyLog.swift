import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Appends `line` and a newline to the file at `path` (created if missing) in one `write` with
/// `O_APPEND`, then fsyncs: lines written by several processes never interleave, and a line a
/// process wrote survives its SIGKILL. The side-effect logs of the crash and chaos tests use it.
public func appendLine(_ line: String, toFile path: String) {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    guard descriptor >= 0 else { fatalError("cannot open \(path): errno \(errno)") }
    let bytes = Array("\(line)\n".utf8)
    _ = bytes.withUnsafeBufferPointer { write(descriptor, $0.baseAddress, $0.count) }
    fsync(descriptor)
    close(descriptor)
}
