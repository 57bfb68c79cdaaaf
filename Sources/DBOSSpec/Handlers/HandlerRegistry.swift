import DBOS
import Foundation
import Synchronization

/// The Swift functions `handler:` steps call, by name.
///
/// ```swift
/// let handlers = HandlerRegistry()
/// handlers.register("payments.charge") { (charge: Charge, context: HandlerContext) in
///     try await payments.charge(charge, idempotencyKey: context.idempotencyKey)  // returns a Receipt
/// }
/// ```
///
/// Register every handler before creating the `SpecInterpreter`, so validation knows the names.
public final class HandlerRegistry: Sendable {
    /// A handler with its types erased: the step's `with:` as JSON in, its output as JSON out.
    public typealias Handler = @Sendable (JSONValue, HandlerContext) async throws -> JSONValue

    private let handlers = Mutex<[String: Handler]>([:])

    /// An empty registry.
    public init() {}

    /// Registers a handler that takes and returns JSON as it is.
    public func register(_ name: String, _ handler: @escaping Handler) {
        handlers.withLock { $0[name] = handler }
    }

    /// Registers a typed handler: `with:` is decoded as `Input` and the result encoded as the step's output.
    public func register<Input: Decodable & Sendable, Output: Encodable & Sendable>(
        _ name: String, _ handler: @escaping @Sendable (Input, HandlerContext) async throws -> Output
    ) {
        register(name) { (json: JSONValue, context: HandlerContext) async throws -> JSONValue in
            let input: Input
            do {
                input = try JSONDecoder().decode(Input.self, from: try JSONEncoder().encode(json))
            } catch {
                throw HandlerError.undecodableInput(handler: name, type: String(describing: Input.self), reason: "\(error)")
            }
            let output = try await handler(input, context)
            return try JSONDecoder().decode(JSONValue.self, from: try JSONEncoder().encode(output))
        }
    }

    /// The registered names (what `SpecLoader(knownHandlers:)` needs).
    public var names: Set<String> { handlers.withLock { Set($0.keys) } }

    /// The handler registered as `name`.
    public func handler(named name: String) -> Handler? { handlers.withLock { $0[name] } }
}

/// Problems calling a handler.
public enum HandlerError: Error, Sendable, CustomStringConvertible {
    /// No handler has this name in this process.
    case unknownHandler(String)
    /// The step's `with:` does not decode as the handler's input type.
    case undecodableInput(handler: String, type: String, reason: String)

    /// A message a person can act on.
    public var description: String {
        switch self {
        case .unknownHandler(let name): "no handler named '\(name)' is registered in this process"
        case .undecodableInput(let handler, let type, let reason):
            "the input of handler '\(handler)' does not decode as \(type): \(reason)"
        }
    }
}
