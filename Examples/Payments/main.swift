// The whole `dbos-run` CLI plus two Swift handlers that `handler:` steps call.
//
//   swift run dbos-example-payments Examples/Payments/Specs/payments.yaml \
//       --input '{"order_id": "A1", "amount": 25}'
//   swift run dbos-example-payments validate Examples/Payments/Specs/payments.yaml
//
// Set PAYMENTS_LEDGER to a file path to see each charge and refund appended to it.
import DBOSRunCLI
import DBOSSpec
import Foundation

/// What `payments.charge` is called with (`with:` of the step).
struct Charge: Codable, Sendable {
    var orderID: String
    var amount: Double

    enum CodingKeys: String, CodingKey {
        case orderID = "order_id"
        case amount
    }
}

/// What `payments.charge` returns: the step's output.
struct Receipt: Codable, Sendable {
    var chargeID: String
    var orderID: String
    var amount: Double

    enum CodingKeys: String, CodingKey {
        case chargeID = "charge_id"
        case orderID = "order_id"
        case amount
    }
}

/// What `payments.refund` is called with.
struct Refund: Codable, Sendable {
    var chargeID: String
    var amount: Double

    enum CodingKeys: String, CodingKey {
        case chargeID = "charge_id"
        case amount
    }
}

/// A card refusal, as the step's error.
struct PaymentDeclined: Error, CustomStringConvertible {
    var reason: String
    var description: String { "card declined: \(reason)" }
}

/// Appends a line to `$PAYMENTS_LEDGER`, the stand-in for a payment provider's records.
func record(_ line: String) {
    guard let path = ProcessInfo.processInfo.environment["PAYMENTS_LEDGER"], !path.isEmpty else { return }
    if !FileManager.default.fileExists(atPath: path) {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
    }
    guard let handle = FileHandle(forWritingAtPath: path) else { return }
    handle.seekToEndOfFile()
    handle.write(Data((line + "\n").utf8))
    try? handle.close()
}

DBOSRunCommand.handlers.register("payments.charge") { (charge: Charge, context: HandlerContext) async throws -> Receipt in
    guard charge.amount <= 1000 else { throw PaymentDeclined(reason: "amount \(charge.amount) is over the limit") }
    // The idempotency key is the same on every attempt and recovery: a real provider would charge once.
    let chargeID = "ch_" + context.idempotencyKey.replacingOccurrences(of: "/", with: "_")
    record("charge \(chargeID) \(charge.orderID) \(charge.amount)")
    return Receipt(chargeID: chargeID, orderID: charge.orderID, amount: charge.amount)
}

DBOSRunCommand.handlers.register("payments.refund") { (refund: Refund, context: HandlerContext) async throws -> [String: Double] in
    record("refund \(refund.chargeID) \(refund.amount)")
    return ["refunded": refund.amount]
}

/// What `Specs/handler.yaml`'s `charge_card` step is called with.
struct CardCharge: Codable, Sendable {
    var order: String
    var cents: Double
    var note: String
}

// The handler the reference spec Specs/handler.yaml names, so it runs through this program too.
DBOSRunCommand.handlers.register("charge_card") { (charge: CardCharge, context: HandlerContext) async throws -> [String: String] in
    record("charge_card \(context.idempotencyKey) \(charge.order) \(Int(charge.cents))")
    return ["order": charge.order, "cents": String(Int(charge.cents)), "note": charge.note]
}

await DBOSRunCommand.runFromCommandLine()
