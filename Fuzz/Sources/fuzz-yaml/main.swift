import DBOSSpec
import FuzzDriver

/// libFuzzer's entry point: loads the bytes as a YAML document. A crash, a hang or an error without a position
/// is a finding; a `SpecError` with one is the expected answer to bad input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzYAML(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        let document = try YAMLLoader().load(bytes: bytes, file: "fuzz.yaml")
        for problem in document.problems { check(problem) }
    } catch {
        check(error)
    }
    return 0
}

func check(_ error: SpecError) {
    if error.location.line < 1 || error.location.column < 1 || error.message.isEmpty || error.message.contains("\n") {
        fatalError("an error without a position or on several lines: \(error)")
    }
}

/// The entry point SwiftPM links as `main`.
@_cdecl("fuzz_yaml_main")
public func fuzzMain(_ argumentCount: CInt, _ arguments: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argumentCount, arguments) { data, size in fuzzYAML(data, size) }
}
