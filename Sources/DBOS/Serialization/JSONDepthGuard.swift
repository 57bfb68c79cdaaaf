import Foundation

/// Foundation's `JSONDecoder` behind one guard: text nested deeper than Foundation accepts is refused first.
///
/// Foundation rejects nesting past 512 levels with an error, but (swift-foundation in Swift 6.3 on Linux) traps,
/// taking the process down, while building that error when the text's last byte opens the 513th level, as in
/// 513 `[` given to `--input`, `send --message`, `fromJSON()` or written into the database by another client.
/// Found by `FuzzTests`; kept by `JSONValueTests` and `HostileInvocationTests`.
enum JSONDepthGuard {
    /// The deepest nesting Foundation's parser accepts.
    static let maximumDepth = 512

    /// Decodes `data` as `JSONDecoder` does, refusing nesting deeper than `maximumDepth` with a `DecodingError`.
    static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        // Fewer bytes than levels cannot nest too deep: short payloads, the common case, skip the scan.
        if data.count > maximumDepth { try checkDepth(of: data) }
        return try JSONDecoder().decode(type, from: data)
    }

    private static func checkDepth(of data: Data) throws {
        var depth = 0
        var inString = false
        var escaped = false
        for byte in data {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > maximumDepth {
                    throw DecodingError.dataCorrupted(DecodingError.Context(
                        codingPath: [], debugDescription: "too many nested arrays or objects: more than \(maximumDepth) levels"))
                }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
    }
}
