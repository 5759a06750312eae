import Foundation

/// Compact JSON of a report's plain values, object keys sorted: what the commands print with
/// `--summary json` and `--json` (a run's summary, a dead-letter file's, a spool's status).
///
/// Foundation's `JSONSerialization` sorts keys by comparing them in a locale, and the first such
/// comparison loads ICU's locale data: megabytes of its code and tables mapped at the end of a
/// run, which made the run's end its memory peak. Report keys are ASCII names, so byte order is
/// the order people expect.
enum ReportJSON {
    /// `value` as JSON: a `[String: Any]` (keys in byte order), `[Any]`, `String`, `Bool`,
    /// `Int`, `Int64`, `Double` (integral values without a fraction; NaN and infinities as null,
    /// which JSON lacks) or `NSNull`, as Swift values (an `NSNumber` 0 or 1 would read as a
    /// boolean). Anything else is written as null.
    static func string(_ value: Any) -> String {
        var out: [UInt8] = []
        append(value, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func append(_ value: Any, to out: inout [UInt8]) {
        switch value {
        case let s as String:
            JSONStringEncoder.append(s, to: &out)
        case let b as Bool:
            out.append(contentsOf: (b ? "true" : "false").utf8)
        case let i as Int:
            out.append(contentsOf: String(i).utf8)
        case let i as Int64:
            out.append(contentsOf: String(i).utf8)
        case let d as Double:
            out.append(contentsOf: number(d).utf8)
        case let object as [String: Any]:
            out.append(UInt8(ascii: "{"))
            for (n, key) in object.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                JSONStringEncoder.append(key, to: &out)
                out.append(UInt8(ascii: ":"))
                append(object[key]!, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        case let array as [Any]:
            out.append(UInt8(ascii: "["))
            for (n, item) in array.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                append(item, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        default:
            out.append(contentsOf: "null".utf8)
        }
    }

    /// A double as JSON: `12` for an integral value (as counts and rounded rates are), else the
    /// shortest text that reads back as the same double.
    static func number(_ d: Double) -> String {
        guard d.isFinite else { return "null" }
        if d == d.rounded(), abs(d) < 9_007_199_254_740_992 { return String(Int64(d)) }
        return String(d)
    }
}
