import Foundation

/// The target named by LYMPH_FUZZ_TARGET, looked up once.
let selectedTarget: @Sendable ([UInt8]) -> Void = {
    let name = ProcessInfo.processInfo.environment["LYMPH_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTargets.all[name] else {
        fatalError("set LYMPH_FUZZ_TARGET to one of: \(FuzzTargets.all.keys.sorted().joined(separator: ", "))")
    }
    return target
}()

/// libFuzzer's entry point (its own main calls it once per input).
@_cdecl("LLVMFuzzerTestOneInput")
public func lymphFuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    selectedTarget(bytes)
    return 0
}
