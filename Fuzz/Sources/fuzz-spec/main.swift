import DBOSSpec
import FuzzDriver

/// libFuzzer's entry point: decodes and validates the bytes as a spec, then builds and renders its graph. A
/// crash, a hang or an error without a position is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSpec(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let (spec, errors) = SpecLoader(knownHandlers: ["charge_card"]).decode(text: text, file: "fuzz.yaml")
    var all = errors
    if let spec { all += SpecValidator(context: ValidationContext(knownHandlers: ["charge_card"])).validate(spec) }
    for error in all where error.location.line < 1 || error.location.column < 1 || error.message.contains("\n") {
        fatalError("an error without a position or on several lines: \(error)")
    }
    if let spec, all.isEmpty {
        let graph = StepGraph(steps: spec.steps)
        if graph.topologicalOrder.count != spec.steps.count { fatalError("a valid spec with a cyclic graph") }
        _ = GraphRenderer.render(graph, name: spec.name, format: .mermaid)
    }
    return 0
}

/// The entry point SwiftPM links as `main`.
@_cdecl("fuzz_spec_main")
public func fuzzMain(_ argumentCount: CInt, _ arguments: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argumentCount, arguments) { data, size in fuzzSpec(data, size) }
}
