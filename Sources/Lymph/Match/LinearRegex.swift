/// A regular expression whose matching time is linear in the length of the text.
///
/// Filter patterns are written by operators but run on values that come from outside, so a
/// backtracking engine lets one crafted event stall a pipeline (`(a+)+$` against a long run of
/// `a`s). This engine compiles the pattern to a Thompson NFA and simulates it one scalar at a
/// time, keeping each instruction at most once per position (as RE2 and Go's regexp do): a match
/// costs O(text length × program size) and never backtracks or recurses on the input.
///
/// Syntax (RE2-like, on Unicode scalars): literals and escaped metacharacters; `\n \t \r \f \v \a
/// \e`, `\0ooo`, `\xHH`, `\x{H…}`, `\uHHHH`, `\UHHHHHHHH`; `\Q…\E`; `.` (any scalar but `\n`);
/// classes `[a-z]`, `[^…]` with escapes and `[:alpha:]`-style names; `\d \w \s` and negations
/// (ASCII, as in RE2); `^ $ \A \z \Z \b \B`; groups `( )`, `(?: )`, `(?<name> )`, `(?P<name> )`;
/// `|`; greedy and lazy `* + ? {n} {n,} {n,m}`; flags `i m s` as `(?i)`, `(?-i)`, `(?i: )`;
/// comments `(?# )`. Anchors and line terminators behave as in NSRegularExpression: without `m`,
/// `$` and `\Z` also match before a final line terminator.
///
/// Refused when constructed, with a message saying what and where: backreferences, lookaround,
/// atomic groups and possessive quantifiers (which need backtracking), unknown escapes and group
/// syntax, repeated anchors, unbalanced brackets, counts over 1000, nesting over 100 groups and
/// programs over 20,000 instructions, so that construction and each match stay bounded.
public struct LinearRegex: Sendable {
    /// Why a pattern was refused.
    public struct SyntaxError: Error, Sendable, CustomStringConvertible {
        /// What is wrong with the pattern, and at which offset when that is known.
        public let message: String
        /// Where in the pattern, counted in Unicode scalars; nil when the whole pattern is at fault.
        public let offset: Int?
        /// The message.
        public var description: String { message }
    }

    /// The largest count allowed in `{n,m}`.
    public static let maxRepetition = 1000
    /// The largest compiled program; the cost of a match is at most this times the text length.
    public static let maxInstructions = 20_000
    /// The deepest nesting of groups. Parsing and compiling use explicit stacks, but releasing
    /// the syntax tree recurses once per level.
    public static let maxNesting = 100

    /// The pattern as given.
    public let pattern: String
    let program: Program

    /// Parses and compiles `pattern`; throws when it is invalid, unsupported or over the limits.
    public init(_ pattern: String) throws(LinearRegex.SyntaxError) {
        self.pattern = pattern
        var parser = Parser(pattern)
        let (tree, size, sets) = try parser.parse()
        self.program = try Program(tree, size: size, sets: sets)
    }

    /// True when the pattern matches somewhere in `text` (anywhere, unless anchored).
    public func matches(_ text: String) -> Bool {
        program.matches(text)
    }

    /// The most steps a match on `text` can take: its length times the program's size.
    public func worstCaseSteps(_ text: String) -> Int { text.utf8.count * program.code.count }

    /// The compiled program's size, in instructions.
    public var instructionCount: Int { program.code.count }
}

// The machinery is nested in the type, so that its short names (Node, Parser, Program) do
// not shadow other modules' types elsewhere in Lymph, such as Yams' Node.
extension LinearRegex {
    // MARK: - Syntax tree

    /// Zero-width tests between two scalars.
    enum Assertion: UInt32, Sendable {
        case textStart  // ^ and \A
        case textEnd  // \z
        case textEndOrFinalLine  // $ and \Z: the end, or before a line terminator that ends the text
        case lineStart  // (?m)^
        case lineEnd  // (?m)$
        case wordBoundary  // \b
        case notWordBoundary  // \B
    }

    enum Node {
        case empty
        case scalar(UInt32)
        /// A cased scalar under `(?i)`, stored folded.
        case foldedScalar(UInt32)
        case dot(matchesNewline: Bool)
        /// An index in the parser's list of classes.
        case set(Int)
        case assertion(Assertion)
        case concat([Node])
        case alternation([Node])
        indirect case repetition(Node, min: Int, max: Int?)
    }

    /// A character class before compilation: inclusive ranges, unsorted.
    struct SetSpec {
        var ranges: [(UInt32, UInt32)] = []
        var negated = false
        var folded = false
    }

    // MARK: - Scalars

    enum Scalars {
        static let end: UInt32 = .max  // stands for "no scalar" before the start and after the end

        @inline(__always) static func isWord(_ c: UInt32) -> Bool {
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F
        }

        /// NSRegularExpression's (ICU's) line terminators.
        @inline(__always) static func isLineTerminator(_ c: UInt32) -> Bool {
            (c >= 0x0A && c <= 0x0D) || c == 0x85 || c == 0x2028 || c == 0x2029
        }

        /// Simple case folding: the lowercase of the uppercase, where both map to one scalar, so
        /// that `ſ`, `s` and `S`, or `ς`, `σ` and `Σ`, compare equal. Dotless `ı` keeps its own
        /// class, as in Unicode's (and NSRegularExpression's) default folding.
        @inline(__always) static func fold(_ c: UInt32) -> UInt32 {
            if c < 0x80 { return c >= 0x41 && c <= 0x5A ? c + 32 : c }
            return foldSlow(c)
        }

        static func foldSlow(_ c: UInt32) -> UInt32 {
            guard c != 0x131, let s = Unicode.Scalar(c), s.properties.changesWhenCaseMapped else { return c }
            let upper = single(s.properties.uppercaseMapping) ?? s
            return (single(upper.properties.lowercaseMapping) ?? upper).value
        }

