/// libFuzzer's driver, declared here because SwiftPM links every executable with `main` pointing at the
/// module's own entry function (`<module>_main`), which then has to hand over to libFuzzer itself.
@_silgen_name("LLVMFuzzerRunDriver")
private func runDriver(
    _ argumentCount: UnsafeMutablePointer<CInt>,
    _ arguments: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ test: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// Runs libFuzzer with the process's arguments (corpus directories, `-max_total_time=...`), calling `test`
/// with each input.
public func runFuzzer(
    _ argumentCount: CInt, _ arguments: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
    test: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt {
    var count = argumentCount
    var vector = arguments
    return runDriver(&count, &vector, test)
}
