/// An expected list (`output`, `dropped`, a log stage's lines...) set against what the run
/// produced, entry by entry, for people to read.
///
/// Entries are aligned by the longest run of in-order matches (`SubsetMatcher`), so one missing
/// event shows as one missing line rather than shifting every later pair out of step. Between two
/// aligned entries, a left-over expected entry is paired with the next left-over actual one as
/// changed (with the first field that differs), unless it names an `id` the actual one does not
/// have; what is left after that is missing or unexpected.
public struct ExpectationDiff: Sendable {
    /// One entry of the comparison, in order.
    public enum Entry: Sendable, Equatable {
        /// Expected and found.
        case matched(expected: TestValue)
        /// Expected here, and what was here instead, with where they first differ.
        case changed(expected: TestValue, actual: TestValue, mismatch: SubsetMatcher.Mismatch, note: String?)
        /// Expected, with nothing left to set against it; `note` says what became of it, if known.
        case missing(expected: TestValue, note: String?)
        /// Produced, and not expected.
        case unexpected(actual: TestValue)
    }

    /// The expectation's key, such as `output` or `logs.log-7`.
    public let key: String
    /// The entries, in order.
    public let entries: [Entry]
    /// How many entries were expected and how many there were.
    public let expectedCount: Int, actualCount: Int

    /// Whether every expected entry matched and nothing else was produced.
    public var matches: Bool {
        entries.allSatisfy { if case .matched = $0 { return true } else { return false } }
    }

    /// Past this many entries on either side, entries are compared by position only (the
    /// alignment's table grows with the product of the two counts).
    static let alignmentLimit = 2_000

    /// Compares `expected` with `actual`. `explain` says, for an expected entry that was not
    /// found, what became of it (`e2 was dropped by filter-3 (type)`), or nil.
    public init(key: String, expected: [TestValue], actual: [TestValue], explain: (TestValue) -> String? = { _ in nil }) {
        self.key = key
        self.expectedCount = expected.count
        self.actualCount = actual.count
        let pairs = Self.align(expected, actual)
        var entries: [Entry] = []
        var e = 0, a = 0
        func gap(untilExpected eEnd: Int, actual aEnd: Int) {
            while e < eEnd {
                // The next left-over actual entry that is the same event (same `id`) when the
                // expectation names one, else the next one.
                if let t = (a..<aEnd).first(where: { Self.corresponds(expected[e], actual[$0]) }) {
                    while a < t {
                        entries.append(.unexpected(actual: actual[a]))
                        a += 1
                    }
                    let m = SubsetMatcher.mismatch(expected[e], actual[a]) ?? SubsetMatcher.Mismatch(path: "", expected: expected[e], actual: actual[a])
                    entries.append(.changed(expected: expected[e], actual: actual[a], mismatch: m, note: explain(expected[e])))
                    a += 1
                } else {
                    entries.append(.missing(expected: expected[e], note: explain(expected[e])))
                }
                e += 1
            }
            while a < aEnd {
                entries.append(.unexpected(actual: actual[a]))
                a += 1
            }
        }
        for (pe, pa) in pairs {
            gap(untilExpected: pe, actual: pa)
            entries.append(.matched(expected: expected[pe]))
            e = pe + 1
            a = pa + 1
        }
        gap(untilExpected: expected.count, actual: actual.count)
        self.entries = entries
    }

    /// Whether a left-over actual entry stands against a left-over expected one: the same `id`
    /// when the expected entry names one (another event is not a changed version of it).
    static func corresponds(_ expected: TestValue, _ actual: TestValue) -> Bool {
        guard let id = expected["id"] else { return true }
        return actual["id"] == id
    }

    /// Index pairs (expected, actual) of the longest in-order run of matches.
    static func align(_ expected: [TestValue], _ actual: [TestValue]) -> [(Int, Int)] {
        let n = expected.count, m = actual.count
        guard n > 0, m > 0 else { return [] }
        guard n <= alignmentLimit, m <= alignmentLimit else {
            return (0..<min(n, m)).filter { SubsetMatcher.matches(expected[$0], actual[$0]) }.map { ($0, $0) }
        }
        var match = [[Bool]](repeating: [Bool](repeating: false, count: m), count: n)
        for i in 0..<n { for j in 0..<m { match[i][j] = SubsetMatcher.matches(expected[i], actual[j]) } }
        // lengths[i][j]: the longest run within expected[i...] and actual[j...].
        var lengths = [[Int]](repeating: [Int](repeating: 0, count: m + 1), count: n + 1)
        for i in stride(from: n - 1, through: 0, by: -1) {
            for j in stride(from: m - 1, through: 0, by: -1) {
                lengths[i][j] = match[i][j] ? lengths[i + 1][j + 1] + 1 : max(lengths[i + 1][j], lengths[i][j + 1])
            }
        }
        var pairs: [(Int, Int)] = []
        var i = 0, j = 0
        while i < n && j < m {
            if match[i][j] && lengths[i][j] == lengths[i + 1][j + 1] + 1 {
                pairs.append((i, j))
                i += 1
                j += 1
            } else if lengths[i + 1][j] >= lengths[i][j + 1] {
                i += 1
            } else {
                j += 1
            }
        }
        return pairs
    }

    /// Most entries printed; the rest are counted.
    static let maxPrintedEntries = 40
    /// Longest value printed, in characters.
    static let maxValueLength = 300

    /// The comparison for people: a headline, then a line per entry (`  ` matched, `~` changed,
    /// `-` missing, `+` unexpected), with the mismatch and any note indented below.
    public func lines() -> [String] {
        var out = ["\(key): expected \(Self.count(expectedCount)), got \(actualCount)"]
        for (n, entry) in entries.enumerated() {
            if n == Self.maxPrintedEntries {
                out.append("  … \(entries.count - n) more")
                break
            }
            switch entry {
            case .matched(let expected):
                out.append("    \(Self.show(expected))")
            case .changed(let expected, let actual, let mismatch, let note):
                // Two lines of text are shown quoted, so a difference in blanks can be seen.
                let quote = expected.string != nil && actual.string != nil
                out.append("  ~ expected \(Self.show(expected, quoted: quote))")
                out.append("         got \(Self.show(actual, quoted: quote))")
                if !mismatch.path.isEmpty || mismatch.actual == nil { out.append("      \(mismatch)") }
                if let note { out.append("      \(note)") }
            case .missing(let expected, let note):
                out.append("  - missing  \(Self.show(expected))")
                if let note { out.append("      \(note)") }
            case .unexpected(let actual):
                out.append("  + extra    \(Self.show(actual))")
            }
        }
        return out
    }

    static func count(_ n: Int) -> String { n == 1 ? "1 entry" : "\(n) entries" }

    static func show(_ value: TestValue, quoted: Bool = false) -> String {
        let text = quoted ? value.json : value.string ?? value.json
        return text.count > maxValueLength ? String(text.prefix(maxValueLength)) + "…" : text
    }
}
