/// A constant from a pipeline file that event fields are compared with.
public enum ScalarValue: Sendable, Equatable, CustomStringConvertible {
    case string([UInt8])
    case number(Double)
    case bool(Bool)
    case null

    /// The constant as the pipeline file would write it: strings in single quotes, whole numbers
    /// without a decimal point.
    public var description: String {
        switch self {
        case .string(let b): return "'\(String(decoding: b, as: UTF8.self))'"
        case .number(let n): return n.rounded() == n && abs(n) < 1e15 ? String(Int(n)) : String(n)
        case .bool(let b): return String(b)
        case .null: return "null"
        }
    }

    /// Equality between a JSON value and this constant. A number never equals a string.
    func equals(_ v: JSONValue) -> Bool {
        switch self {
        case .string(let s):
            guard let b = v.stringBytes else { return false }
            return b.elementsEqual(s)
        case .number(let n):
            return v.double == n
        case .bool(let b):
            return v.bool == b
        case .null:
            return v.isNull
        }
    }

    /// -1, 0, 1, or nil when the two are not comparable (different kinds, or not ordered).
    func compare(_ v: JSONValue) -> Int? {
        switch self {
        case .number(let n):
            guard let x = v.double, !x.isNaN else { return nil }
            return x < n ? -1 : (x > n ? 1 : 0)
        case .string(let s):
            guard let b = v.stringBytes else { return nil }
            return b.lexicographicallyPrecedes(s) ? -1 : (b.elementsEqual(s) ? 0 : 1)
        default:
            return nil
        }
    }
}
