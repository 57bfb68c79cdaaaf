import DBOS
import DBOSSpec
import FuzzDriver

let scope = ExpressionScope(variables: [
    "input": ["name": "x", "list": [1, 2, 3], "nested": ["k": ["deeper": true]]],
    "steps": ["a": ["output": "out", "status": "success"]], "item": 1, "index": 0,
])

/// libFuzzer's entry point: parses the bytes as an expression and evaluates it. A crash, a hang or an error
/// whose offset lies outside the text is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzExpression(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        let expression = try ExpressionParser.parse(text)
        do {
            _ = try expression.evaluate(in: scope)
        } catch {
            check(error, text)
        }
    } catch {
        check(error, text)
    }
    return 0
}

func check(_ error: ExpressionError, _ text: String) {
    if error.offset < 0 || error.offset > text.count || error.message.isEmpty {
        fatalError("an error outside the text: \(error)")
    }
}

/// The entry point SwiftPM links as `main`.
@_cdecl("fuzz_expression_main")
public func fuzzMain(_ argumentCount: CInt, _ arguments: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argumentCount, arguments) { data, size in fuzzExpression(data, size) }
}
