import Foundation

/// A test on an event, written in YAML in the style of MongoDB and Hookdeck filters.
public indirect enum Condition: Sendable, CustomStringConvertible {
    case types(TypeMatcher)
    case field(JSONPath, FieldTest)
    case all([Condition])
    case any([Condition])
    case not(Condition)

    public func matches(_ event: Event) -> Bool {
        switch self {
        case .types(let m):
            return m.matches(event.typeBytes)
        case .field(let path, let test):
            return test.matches(event.value(at: path))
        case .all(let cs):
            return cs.allSatisfy { $0.matches(event) }
        case .any(let cs):
            return cs.contains { $0.matches(event) }
        case .not(let c):
            return !c.matches(event)
        }
    }

    /// The first top-level part that fails, as a short reason for drop counts
    /// (`type`, `data.confidence gte 0.8`).
    public func failingReason(_ event: Event) -> String? {
        switch self {
        case .types:
            return matches(event) ? nil : "type"
        case .all(let cs):
            for c in cs where !c.matches(event) { return c.failingReason(event) ?? c.description }
            return nil
        default:
            return matches(event) ? nil : description
        }
    }

    public var description: String {
        switch self {
        case .types(let m): return "type in [\(m)]"
        case .field(let path, let test): return "\(path) \(test)"
        case .all(let cs): return "all(\(cs.map(\.description).joined(separator: ", ")))"
        case .any(let cs): return "any(\(cs.map(\.description).joined(separator: ", ")))"
        case .not(let c): return "not(\(c))"
        }
    }
}

/// One operator applied to the value at a path (nil when the path is absent).
public enum FieldTest: Sendable, CustomStringConvertible {
    case eq(ScalarValue)
    case ne(ScalarValue)
    case gt(ScalarValue), gte(ScalarValue), lt(ScalarValue), lte(ScalarValue)
    case isIn([ScalarValue])
    case notIn([ScalarValue])
    case exists(Bool)
    case prefix([UInt8])
    case suffix([UInt8])
    case contains(ScalarValue)
    case regex(RegexPattern)

    /// Absent values fail every test except `ne`, `nin` and `exists: false` (as in MongoDB).
    public func matches(_ value: JSONValue?) -> Bool {
        switch self {
        case .exists(let want): return (value != nil) == want
        case .ne(let c): return value.map { !c.equals($0) } ?? true
        case .notIn(let cs): return value.map { v in !cs.contains { $0.equals(v) } } ?? true
        default: break
        }
        guard let v = value else { return false }
        switch self {
        case .eq(let c): return c.equals(v)
        case .gt(let c): return c.compare(v).map { $0 > 0 } ?? false
        case .gte(let c): return c.compare(v).map { $0 >= 0 } ?? false
        case .lt(let c): return c.compare(v).map { $0 < 0 } ?? false
        case .lte(let c): return c.compare(v).map { $0 <= 0 } ?? false
        case .isIn(let cs): return cs.contains { $0.equals(v) }
        case .prefix(let p):
            guard let s = v.stringBytes else { return false }
            return s.count >= p.count && s.prefix(p.count).elementsEqual(p)
        case .suffix(let p):
            guard let s = v.stringBytes else { return false }
            return s.count >= p.count && s.suffix(p.count).elementsEqual(p)
        case .contains(let c):
            if let elements = v.elements { return elements.contains { c.equals($0) } }
            guard case .string(let needle) = c, let s = v.stringBytes else { return false }
            return needle.isEmpty || Self.find(needle, in: s)
        case .regex(let r):
            guard let s = v.string else { return false }
            return r.matches(s)
        case .exists, .ne, .notIn: return false  // handled above
        }
    }

    static func find(_ needle: [UInt8], in hay: ArraySlice<UInt8>) -> Bool {
        guard hay.count >= needle.count else { return false }
        var i = hay.startIndex
        while i + needle.count <= hay.endIndex {
            if hay[i] == needle[0] && hay[i..<(i + needle.count)].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }

    public var description: String {
        switch self {
        case .eq(let c): return "eq \(c)"
        case .ne(let c): return "ne \(c)"
        case .gt(let c): return "gt \(c)"
        case .gte(let c): return "gte \(c)"
        case .lt(let c): return "lt \(c)"
        case .lte(let c): return "lte \(c)"
        case .isIn(let cs): return "in [\(cs.map(\.description).joined(separator: ", "))]"
        case .notIn(let cs): return "nin [\(cs.map(\.description).joined(separator: ", "))]"
        case .exists(let b): return "exists \(b)"
        case .prefix(let p): return "prefix '\(String(decoding: p, as: UTF8.self))'"
        case .suffix(let p): return "suffix '\(String(decoding: p, as: UTF8.self))'"
        case .contains(let c): return "contains \(c)"
        case .regex(let r): return "regex '\(r.pattern)'"
        }
    }
}

/// A compiled `regex:` condition. Event values come from outside, so matching runs on
/// `LinearRegex`: its cost is bounded by the value's length times the pattern's size, and it
/// has no stack to run out of (a backtracking engine can be stalled for minutes by one crafted
/// value, or give up and report "no match", which a `not:` would turn into a pass).
public struct RegexPattern: Sendable {
    public let pattern: String
    let regex: LinearRegex

    public init(_ pattern: String) throws(LinearRegex.SyntaxError) {
        self.pattern = pattern
        self.regex = try LinearRegex(pattern)
    }

    public func matches(_ s: String) -> Bool { regex.matches(s) }
}
