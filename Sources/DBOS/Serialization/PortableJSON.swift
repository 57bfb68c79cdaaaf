import Foundation

/// DBOS's cross-language `portable_json` format: plain JSON that people and every DBOS SDK can
/// read. Inputs are wrapped as `{"positionalArgs":[input],"namedArgs":{}}`, outputs are the
/// value itself, errors are `{"name","message","code","data"}`.
enum PortableJSON {
    /// The name stored in each row's `serialization` column.
    static let formatName = "portable_json"

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// Encodes a value as JSON text.
    static func encode<T: Encodable>(_ value: T) throws -> String {
        // Integers and booleans, written as JSONEncoder writes them, without its setup per call.
        if T.self == Int.self { return String(value as! Int) }
        if T.self == Bool.self { return (value as! Bool) ? "true" : "false" }
        // The spec interpreter's values: their own writer is several times faster than JSONEncoder.
        if let value = value as? JSONValue {
            // JSONEncoder refuses NaN and infinity; so does this path, rather than storing null.
            guard !value.containsNonFiniteNumber else {
                throw WorkflowError.serializationFailed(
                    type: "JSONValue", reason: "a number is NaN or infinite, which JSON cannot hold")
            }
            return value.jsonText
        }
        do {
            return String(decoding: try encoder.encode(value), as: UTF8.self)
        } catch {
            throw WorkflowError.serializationFailed(type: String(describing: T.self), reason: "\(error)")
        }
    }

    /// Decodes JSON text into a value; `nil` text decodes as JSON `null`.
    static func decode<T: Decodable>(_ type: T.Type, from text: String?) throws -> T {
        if T.self == JSONValue.self {
            do {
                return try JSONValue(parsing: text ?? "null") as! T
            } catch {
                throw WorkflowError.deserializationFailed(type: "JSONValue", reason: "\(error)")
            }
        }
        do {
            return try JSONDepthGuard.decode(T.self, from: Data((text ?? "null").utf8))
        } catch {
            throw WorkflowError.deserializationFailed(type: String(describing: T.self), reason: describe(error))
        }
    }

    /// Wraps an input as DBOS's positional-argument list.
    static func encodeInput<T: Encodable>(_ value: T) throws -> String {
        "{\"namedArgs\":{},\"positionalArgs\":[\(try encode(value))]}"
    }

    /// Unwraps positional argument 0 of a stored input.
    static func decodeInput<T: Decodable>(_ type: T.Type, from text: String?) throws -> T {
        if T.self == JSONValue.self {
            guard case .array(let arguments)? = try decode(JSONValue.self, from: text)["positionalArgs"] else {
                throw WorkflowError.deserializationFailed(type: "JSONValue", reason: "missing key 'positionalArgs'")
            }
            return (arguments.first ?? .null) as! T
        }
        let arguments = try decode(InputArguments<T>.self, from: text)
        guard let first = arguments.positionalArgs.first else {
            return try decode(T.self, from: "null")
        }
        return first
    }

    /// The stored input's positional argument 0 as a JSON value, for listings.
    static func inputValue(from text: String?) -> JSONValue? {
        guard let text, let value = try? JSONValue(parsing: text) else { return nil }
        if case .array(let arguments)? = value["positionalArgs"] { return arguments.first ?? .null }
        return value
    }

    private struct InputArguments<T: Decodable>: Decodable {
        var positionalArgs: [T]
    }

    private static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        switch error {
        case .typeMismatch(let type, let context):
            return "expected \(type) at \(path(context.codingPath)): \(context.debugDescription)"
        case .valueNotFound(let type, let context):
            return "missing \(type) value at \(path(context.codingPath))"
        case .keyNotFound(let key, let context):
            return "missing key '\(key.stringValue)' at \(path(context.codingPath))"
        case .dataCorrupted(let context):
            return "invalid JSON at \(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    private static func path(_ codingPath: [any CodingKey]) -> String {
        codingPath.isEmpty ? "the top level" : codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
    }
}

/// An error as DBOS's portable format stores it: `{"name", "message", "code", "data"}`.
public struct PortableError: Error, Codable, Sendable, Equatable, CustomStringConvertible {
    /// The error's type name (a Swift type name, or a DBOS error code).
    public var name: String
    /// A message a person can read.
    public var message: String
    /// An optional machine-readable code.
    public var code: JSONValue?
    /// Optional structured details.
    public var data: JSONValue?

    /// An error with a name and a message.
    public init(name: String, message: String, code: JSONValue? = nil, data: JSONValue? = nil) {
        self.name = name
        self.message = message
        self.code = code
        self.data = data
    }

    /// The portable form of any Swift error: its type name and its description.
    public init(_ error: any Error) {
        if let portable = error as? PortableError {
            self = portable
        } else if let workflowError = error as? WorkflowError {
            self.init(name: workflowError.portableName, message: workflowError.description)
        } else {
            self.init(name: String(describing: type(of: error)), message: String(describing: error))
        }
    }

    public var description: String { message }

    /// The JSON text stored in an `error` column.
    var storedText: String {
        (try? PortableJSON.encode(self)) ?? "{\"message\":\"unencodable error\",\"name\":\"Error\"}"
    }

    /// Reads an `error` column; text that is not a portable error object becomes its message.
    init(storedText: String) {
        if let decoded = try? JSONDepthGuard.decode(PortableError.self, from: Data(storedText.utf8)) {
            self = decoded
        } else {
            self.init(name: "Error", message: storedText)
        }
    }
}
