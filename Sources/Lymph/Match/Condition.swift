import Foundation

/// A test on an event, written in YAML in the style of MongoDB and Hookdeck filters.
public indirect enum Condition: Sendable, CustomStringConvertible {
    case types(TypeMatcher)
    case field(JSONPath, FieldTest)
    case all([Condition])
    case any([Condition])
    case not(Condition)

    /// Throws when a test cannot be decided within its bound (a `regex` on a value too long for
    /// its pattern): the event is then a dead letter, never silently kept or dropped.
    public func matches(_ event: Event) throws(ConditionError) -> Bool {
        switch self {
        case .types(let m):
            return event.typeMatches(m)
        case .field(let path, let test):
            return try test.matches(event.value(at: path), path: path)
        case .all(let cs):
            for c in cs where try !c.matches(event) { return false }
            return true
        case .any(let cs):
            for c in cs where try c.matches(event) { return true }
            return false
        case .not(let c):
            return try !c.matches(event)
        }
    }

    /// The first top-level part that fails, as a short reason for drop counts
    /// (`type`, `data.confidence gte 0.8`).
    public func failingReason(_ event: Event) throws(ConditionError) -> String? {
        switch self {
        case .types:
            return try matches(event) ? nil : Reason.eventType.rawValue
        case .all(let cs):
            for c in cs where try !c.matches(event) { return try c.failingReason(event) ?? c.description }
            return nil
        default:
            return try matches(event) ? nil : description
        }
    }

    /// The condition in one line, such as `all(type in [alert.*], data.severity in ['high'])`.
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
    public func matches(_ value: JSONValue?, path: JSONPath) throws(ConditionError) -> Bool {
        if case .regex(let r) = self, let s = value?.string {
            return try r.matches(s, path: path)
        }
        return matches(value)
    }

    /// Every test but `regex`, which `matches(_:path:)` decides.
    private func matches(_ value: JSONValue?) -> Bool {
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
        case .regex:
            return false  // decided by matches(_:path:), which bounds its cost
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

    /// The operator and its operand, such as `gte 0.8` or `in ['high', 'critical']`.
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
    /// The pattern as written in the pipeline file.
    public let pattern: String
    let regex: LinearRegex

    /// Compiles `pattern` with `LinearRegex`; throws, saying what and where, when it refuses it.
    public init(_ pattern: String) throws(LinearRegex.SyntaxError) {
        self.pattern = pattern
        self.regex = try LinearRegex(pattern)
    }

    /// The most steps one match may take (about 20 ms): a value long enough to need more for
    /// this pattern is not matched at all, and its event becomes a dead letter.
    public static let maxSteps = 4_000_000

    /// Whether the pattern matches somewhere in `s`, the value at `path` (anywhere, unless
    /// anchored); throws when the match could take more than `maxSteps`.
    public func matches(_ s: String, path: JSONPath) throws(ConditionError) -> Bool {
        guard regex.worstCaseSteps(s) <= Self.maxSteps else {
            throw ConditionError(
                .regexTooCostly,
                message:
                    "\(path) is \(s.utf8.count) bytes: too long to match against regex '\(pattern.cutForMessage())' (\(regex.instructionCount) instructions) within \(Self.maxSteps) steps; shorten the value upstream or simplify the pattern"
            )
        }
        return regex.matches(s)
    }
}

/// A condition that could not be decided for an event (see `Condition.matches`).
public struct ConditionError: Error, Sendable, CustomStringConvertible {
    /// The dead-letter reason (`regex_too_costly`).
    public let reason: String
    /// What could not be decided and why, naming the path.
    public let message: String
    /// The message.
    public var description: String { message }

    init(_ reason: Reason, message: String) {
        self.reason = reason.rawValue
        self.message = message
    }
}
