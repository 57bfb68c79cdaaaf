import Foundation
import Synchronization

/// Derives the application version: a hash of this process's executable and the registered
/// workflow names, so the version changes whenever the workflow code changes, and recovery
/// never replays old checkpoints with new code.
public enum ApplicationVersion {
    /// The version of every process with `DBOSConfiguration.enablesPatching` and no version of its
    /// own (DBOS's name for it): each recovers the runs of the others, whatever their code.
    public static let patchingEnabled = "PATCHING_ENABLED"

    private static let executableHash = Mutex<String?>(nil)

    /// A version derived from this executable and the given names of the code it registers (the
    /// default for a runtime: its workflow names). Programs whose workflows are data (specs)
    /// pass the names of their code instead, so loading other specs does not change the version.
    public static func derive(workflowNames: [String]) -> String {
        var hasher = StableHasher()
        hasher.combine(hashOfExecutable())
        for name in workflowNames.sorted() { hasher.combine(name) }
        return hasher.hexDigest
    }

    /// The executable's hash, computed once per process.
    private static func hashOfExecutable() -> String {
        executableHash.withLock { cached in
            if let cached { return cached }
            var hasher = StableHasher()
            if let data = FileManager.default.contents(atPath: "/proc/self/exe")
                ?? FileManager.default.contents(atPath: CommandLine.arguments[0])
            {
                data.withUnsafeBytes { hasher.combine(bytes: $0) }
            }
            cached = hasher.hexDigest
            return hasher.hexDigest
        }
    }
}

/// A 128-bit FNV-1a style hash: stable across processes and runs (unlike `Hasher`).
struct StableHasher {
    private var low: UInt64 = 0xcbf2_9ce4_8422_2325
    private var high: UInt64 = 0x6c62_272e_07bb_0142

    mutating func combine(_ text: String) {
        var text = text
        text.withUTF8 { combine(bytes: UnsafeRawBufferPointer($0)) }
        // A separator byte keeps ("ab", "c") and ("a", "bc") apart.
        low = (low ^ 0xff) &* 0x100_0000_01b3
    }

    mutating func combine(bytes: UnsafeRawBufferPointer) {
        var low = self.low
        var high = self.high
        var index = 0
        let count = bytes.count
        // Eight bytes at a time keeps hashing a large executable fast even in debug builds.
        while index + 8 <= count {
            let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            low = (low ^ word) &* 0x100_0000_01b3
            high = (high ^ (word &+ low)) &* 0x9e37_79b9_7f4a_7c15
            index += 8
        }
        while index < count {
            low = (low ^ UInt64(bytes[index])) &* 0x100_0000_01b3
            index += 1
        }
        self.low = low
        self.high = high
    }

    var hexDigest: String {
        let lowText = String(low, radix: 16)
        let highText = String(high, radix: 16)
        return String(repeating: "0", count: 16 - highText.count) + highText
            + String(repeating: "0", count: 16 - lowText.count) + lowText
    }
}
