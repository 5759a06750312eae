/// `lymph test`'s rule for "what was expected is what happened".
///
/// An expected object matches when every key it names is present and matches (keys it does not
/// name are not looked at), recursively. A list matches a list of the same length whose entries
/// match in order. Numbers compare by value, and two strings that are both RFC 3339 times compare
/// as instants (`2026-06-01T12:00:00Z` is `2026-06-01T12:00:00.000Z`, as Lymph writes times).
/// An expected mapping matches a `log` stage's line by the JSON the line holds (a string inside a
/// value is a string). Text compares byte for byte. Anything else must be equal.
public enum SubsetMatcher {
    /// Where an expected value and an actual one first differ.
    public struct Mismatch: Sendable, Equatable, CustomStringConvertible {
        /// The path to it from the compared values, such as `data.priority` or `source_event_ids[1]`
        /// (empty for the values themselves).
        public let path: String
        /// What was expected there.
        public let expected: TestValue
        /// What was there; nil when the key is missing.
        public let actual: TestValue?

        /// `data.priority: expected "critical", got "high"`.
        public var description: String {
            let place = path.isEmpty ? "" : "\(path): "
            guard let actual else { return "\(place)expected \(expected), but there is no such key" }
            if case .array(let e) = expected, case .array(let a) = actual, e.count != a.count {
                return "\(place)expected \(e.count) entr\(e.count == 1 ? "y" : "ies"), got \(a.count): \(actual)"
            }
            return "\(place)expected \(expected), got \(actual)"
        }
    }

    /// Whether `actual` matches `expected`.
    public static func matches(_ expected: TestValue, _ actual: TestValue) -> Bool {
        mismatch(expected, actual) == nil
    }

    /// The first place `actual` does not match `expected` (members in the order the expectation
    /// names them), or nil when it matches.
    public static func mismatch(_ expected: TestValue, _ actual: TestValue, at path: String = "") -> Mismatch? {
        switch (expected, actual) {
        case (.object(let wanted), .object):
            for member in wanted {
                let place = path.isEmpty ? member.key : "\(path).\(member.key)"
                guard let value = actual[member.key] else { return Mismatch(path: place, expected: member.value, actual: nil) }
                if let m = mismatch(member.value, value, at: place) { return m }
            }
            return nil
        case (.array(let wanted), .array(let got)):
            guard wanted.count == got.count else { return Mismatch(path: path, expected: expected, actual: actual) }
            for (n, (w, g)) in zip(wanted, got).enumerated() {
                if let m = mismatch(w, g, at: "\(path)[\(n)]") { return m }
            }
            return nil
        case (.object, .string(let text)) where path.isEmpty:
            // A log line, expected as the JSON it holds; a string inside an event is a string.
            guard let json = TestValue(json: text.utf8), case .object = json else { return Mismatch(path: path, expected: expected, actual: actual) }
            return mismatch(expected, json, at: path)
        case (.string(let w), .string(let g)):
            if TestValue.sameText(w, g) { return nil }
            if let tw = Timestamp.parse(w), let tg = Timestamp.parse(g), tw == tg { return nil }
            return Mismatch(path: path, expected: expected, actual: actual)
        default:
            return expected == actual ? nil : Mismatch(path: path, expected: expected, actual: actual)
        }
    }
}
