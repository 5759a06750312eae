import Foundation
@testable import Lymph

extension FuzzTargets {
    /// `match: {field: {regex: P}}` on attacker-chosen text: the input is a pattern and a value,
    /// split at the first 0x00 byte (no 0x00: all pattern, empty value). A pattern the engine
    /// compiles is matched (or refused as too costly for the value, `RegexPattern.maxSteps`)
    /// within its bound: about 20 ms in a release build, so one match over 1 s in this
    /// unoptimised, instrumented build (10 to 20 times slower) is a failure. Matching never
    /// crashes, and a refused pattern is refused with an error.
    static func regex(_ bytes: [UInt8]) {
        let split = bytes.firstIndex(of: 0) ?? bytes.endIndex
        let pattern = String(decoding: bytes[..<split], as: UTF8.self)
        let value = String(decoding: split < bytes.endIndex ? bytes[(split + 1)...] : [], as: UTF8.self)
        guard let regex = try? RegexPattern(pattern) else { return }
        let path = try! JSONPath(parsing: "data.x")
        let first = timed(.seconds(1), "matching \(pattern.prefix(200).debugDescription) against \(value.utf8.count) bytes", bytes) {
            try? regex.matches(value, path: path)
        }
        // The same answer the second time (a compiled pattern holds no state between matches).
        guard (try? regex.matches(value, path: path)) == first else { broken("two matches of the same value disagree", bytes) }
    }
}