        /// Whether `(?i)` changes what `c` matches; caseless scalars stay plain for the prefilter.
        static func hasCase(_ c: UInt32) -> Bool {
            c < 0x80 ? (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A : Unicode.Scalar(c)?.properties.changesWhenCaseMapped ?? false
        }

        /// Every scalar whose fold differs from it, with the fold; built (in some milliseconds) on
        /// first use of a large class under `(?i)`. Cased scalars all lie below U+1F000.
        static let foldings: [(UInt32, UInt32)] = {
            var out: [(UInt32, UInt32)] = []
            for c in UInt32(0x41)..<0x1F000 {
                let f = fold(c)
                if f != c { out.append((c, f)) }
            }
            return out
        }()

        private static func single(_ s: String) -> Unicode.Scalar? {
            var it = s.unicodeScalars.makeIterator()
            guard let first = it.next(), it.next() == nil else { return nil }
            return first
        }

        static let digit: [(UInt32, UInt32)] = [(0x30, 0x39)]
        static let word: [(UInt32, UInt32)] = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
        /// ICU's ASCII white space, which includes the vertical tab (RE2's leaves it out).
        static let space: [(UInt32, UInt32)] = [(0x09, 0x0D), (0x20, 0x20)]

        static func complement(_ ranges: [(UInt32, UInt32)]) -> [(UInt32, UInt32)] {
            var out: [(UInt32, UInt32)] = []
            var next: UInt32 = 0
            for (lo, hi) in normalized(ranges) {
                if lo > next { out.append((next, lo - 1)) }
                next = hi + 1
            }
            if next <= 0x10FFFF { out.append((next, 0x10FFFF)) }
            return out
        }

        static func normalized(_ ranges: [(UInt32, UInt32)]) -> [(UInt32, UInt32)] {
            var out: [(UInt32, UInt32)] = []
            for r in ranges.sorted(by: { $0.0 < $1.0 }) {
                if let last = out.last, r.0 <= last.1 &+ 1 {
                    out[out.count - 1].1 = max(last.1, r.1)
                } else {
                    out.append(r)
                }
            }
            return out
        }

        static let posixClasses: [String: [(UInt32, UInt32)]] = [
            "alnum": [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
            "alpha": [(0x41, 0x5A), (0x61, 0x7A)],
            "ascii": [(0x00, 0x7F)],
            "blank": [(0x09, 0x09), (0x20, 0x20)],
            "cntrl": [(0x00, 0x1F), (0x7F, 0x7F)],
            "digit": digit,
            "graph": [(0x21, 0x7E)],
            "lower": [(0x61, 0x7A)],
            "print": [(0x20, 0x7E)],
            "punct": [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
            "space": space,
            "upper": [(0x41, 0x5A)],
            "word": word,
            "xdigit": [(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
        ]
    }

    // MARK: - Parser

    /// One pass over the pattern's scalars, building the tree and counting the instructions it will
    /// compile to.
    struct Parser {
        private let s: [UInt32]
        private var i = 0
        private var flags = Flags()
        private var sets: [SetSpec] = []
        /// Classes already seen, so that `[a-z]` written a thousand times is compiled once.
        private var setIndex: [SetKey: Int] = [:]
        private var groupNames: Set<String> = []

        init(_ pattern: String) {
            s = pattern.unicodeScalars.map(\.value)
        }

        typealias SyntaxError = LinearRegex.SyntaxError

        private func error(_ message: String, at offset: Int) -> SyntaxError {
            SyntaxError(message: message, offset: offset)
        }

        private static let linearReason = "matching must stay linear in the value's length"

        private func peek(_ k: Int = 0) -> UInt32? {
            i + k < s.count ? s[i + k] : nil
        }

        private func ch(_ c: UInt32) -> String {
            Unicode.Scalar(c).map { String(Character($0)) } ?? "?"
        }

        private func text<R: RangeExpression<Int>>(_ range: R) -> String {
            var view = String.UnicodeScalarView()
            view.append(contentsOf: s[range].compactMap(Unicode.Scalar.init))
            return String(view)
        }

        private struct SetKey: Hashable {
            var bounds: [UInt32]
            var negated: Bool
            var folded: Bool
        }

        private mutating func set(_ spec: SetSpec) -> Node {
            var spec = spec
            spec.ranges = Scalars.normalized(spec.ranges)
            let key = SetKey(bounds: spec.ranges.flatMap { [$0.0, $0.1] }, negated: spec.negated, folded: spec.folded)
            if let index = setIndex[key] { return .set(index) }
            sets.append(spec)
            setIndex[key] = sets.count - 1
            return .set(sets.count - 1)
        }

        /// A group being parsed: its finished alternatives, the items of the current one, the
        /// instructions they will compile to, and the flags to restore when it closes.
        private struct Frame {
            var open: Int
            var saved: Flags
            var alternatives: [Node] = []
            var items: [Node] = []
            var alternativesSize = 0
            var itemsSize = 0

            var node: Node {
                if alternatives.isEmpty { return items.count == 1 ? items[0] : .concat(items) }
                return .alternation(alternatives + [.concat(items)])
            }

            /// Each alternative but the last adds a split and a jump.
            var size: Int {
                alternatives.isEmpty ? itemsSize : Parser.add(alternativesSize, itemsSize + 2 * alternatives.count)
            }

            mutating func append(_ item: (node: Node, size: Int)) {
                items.append(item.node)
                itemsSize = Parser.add(itemsSize, item.size)
            }
        }

        /// Sizes saturate just above the limit, so that `(a{1000}){1000}` is refused without
        /// being expanded, and no sum overflows.
        private static let sizeCap = LinearRegex.maxInstructions + 1

        private static func add(_ a: Int, _ b: Int) -> Int {
            min(sizeCap, a + b)
        }

        private struct Flags {
            var caseInsensitive = false
            var multiline = false
            var dotMatchesNewline = false
        }

        /// The tree, the number of instructions it compiles to (saturated), and its classes. Open
        /// groups are kept on an explicit stack rather than parsed by recursion, so that nesting
        /// costs heap, not the caller's thread stack.
        mutating func parse() throws(SyntaxError) -> (Node, Int, [SetSpec]) {
            var open: [Frame] = []
            var current = Frame(open: 0, saved: flags)
            while let c = peek() {
                switch c {
                case 0x7C:  // |
                    current.alternatives.append(.concat(current.items))
                    current.alternativesSize = Self.add(current.alternativesSize, current.itemsSize)
                    current.items = []
                    current.itemsSize = 0
                    i += 1
                case 0x28:  // (
                    let at = i
                    guard let saved = try parseGroupOpening() else {
                        if let q = peek(), isQuantifier(q) { throw nothingToRepeat(q) }
                        continue
                    }
                    if open.count == LinearRegex.maxNesting {
                        throw error("groups nested deeper than \(LinearRegex.maxNesting) at offset \(at)", at: at)
                    }
                    open.append(current)
                    current = Frame(open: at, saved: saved)
                case 0x29:  // )
                    guard !open.isEmpty else {
                        throw error("unbalanced ')' at offset \(i): no group is open", at: i)
                    }
                    i += 1
                    let group = (current.node, current.size)
                    flags = current.saved
                    current = open.removeLast()  // moved, not copied: the items are appended to next
                    current.append(try parseQuantifier(group, bareAssertion: false))
                case 0x5C where peek(1) == 0x51:  // \Q…\E: a quantifier after it repeats the last scalar
                    i += 2
                    var quoted: [UInt32] = []
                    while let q = peek(), !(q == 0x5C && peek(1) == 0x45) {
                        quoted.append(q)
                        i += 1
                    }
                    if i < s.count { i += 2 }
                    guard let last = quoted.popLast() else { continue }
                    for q in quoted { current.append((literal(q), 1)) }
                    current.append(try parseQuantifier((literal(last), 1), bareAssertion: false))
                default:
                    let atom = try parseAtom()
                    current.append(try parseQuantifier((atom, 1), bareAssertion: true))
                }
            }
            if !open.isEmpty {
                throw error("unbalanced '(' at offset \(current.open): missing ')'", at: current.open)
            }
            return (current.node, current.size, sets)
        }

        private func literal(_ c: UInt32) -> Node {
            flags.caseInsensitive && Scalars.hasCase(c) ? .foldedScalar(Scalars.fold(c)) : .scalar(c)
        }

        private func nothingToRepeat(_ q: UInt32) -> SyntaxError {
            error("quantifier '\(ch(q))' at offset \(i) has nothing to repeat", at: i)
        }

        private func isQuantifier(_ c: UInt32) -> Bool {
            c == 0x2A || c == 0x2B || c == 0x3F || c == 0x7B
        }

        /// Repetitions of `^`, `$`, `\b` and the like are refused, as NSRegularExpression refuses
        /// most of them; a group holding one, such as `(?:\b)?`, may still be repeated.
        private mutating func parseQuantifier(_ item: (node: Node, size: Int), bareAssertion: Bool) throws(SyntaxError) -> (node: Node, size: Int) {
            guard let c = peek() else { return item }
            if bareAssertion, case .assertion = item.node, isQuantifier(c) {
                throw error("quantifier '\(ch(c))' at offset \(i) follows an anchor or boundary, which matches no text: there is nothing to repeat", at: i)
            }
            let at = i
            var min: Int
            var max: Int?
            switch c {
            case 0x2A: (min, max) = (0, nil); i += 1
            case 0x2B: (min, max) = (1, nil); i += 1
            case 0x3F: (min, max) = (0, 1); i += 1
            case 0x7B:
                (min, max) = try parseBraces()
            default:
                return item
            }
            if peek() == 0x3F {
                i += 1  // lazy: the same yes/no answer as greedy
            } else if peek() == 0x2B {
                throw error(
                    "possessive quantifiers ('\(text(at...i))' at offset \(at)) are not supported: they only change how a backtracking engine gives up; drop the final '+'",
                    at: at)
            }
            if let q = peek(), isQuantifier(q) {
                throw error("nested quantifier '\(ch(q))' at offset \(i): a repetition cannot be repeated directly; wrap it in (?: ) first", at: i)
            }
            // Repeating what compiles to nothing (such as `(){9}`, or anything `{0}`) is nothing,
            // which also keeps compilation from walking a large subtree to emit nothing.
            let one = item.size
            if one == 0 || max == 0 { return (.empty, 0) }
            let size = max.map { min * one + ($0 - min) * (one + 1) } ?? (min == 0 ? one + 2 : min * one + 1)
            return (.repetition(item.node, min: min, max: max), Swift.min(Self.sizeCap, size))
        }

        /// `{n}`, `{n,}` or `{n,m}` at `i`; anything else starting with `{` is an error, as in
        /// NSRegularExpression.
        private mutating func parseBraces() throws(SyntaxError) -> (Int, Int?) {
            let at = i
            var j = i + 1
            func number(_ j: inout Int) -> Int? {
                let start = j
                var value = 0
                while j < s.count, s[j] >= 0x30, s[j] <= 0x39 {
                    value = Swift.min(value * 10 + Int(s[j] - 0x30), 1_000_000)
                    j += 1
                }
                return j > start ? value : nil
            }
            func notRepetition() -> SyntaxError {
                error("'{' at offset \(at) does not start a repetition like {2}, {2,} or {2,5}; write \\{ for a literal brace", at: at)
            }
            guard let min = number(&j) else { throw notRepetition() }
            var max: Int? = min
            if j < s.count, s[j] == 0x2C {
                j += 1
                max = number(&j)
            }
            guard j < s.count, s[j] == 0x7D else { throw notRepetition() }
            for count in [min, max ?? 0] where count > LinearRegex.maxRepetition {
                throw error("repetition count over \(LinearRegex.maxRepetition) in '\(text(at...j))' at offset \(at)", at: at)
            }
            if let max, max < min {
                throw error("repetition '\(text(at...j))' at offset \(at) has its maximum below its minimum", at: at)
            }
            i = j + 1
            return (min, max)
        }

        /// One atom other than a group.
        private mutating func parseAtom() throws(SyntaxError) -> Node {
            let c = s[i]
            switch c {
            case 0x5B:  // [
                return set(try parseClass())
            case 0x2E:  // .
                i += 1
                return .dot(matchesNewline: flags.dotMatchesNewline)
            case 0x5E:  // ^
                i += 1
                return .assertion(flags.multiline ? .lineStart : .textStart)
            case 0x24:  // $
                i += 1
                return .assertion(flags.multiline ? .lineEnd : .textEndOrFinalLine)
            case 0x5C:  // \
                switch try parseEscape(inClass: false) {
                case .scalar(let v): return literal(v)
                case .set(let ranges, let negated): return set(SetSpec(ranges: ranges, negated: negated))
                case .assertion(let a): return .assertion(a)
                }
            case 0x2A, 0x2B, 0x3F:
                throw nothingToRepeat(c)
            case 0x7B:
                let at = i
                _ = try parseBraces()  // throws when the brace is not a repetition at all
                throw error("repetition '\(text(at..<i))' at offset \(at) has nothing to repeat", at: at)
            default:
                i += 1
                return literal(c)
            }
        }

        /// Reads `(`, `(?:`, `(?<name>` or `(?flags:` and returns the flags to restore when the
        /// group closes; returns nil after a whole `(?flags)` or `(?#comment)`, which opens nothing.
        private mutating func parseGroupOpening() throws(SyntaxError) -> Flags? {
            let open = i
            i += 1
            let saved = flags
            if peek() == 0x3F {  // (?
                i += 1
                guard let k = peek() else {
                    throw error("unbalanced '(' at offset \(open): missing ')'", at: open)
                }
                switch k {
                case 0x3A:  // (?:
                    i += 1
                case 0x3C where peek(1) == 0x3D || peek(1) == 0x21:  // (?<= (?<!
                    throw error("lookbehind ('(?<\(ch(s[i + 1]))' at offset \(open)) is not supported: \(Self.linearReason)", at: open)
                case 0x3C:  // (?<name>
                    i += 1
                    try parseGroupName(open: open)
                case 0x50:  // (?P
                    if peek(1) == 0x3C {
                        i += 2
                        try parseGroupName(open: open)
                    } else if peek(1) == 0x3D {
                        throw error("backreferences ('(?P=' at offset \(open)) are not supported: \(Self.linearReason)", at: open)
                    } else {
                        throw error("unsupported group syntax '(?P\(peek(1).map(ch) ?? "")' at offset \(open)", at: open)
                    }
                case 0x3D, 0x21:  // (?= (?!
                    throw error("lookahead ('(?\(ch(k))' at offset \(open)) is not supported: \(Self.linearReason)", at: open)
                case 0x3E:  // (?>
                    throw error(
                        "atomic groups ('(?>' at offset \(open)) are not supported: they only change how a backtracking engine gives up; use (?: )", at: open)
                case 0x23:  // (?# comment )
                    while let c = peek(), c != 0x29 { i += 1 }
                    guard i < s.count else {
                        throw error("unterminated comment '(?#' at offset \(open): missing ')'", at: open)
                    }
                    i += 1
                    return nil
                default:
                    if try parseFlags(open: open) { return nil }
                }
            }
            return saved
        }

        private mutating func parseGroupName(open: Int) throws(SyntaxError) {
            let start = i
            while let c = peek(), Scalars.isWord(c), c != 0x5F || i > start { i += 1 }
            guard i > start, !(s[start] >= 0x30 && s[start] <= 0x39), peek() == 0x3E else {
                throw error("bad group name at offset \(start): a name is a letter then letters, digits or '_', closed by '>'", at: start)
            }
            let name = text(start..<i)
            guard groupNames.insert(name).inserted else {
                throw error("duplicate group name '\(name)' at offset \(start)", at: start)
            }
            i += 1
        }

        /// `(?flags)`, which sets flags to the end of the enclosing group (returns true), or
        /// `(?flags:`, which opens a group with them (returns false). `i` is after `(?`.
        private mutating func parseFlags(open: Int) throws(SyntaxError) -> Bool {
            var on = true
            var sawMinus = false
            if peek() == 0x29 {
                throw error("empty flag group '(?)' at offset \(open)", at: open)
            }
            while let c = peek() {
                switch c {
                case 0x69: flags.caseInsensitive = on
                case 0x6D: flags.multiline = on
                case 0x73: flags.dotMatchesNewline = on
                case 0x2D where !sawMinus:
                    sawMinus = true
                    on = false
                case 0x29:
                    i += 1
                    return true
                case 0x3A:
                    i += 1
                    return false
                default:
                    if "xwnuUJ".unicodeScalars.contains(where: { $0.value == c }) {
                        throw error("unsupported flag '\(ch(c))' at offset \(i); the flags are i, m and s", at: i)
                    }
                    throw error("unsupported group syntax '\(text(open...i))' at offset \(open)", at: open)
                }
                i += 1
            }
            throw error("unbalanced '(' at offset \(open): missing ')'", at: open)
        }

        enum Escape {
            case scalar(UInt32)
            case set([(UInt32, UInt32)], negated: Bool)
            case assertion(Assertion)
        }

        /// The escape at `i` (a backslash); leaves `i` after it.
        private mutating func parseEscape(inClass: Bool) throws(SyntaxError) -> Escape {
            let at = i
            i += 1
            guard let c = peek() else {
                throw error("trailing '\\' at offset \(at) escapes nothing", at: at)
            }
            i += 1
            switch c {
            case 0x31...0x39:
                throw error("backreferences ('\\\(ch(c))' at offset \(at)) are not supported: \(Self.linearReason)", at: at)
            case 0x6B where peek() == 0x3C || peek() == 0x7B || peek() == 0x27:  // \k<name>
                throw error("backreferences ('\\k' at offset \(at)) are not supported: \(Self.linearReason)", at: at)
            case 0x64: return .set(Scalars.digit, negated: false)  // d
            case 0x44: return .set(Scalars.digit, negated: true)  // D
            case 0x77: return .set(Scalars.word, negated: false)  // w
            case 0x57: return .set(Scalars.word, negated: true)  // W
            case 0x73: return .set(Scalars.space, negated: false)  // s
            case 0x53: return .set(Scalars.space, negated: true)  // S
            case 0x6E: return .scalar(0x0A)  // n
            case 0x74: return .scalar(0x09)  // t
            case 0x72: return .scalar(0x0D)  // r
            case 0x66: return .scalar(0x0C)  // f
            case 0x76: return .scalar(0x0B)  // v
            case 0x61: return .scalar(0x07)  // a
            case 0x65: return .scalar(0x1B)  // e
            case 0x30:  // \0 then up to three octal digits (at most \0377), as in ICU
                var value: UInt32 = 0
                var digits = 0
                while digits < 3, let d = peek(), d >= 0x30, d <= 0x37, value * 8 + (d - 0x30) <= 0xFF {
                    value = value * 8 + (d - 0x30)
                    digits += 1
                    i += 1
                }
                return .scalar(value)
            case 0x78:  // \xHH or \x{H…}
                if peek() == 0x7B {
                    i += 1
                    let value = hexDigits(max: 8)
                    guard value.count > 0, peek() == 0x7D else {
                        throw error("bad escape '\\x{' at offset \(at): expected hexadecimal digits and '}'", at: at)
                    }
                    i += 1
                    return .scalar(try scalarValue(value.value, at: at))
                }
                let value = hexDigits(max: 2)
                guard value.count > 0 else {
                    throw error("bad escape '\\x' at offset \(at): expected hexadecimal digits", at: at)
                }
                return .scalar(value.value)
            case 0x75, 0x55:  // \uHHHH, \UHHHHHHHH
                let want = c == 0x75 ? 4 : 8
                let value = hexDigits(max: want)
                guard value.count == want else {
                    throw error("bad escape '\\\(ch(c))' at offset \(at): expected \(want) hexadecimal digits", at: at)
                }
                return .scalar(try scalarValue(value.value, at: at))
            case 0x62 where !inClass: return .assertion(.wordBoundary)  // b
            case 0x42 where !inClass: return .assertion(.notWordBoundary)  // B
            case 0x41 where !inClass: return .assertion(.textStart)  // A
            case 0x7A where !inClass: return .assertion(.textEnd)  // z
            case 0x5A where !inClass: return .assertion(.textEndOrFinalLine)  // Z
            case 0x70, 0x50:
                throw error("Unicode property classes ('\\\(ch(c))' at offset \(at)) are not supported; write the class out, such as [A-Za-z]", at: at)
            default:
                if (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) {
                    let where_ = inClass ? " inside a class" : ""
                    throw error("unknown escape '\\\(ch(c))' at offset \(at)\(where_)", at: at)
                }
                return .scalar(c)  // an escaped symbol or punctuation stands for itself
            }
        }

        private mutating func hexDigits(max: Int) -> (value: UInt32, count: Int) {
            var value: UInt32 = 0
            var count = 0
            while count < max, let d = peek() {
                let v: UInt32
                switch d {
                case 0x30...0x39: v = d - 0x30
                case 0x41...0x46: v = d - 0x41 + 10
                case 0x61...0x66: v = d - 0x61 + 10
                default: return (value, count)
                }
                value = value << 4 | v
                count += 1
                i += 1
            }
            return (value, count)
        }

        private func scalarValue(_ v: UInt32, at: Int) throws(SyntaxError) -> UInt32 {
            guard Unicode.Scalar(v) != nil else {
                throw error("escape '\(text(at..<i))' at offset \(at) is not a Unicode scalar value", at: at)
            }
            return v
        }

        private mutating func parseClass() throws(SyntaxError) -> SetSpec {
            let open = i
            i += 1
            var spec = SetSpec(folded: flags.caseInsensitive)
            if peek() == 0x5E {
                spec.negated = true
                i += 1
            }
            var first = true
            while true {
                guard let c = peek() else {
                    throw error("unbalanced '[' at offset \(open): missing ']'", at: open)
                }
                if c == 0x5D && !first {
                    i += 1
                    break
                }
                first = false
                let itemStart = i
                // One item: a scalar (which may start a range) or a whole set.
                var low: UInt32
                switch c {
                case 0x5B:  // [:name:] or a nested class, which NSRegularExpression reads as set algebra
                    if peek(1) == 0x3A {
                        var j = i + 2
                        var negated = false
                        if j < s.count, s[j] == 0x5E {
                            negated = true
                            j += 1
                        }
                        let nameStart = j
                        while j < s.count, s[j] >= 0x61, s[j] <= 0x7A { j += 1 }
                        let name = String(decoding: s[nameStart..<j].map { UInt8($0) }, as: UTF8.self)
                        if j + 1 < s.count, s[j] == 0x3A, s[j + 1] == 0x5D {
                            guard let ranges = Scalars.posixClasses[name] else {
                                throw error("unknown class name '[:\(name):]' at offset \(i)", at: i)
                            }
                            spec.ranges += negated ? Scalars.complement(ranges) : ranges
                            i = j + 2
                            continue
                        }
                    }
                    throw error("nested class '[' at offset \(i) is not supported (no set operations); write \\[ for a literal bracket", at: i)
                case 0x26 where peek(1) == 0x26:
                    throw error("class intersection '&&' at offset \(i) is not supported; write \\& for a literal ampersand", at: i)
                case 0x5C:
                    switch try parseEscape(inClass: true) {
                    case .scalar(let v):
                        low = v
                    case .set(let ranges, let negated):
                        spec.ranges += negated ? Scalars.complement(ranges) : ranges
                        continue
                    case .assertion:
                        throw error("unknown escape at offset \(itemStart) inside a class", at: itemStart)
                    }
                default:
                    low = c
                    i += 1
                }
                // A range: '-' followed by anything but the closing ']'.
                if peek() == 0x2D, let after = peek(1), after != 0x5D {
                    i += 1
                    let highStart = i
                    var high: UInt32
                    if after == 0x5C {
                        switch try parseEscape(inClass: true) {
                        case .scalar(let v): high = v
                        default:
                            throw error("bad range at offset \(itemStart): a class such as \\d cannot end a range", at: itemStart)
                        }
                    } else if after == 0x5B {
                        throw error("bad range at offset \(itemStart): '[' cannot end a range; write \\[", at: highStart)
                    } else {
                        high = after
                        i += 1
                    }
                    guard low <= high else {
                        throw error("range '\(ch(low))-\(ch(high))' at offset \(itemStart) is out of order", at: itemStart)
                    }
                    spec.ranges.append((low, high))
                } else {
                    spec.ranges.append((low, low))
                }
            }
            return spec
        }
    }

    // MARK: - Program

    /// One NFA instruction. Scalar tests go on to the next instruction when they accept.
    struct Instruction: Sendable {
        enum Op: UInt8, Sendable {
            case scalar  // arg: the scalar
            case foldedScalar  // arg: the folded scalar
            case dot  // any scalar but "\n"
            case any
            case set  // arg: index in `sets`; asciiLow/asciiHigh: its answers for ASCII
            case assertion  // arg: Assertion's raw value
            case split  // arg and other: the two targets
            case jump  // arg: the target
            case match
        }
        var op: Op
        var arg: UInt32
        var other: UInt32 = 0
        /// A copy of the class's ASCII table, so the common case reads nothing else.
        var asciiLow: UInt64 = 0
        var asciiHigh: UInt64 = 0
    }

    /// A compiled class: a 128-bit answer table for ASCII, sorted ranges for the rest.
    struct ScalarSet: Sendable {
        var asciiLow: UInt64 = 0
        var asciiHigh: UInt64 = 0
        var lows: [UInt32] = []
        var highs: [UInt32] = []
        var negated: Bool
        var folded: Bool

        /// Under `(?i)` the ranges also hold the folds of their members, and a scalar is tested by
        /// its fold: the class is closed under case before it is negated, as in NSRegularExpression
        /// (so `(?i)[^a]` refuses `A`, and `(?i)[A-Z]` takes the Kelvin sign).
        init(_ spec: SetSpec) {
            var ranges = spec.ranges
            if spec.folded {
                let normalized = Scalars.normalized(ranges)
                if normalized.reduce(0, { $0 + Int($1.1 - $1.0) + 1 }) <= 4096 {
                    for (lo, hi) in normalized {
                        for c in lo...hi {
                            let f = Scalars.fold(c)
                            if f != c { ranges.append((f, f)) }
                        }
                    }
                } else {
                    let members = Self(ranges: normalized)
                    for (c, f) in Scalars.foldings where members.inRanges(c) { ranges.append((f, f)) }
                }
            }
            self.init(ranges: Scalars.normalized(ranges))
            negated = spec.negated
            folded = spec.folded
            var table: (UInt64, UInt64) = (0, 0)
            for c in UInt32(0)..<128 where slowContains(c) {
                if c < 64 { table.0 |= 1 << UInt64(c) } else { table.1 |= 1 << UInt64(c - 64) }
            }
            (asciiLow, asciiHigh) = table
        }

        private init(ranges: [(UInt32, UInt32)]) {
            lows = ranges.map(\.0)
            highs = ranges.map(\.1)
            negated = false
            folded = false
        }

        @inline(__always) func contains(_ c: UInt32) -> Bool {
            if c < 64 { return asciiLow >> UInt64(c) & 1 != 0 }
            if c < 128 { return asciiHigh >> UInt64(c - 64) & 1 != 0 }
            return slowContains(c)
        }

        private func slowContains(_ c: UInt32) -> Bool {
            inRanges(folded ? Scalars.fold(c) : c) != negated
        }

        private func inRanges(_ c: UInt32) -> Bool {
            var lo = 0
            var hi = lows.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if highs[mid] < c { lo = mid + 1 } else { hi = mid }
            }
            return lo < lows.count && lows[lo] <= c
        }
    }

    struct Program: Sendable {
        var code: [Instruction] = []
        var sets: [ScalarSet] = []
        /// Only a match starting at offset 0 is possible (every path begins with ^ or \A).
        var anchoredAtStart = false
        /// When no thread is alive, positions whose scalar no first instruction accepts are skipped.
        var usesPrefilter = false
        var firstLow: UInt64 = 0
        var firstHigh: UInt64 = 0
        var firstNonASCII = true
        /// Whether any instruction compares folded scalars, so the text's scalars need folding.
        var folds = false

        init(_ tree: Node, size: Int, sets specs: [SetSpec]) throws(LinearRegex.SyntaxError) {
            if size + 1 > LinearRegex.maxInstructions {
                throw LinearRegex.SyntaxError(
                    message:
                        "pattern is too large: it compiles to more than \(LinearRegex.maxInstructions) instructions (counted repetitions multiply, as in (a{1000}){1000})",
                    offset: nil)
            }
            code.reserveCapacity(size + 1)
            sets = specs.map(ScalarSet.init)
            emit(tree)
            code.append(Instruction(op: .match, arg: 0))
            analyseStart()
        }

        /// A node being emitted: `step` counts the children (or copies) already emitted, `mark` and
        /// `patches` hold instruction indexes to fill in once later ones exist.
        private struct EmitFrame {
            let node: Node
            var step = 0
            var mark = 0
            var patches: [Int] = []
        }

        /// Emits `tree` depth first with an explicit stack, since its depth follows the pattern.
        private mutating func emit(_ tree: Node) {
            var stack = [EmitFrame(node: tree)]
            while !stack.isEmpty {
                let top = stack.count - 1
                let step = stack[top].step
                stack[top].step += 1
                var child: Node?
                switch stack[top].node {
                case .empty:
                    break
                case .scalar(let c):
                    code.append(Instruction(op: .scalar, arg: c))
                case .foldedScalar(let c):
                    folds = true
                    code.append(Instruction(op: .foldedScalar, arg: c))
                case .dot(let all):
                    code.append(Instruction(op: all ? .any : .dot, arg: 0))
                case .set(let index):
                    code.append(Instruction(op: .set, arg: UInt32(index), asciiLow: sets[index].asciiLow, asciiHigh: sets[index].asciiHigh))
                case .assertion(let a):
                    code.append(Instruction(op: .assertion, arg: a.rawValue))
                case .concat(let items):
                    child = step < items.count ? items[step] : nil
                case .alternation(let alternatives):
                    // split next, other; first; jump end; other: split …; last; end:
                    if step > 0 && step < alternatives.count {
                        stack[top].patches.append(code.count)
                        code.append(Instruction(op: .jump, arg: 0))
                        code[stack[top].mark].other = UInt32(code.count)
                    }
                    if step < alternatives.count - 1 {
                        stack[top].mark = code.count
                        code.append(Instruction(op: .split, arg: UInt32(code.count + 1)))
                    }
                    if step < alternatives.count {
                        child = alternatives[step]
                    } else {
                        for j in stack[top].patches { code[j].arg = UInt32(code.count) }
                    }
                case .repetition(let inner, let lo, let hi?):
                    // lo copies, then hi - lo optional ones, each skippable to the end.
                    if step < hi {
                        if step >= lo {
                            stack[top].patches.append(code.count)
                            code.append(Instruction(op: .split, arg: UInt32(code.count + 1)))
                        }
                        child = inner
                    } else {
                        for j in stack[top].patches { code[j].other = UInt32(code.count) }
                    }
                case .repetition(let inner, 0, nil):
                    // top: split body, end; body; jump top; end:
                    if step == 0 {
                        stack[top].mark = code.count
                        code.append(Instruction(op: .split, arg: UInt32(code.count + 1)))
                        child = inner
                    } else {
                        code.append(Instruction(op: .jump, arg: UInt32(stack[top].mark)))
                        code[stack[top].mark].other = UInt32(code.count)
                    }
                case .repetition(let inner, let lo, nil):
                    // lo - 1 copies, then body; split body, end.
                    if step < lo {
                        if step == lo - 1 { stack[top].mark = code.count }
                        child = inner
                    } else {
                        code.append(Instruction(op: .split, arg: UInt32(stack[top].mark), other: UInt32(code.count + 1)))
                    }
                }
                if let child {
                    stack.append(EmitFrame(node: child))
                } else {
                    stack.removeLast()
                }
            }
        }

        /// Finds whether every match must start at offset 0, and which scalars can start a match
        /// elsewhere, for the prefilter.
        private mutating func analyseStart() {
            let anchored = epsilonClosure(stoppingAtTextStart: true)
            anchoredAtStart = anchored.scalarTests.isEmpty && !anchored.matches
            // Assertions are assumed to hold here: the prefilter may accept too much, never too little.
            let start = epsilonClosure(stoppingAtTextStart: false)
            guard !start.matches, !anchoredAtStart else { return }
            usesPrefilter = true
            firstNonASCII = false
            var low: UInt64 = 0
            var high: UInt64 = 0
            func accept(_ c: UInt32) {
                if c < 64 { low |= 1 << UInt64(c) } else if c < 128 { high |= 1 << UInt64(c - 64) }
            }
            for pc in start.scalarTests {
                let inst = code[pc]
                switch inst.op {
                case .scalar:
                    accept(inst.arg)
                    firstNonASCII = firstNonASCII || inst.arg >= 0x80
                case .foldedScalar:
                    for c in UInt32(0)..<128 where Scalars.fold(c) == inst.arg { accept(c) }
                    firstNonASCII = true  // the Kelvin sign folds to k, long s to s
                case .set:
                    low |= inst.asciiLow
                    high |= inst.asciiHigh
                    let set = sets[Int(inst.arg)]
                    firstNonASCII = firstNonASCII || set.negated || set.folded || (set.highs.last ?? 0) >= 0x80
                default:  // . and (?s).
                    low = .max
                    high = .max
                    firstNonASCII = true
                }
            }
            (firstLow, firstHigh) = (low, high)
        }

        /// The scalar tests reachable from the start through splits, jumps and assertions, and
        /// whether the match instruction is.
        private func epsilonClosure(stoppingAtTextStart: Bool) -> (scalarTests: [Int], matches: Bool) {
            var seen = [Bool](repeating: false, count: code.count)
            var stack = [0]
            var tests: [Int] = []
            var matches = false
            seen[0] = true
            func visit(_ pc: Int) {
                if !seen[pc] {
                    seen[pc] = true
                    stack.append(pc)
                }
            }
            while let pc = stack.popLast() {
                let inst = code[pc]
                switch inst.op {
                case .split:
                    visit(Int(inst.arg))
                    visit(Int(inst.other))
                case .jump:
                    visit(Int(inst.arg))
                case .assertion:
                    if !(stoppingAtTextStart && inst.arg == Assertion.textStart.rawValue) { visit(pc + 1) }
                case .match:
                    matches = true
                default:
                    tests.append(pc)
                }
            }
            return (tests, matches)
        }

        @inline(__always) private func accepts(_ inst: Instruction, _ c: UInt32, _ folded: UInt32) -> Bool {
            switch inst.op {
            case .scalar: return c == inst.arg
            case .foldedScalar: return folded == inst.arg
            case .dot: return c != 0x0A
            case .any: return true
            case .set:
                if c < 64 { return inst.asciiLow >> UInt64(c) & 1 != 0 }
                if c < 128 { return inst.asciiHigh >> UInt64(c - 64) & 1 != 0 }
                return sets[Int(inst.arg)].contains(c)
            default: return false
            }
        }

        // MARK: Matching

        /// Thompson simulation. `stack` holds the threads entering the current position, marked
        /// with this position's stamp in `mark`; the closure follows splits, jumps and assertions,
        /// each instruction at most once per position, and collects scalar tests in `runnable`;
        /// those that accept the scalar push their successor, marked for the next position. Every
        /// list holds each instruction at most once, so none outgrows the program.
        func matches(_ text: String) -> Bool {
            let count = code.count
            let mark = UnsafeMutablePointer<Int>.allocate(capacity: count)
            mark.initialize(repeating: 0, count: count)
            let stack = UnsafeMutablePointer<UInt32>.allocate(capacity: count)
            let runnable = UnsafeMutablePointer<UInt32>.allocate(capacity: count)
            defer {
                mark.deallocate()
                stack.deallocate()
                runnable.deallocate()
            }
            var depth = 0
            var ready = 0

            var scalars = text.unicodeScalars.makeIterator()
            let end = Scalars.end
            var prev = end
            var cur = scalars.next()?.value ?? end
            var next1 = cur == end ? end : scalars.next()?.value ?? end
            var next2 = next1 == end ? end : scalars.next()?.value ?? end
            var stamp = 1  // position + 1, so that 0 means "never"

            return code.withUnsafeBufferPointer { code in
                while true {
                    if depth == 0 {
                        if anchoredAtStart && stamp > 1 { return false }
                        if usesPrefilter {
                            while cur != end {
                                let wanted =
                                    cur < 64
                                    ? firstLow >> UInt64(cur) & 1 != 0
                                    : cur < 128 ? firstHigh >> UInt64(cur - 64) & 1 != 0 : firstNonASCII
                                if wanted { break }
                                prev = cur
                                cur = next1
                                next1 = next2
                                next2 = next1 == end ? end : scalars.next()?.value ?? end
                                stamp += 1
                            }
                            if cur == end { return false }
                        }
                    }
                    if (!anchoredAtStart || stamp == 1) && mark[0] != stamp {
                        mark[0] = stamp
                        stack[depth] = 0
                        depth += 1
                    }
                    // Closure at this position.
                    while depth > 0 {
                        depth -= 1
                        let pc = Int(stack[depth])
                        let inst = code[pc]
                        switch inst.op {
                        case .split:
                            if mark[Int(inst.arg)] != stamp {
                                mark[Int(inst.arg)] = stamp
                                stack[depth] = inst.arg
                                depth += 1
                            }
                            if mark[Int(inst.other)] != stamp {
                                mark[Int(inst.other)] = stamp
                                stack[depth] = inst.other
                                depth += 1
                            }
                        case .jump:
                            if mark[Int(inst.arg)] != stamp {
                                mark[Int(inst.arg)] = stamp
                                stack[depth] = inst.arg
                                depth += 1
                            }
                        case .assertion:
                            if mark[pc + 1] != stamp && holds(inst.arg, prev: prev, cur: cur, next1: next1, next2: next2) {
                                mark[pc + 1] = stamp
                                stack[depth] = UInt32(pc + 1)
                                depth += 1
                            }
                        case .match:
                            return true
                        default:
                            runnable[ready] = UInt32(pc)
                            ready += 1
                        }
                    }
                    if cur == end { return false }
                    // Step over `cur`.
                    let folded = folds ? Scalars.fold(cur) : cur
                    let nextStamp = stamp + 1
                    for k in 0..<ready {
                        let pc = Int(runnable[k])
                        if accepts(code[pc], cur, folded) && mark[pc + 1] != nextStamp {
                            mark[pc + 1] = nextStamp
                            stack[depth] = UInt32(pc + 1)
                            depth += 1
                        }
                    }
                    ready = 0
                    prev = cur
                    cur = next1
                    next1 = next2
                    next2 = next1 == end ? end : scalars.next()?.value ?? end
                    stamp = nextStamp
                }
            }
        }

        @inline(__always) private func holds(_ raw: UInt32, prev: UInt32, cur: UInt32, next1: UInt32, next2: UInt32) -> Bool {
            let end = Scalars.end
            switch Assertion(rawValue: raw) ?? .textEnd {
            case .textStart:
                return prev == end
            case .textEnd:
                return cur == end
            case .textEndOrFinalLine:
                // The end, or before a final terminator ("\r\n" counting as one), but not inside "\r\n".
                if cur == end { return true }
                guard Scalars.isLineTerminator(cur), !(prev == 0x0D && cur == 0x0A) else { return false }
                return next1 == end || (cur == 0x0D && next1 == 0x0A && next2 == end)
            case .lineStart:
                if prev == end { return true }
                return Scalars.isLineTerminator(prev) && cur != end && !(prev == 0x0D && cur == 0x0A)
            case .lineEnd:
                if cur == end { return true }
                return Scalars.isLineTerminator(cur) && !(prev == 0x0D && cur == 0x0A)
            case .wordBoundary:
                return (prev != end && Scalars.isWord(prev)) != (cur != end && Scalars.isWord(cur))
            case .notWordBoundary:
                return (prev != end && Scalars.isWord(prev)) == (cur != end && Scalars.isWord(cur))
            }
        }
    }
}
