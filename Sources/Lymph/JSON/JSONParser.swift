#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A validating, non-recursive JSON reader that builds a tape over the input bytes.
///
/// Accepts exactly RFC 8259: UTF-8 text, no trailing commas, no leading zeros, no control
/// characters in strings, escapes limited to the standard ones. Unpaired UTF-16 surrogate
/// escapes (`"\uD800"`) are rejected, since they cannot be written as UTF-8. Nesting deeper
/// than `maxDepth` is rejected instead of recursing, so no input can exhaust the stack.
public enum JSONParser {
    /// The deepest nesting accepted by default; deeper documents are rejected, never recursed into.
    public static let defaultMaxDepth = 512

    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")

    /// Parses and validates `bytes` into a tape of their own.
    public static func parse(_ bytes: ArraySlice<UInt8>, maxDepth: Int = defaultMaxDepth) throws(JSONSyntaxError) -> [JSONTapeEntry] {
        var tape = JSONTapeBuilder(capacity: bytes.count / 12)
        try parse(bytes, appendingTo: &tape, maxDepth: maxDepth)
        return tape.finish()
    }

    /// Checks that `bytes` are one JSON value, as `parse` does, without copying out a tape.
    public static func validate(_ bytes: ArraySlice<UInt8>, maxDepth: Int = defaultMaxDepth) throws(JSONSyntaxError) {
        var tape = JSONTapeBuilder(capacity: bytes.count / 12)
        try parse(bytes, appendingTo: &tape, maxDepth: maxDepth)
    }

    /// Parses `bytes` onto the end of `tape`, with indices relative to where it starts, so
    /// several documents can share one tape (one allocation per batch instead of per event).
    /// On error `tape` is left as it was.
    public static func parse(_ bytes: ArraySlice<UInt8>, appendingTo tape: inout JSONTapeBuilder, maxDepth: Int = defaultMaxDepth) throws(JSONSyntaxError) {
        guard bytes.count < Int(UInt32.max) else {
            throw JSONSyntaxError(offset: 0, message: "document larger than 4 GiB")
        }
        // The reader works on the builder's pointer and room as locals, and hands them back
        // (it may have moved the entries to a larger buffer) whether or not the document parsed.
        let result = bytes.withUnsafeBufferPointer { buffer -> Result<Int, JSONSyntaxError> in
            var reader = Reader(p: buffer, out: tape.base, capacity: tape.capacity, count: tape.count, maxDepth: maxDepth)
            defer {
                tape.base = reader.out
                tape.capacity = reader.capacity
            }
            do throws(JSONSyntaxError) {
                try reader.run()
                return .success(reader.count)
            } catch {
                return .failure(error)
            }
        }
        tape.count = try result.get()
    }

    /// Decodes a string body (without quotes) that was validated by `parse`.
    public static func unescape(_ raw: ArraySlice<UInt8>) -> [UInt8] {
        raw.withUnsafeBufferPointer { source in
            [UInt8](unsafeUninitializedCapacity: source.count) { out, count in
                guard let to = out.baseAddress else {
                    count = 0
                    return
                }
                count = unescape(source, into: to)
            }
        }
    }

    /// `unescape(_:)` into memory the caller has, with room for `source.count` bytes; returns
    /// how many it wrote.
    static func unescape(_ source: UnsafeBufferPointer<UInt8>, into to: UnsafeMutablePointer<UInt8>) -> Int {
        // Every escape is longer than what it stands for (`\uXXXX` is 6 bytes for at most 3, a
        // surrogate pair 12 for 4), so the text fits in `source.count` bytes, and what is written
        // never passes what is read. The runs between escapes (in a delivery's body, mostly
        // short runs between `\"`) are copied eight bytes at a time, each word stored whole and
        // the output advanced to its first backslash, which the escape then overwrites.
        guard let from = source.baseAddress else { return 0 }
        let end = source.count
        var i = 0
        var o = 0
        let ones: UInt64 = 0x0101_0101_0101_0101
        while i < end {
            if i + 8 <= end {
                let w = UnsafeRawPointer(from + i).loadUnaligned(as: UInt64.self)
                UnsafeMutableRawPointer(to + o).storeBytes(of: w, as: UInt64.self)
                let x = UInt64(littleEndian: w) ^ (ones &* 0x5C)
                let backslashes = (x &- ones) & ~x & (ones &* 0x80)
                if backslashes == 0 {
                    i += 8
                    o += 8
                    continue
                }
                let run = backslashes.trailingZeroBitCount >> 3
                i += run
                o += run
            } else if from[i] != backslash {
                to[o] = from[i]
                i += 1
                o += 1
                continue
            }
            let e = from[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "b"): to[o] = 0x08
            case UInt8(ascii: "f"): to[o] = 0x0C
            case UInt8(ascii: "n"): to[o] = 0x0A
            case UInt8(ascii: "r"): to[o] = 0x0D
            case UInt8(ascii: "t"): to[o] = 0x09
            case UInt8(ascii: "u"):
                var scalar = hex4(from + i)
                i += 4
                if scalar >= 0xD800 && scalar < 0xDC00 {
                    let low = hex4(from + i + 2)
                    i += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                o += writeUTF8(scalar, to: to + o)
                continue
            default: to[o] = e  // " \ /
            }
            o += 1
        }
        return o
    }

    static func hex4(_ at: UnsafePointer<UInt8>) -> UInt32 {
        var v: UInt32 = 0
        for k in 0..<4 { v = v << 4 | UInt32(hexValue(at[k])) }
        return v
    }

    /// Writes `scalar` as UTF-8 at `to`; returns how many bytes.
    static func writeUTF8(_ scalar: UInt32, to: UnsafeMutablePointer<UInt8>) -> Int {
        switch scalar {
        case 0..<0x80:
            to[0] = UInt8(scalar)
            return 1
        case 0x80..<0x800:
            to[0] = UInt8(0xC0 | (scalar >> 6))
            to[1] = UInt8(0x80 | (scalar & 0x3F))
            return 2
        case 0x800..<0x10000:
            to[0] = UInt8(0xE0 | (scalar >> 12))
            to[1] = UInt8(0x80 | ((scalar >> 6) & 0x3F))
            to[2] = UInt8(0x80 | (scalar & 0x3F))
            return 3
        default:
            to[0] = UInt8(0xF0 | (scalar >> 18))
            to[1] = UInt8(0x80 | ((scalar >> 12) & 0x3F))
            to[2] = UInt8(0x80 | ((scalar >> 6) & 0x3F))
            to[3] = UInt8(0x80 | (scalar & 0x3F))
            return 4
        }
    }

    /// The number's value as a Double (nearest; out-of-range magnitudes become ±infinity or 0).
    public static func parseDouble(_ raw: ArraySlice<UInt8>) -> Double? {
        // Any length (many digits are valid JSON): withUnsafeTemporaryAllocation puts a long
        // one on the heap.
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: raw.count + 1) { buffer -> Double? in
            var k = 0
            for b in raw {
                buffer[k] = CChar(bitPattern: b)
                k += 1
            }
            buffer[k] = 0
            var endPointer: UnsafeMutablePointer<CChar>?
            let value = strtod(buffer.baseAddress!, &endPointer)
            return endPointer == buffer.baseAddress! + k ? value : nil
        }
    }

    @inline(__always)
    static func hexValue(_ b: UInt8) -> UInt8 {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b &- UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b &- UInt8(ascii: "a") &+ 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b &- UInt8(ascii: "A") &+ 10
        default: return 0xFF
        }
    }
}

extension JSONParser {
    /// The parsing state over one buffer; a struct so the hot loop works on locals.
    struct Reader {
        let p: UnsafeBufferPointer<UInt8>
        /// The tape's entries (the builder's buffer), its room and how many are written.
        var out: UnsafeMutablePointer<JSONTapeEntry>
        var capacity: Int
        var count: Int
        /// Where this document starts on the tape; entries' `next` are relative to it.
        let base: Int
        let maxDepth: Int
        /// The innermost open container's index on the tape, or -1. The containers open around it
        /// are chained through their entries' `next` (the parent's index from `base`, plus one;
        /// 0 for none) until each closes and `next` takes its real value: no stack to allocate
        /// for every document.
        var top = -1
        var depth = 0

        init(p: UnsafeBufferPointer<UInt8>, out: UnsafeMutablePointer<JSONTapeEntry>, capacity: Int, count: Int, maxDepth: Int) {
            self.p = p
            self.out = out
            self.capacity = capacity
            self.count = count
            self.base = count
            self.maxDepth = maxDepth
        }

        @inline(__always)
        mutating func append(_ entry: JSONTapeEntry) {
            if count == capacity { JSONTapeBuilder.grow(&out, capacity: &capacity, count: count, needed: count + 1) }
            (out + count).initialize(to: entry)
            count += 1
        }

        @inline(__always)
        func skipWhitespace(_ i: Int) -> Int {
            var i = i
            while i < p.count {
                let b = p[i]
                if b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { i += 1 } else { break }
            }
            return i
        }

        func fail(_ offset: Int, _ message: String) -> JSONSyntaxError {
            JSONSyntaxError(offset: offset, message: message, truncated: offset >= p.count)
        }

        func describe(_ i: Int) -> String {
            guard i < p.count else { return "end of input" }
            let b = p[i]
            if b >= 0x21 && b < 0x7F { return "'\(Character(UnicodeScalar(b)))'" }
            return "byte 0x\(String(b, radix: 16, uppercase: true))"
        }

        mutating func run() throws(JSONSyntaxError) {
            var i = skipWhitespace(0)
            if i == p.count { throw fail(i, "empty document") }
            value: while true {
                guard i < p.count else { throw fail(i, "unexpected end of input, expected a value") }
                switch p[i] {
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    let isObject = p[i] == UInt8(ascii: "{")
                    if depth >= maxDepth { throw fail(i, "nesting deeper than \(maxDepth) levels") }
                    let parent = UInt32(top < 0 ? 0 : top - base + 1)
                    append(JSONTapeEntry(kind: isObject ? .object : .array, hasEscapes: false, start: UInt32(i), end: 0, next: parent))
                    top = count - 1
                    depth += 1
                    i = skipWhitespace(i + 1)
                    let closer = isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
                    if i < p.count && p[i] == closer {
                        close(at: i)
                        i += 1
                    } else if isObject {
                        i = try memberKey(i)
                        continue value
                    } else {
                        continue value
                    }
                case JSONParser.quote:
                    i = try string(i)
                case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    i = try number(i)
                case UInt8(ascii: "t"):
                    i = try literal(i, "true", .true)
                case UInt8(ascii: "f"):
                    i = try literal(i, "false", .false)
                case UInt8(ascii: "n"):
                    i = try literal(i, "null", .null)
                default:
                    throw fail(i, "unexpected \(describe(i)), expected a value")
                }
                // After a complete value: close containers or move to the next item.
                while true {
                    i = skipWhitespace(i)
                    guard top >= 0 else {
                        if i != p.count { throw fail(i, "unexpected \(describe(i)) after the document") }
                        return
                    }
                    guard i < p.count else { throw fail(i, "unexpected end of input, unclosed \(out[top].kind == .object ? "object" : "array")") }
                    let b = p[i]
                    if out[top].kind == .object {
                        if b == UInt8(ascii: ",") {
                            i = try memberKey(skipWhitespace(i + 1))
                            continue value
                        }
                        if b == UInt8(ascii: "}") {
                            close(at: i)
                            i += 1
                            continue
                        }
                        throw fail(i, "unexpected \(describe(i)), expected ',' or '}' in object")
                    } else {
                        if b == UInt8(ascii: ",") {
                            i = skipWhitespace(i + 1)
                            continue value
                        }
                        if b == UInt8(ascii: "]") {
                            close(at: i)
                            i += 1
                            continue
                        }
                        throw fail(i, "unexpected \(describe(i)), expected ',' or ']' in array")
                    }
                }
            }
        }

        mutating func close(at i: Int) {
            let closing = top
            let parent = Int(out[closing].next)
            out[closing].end = UInt32(i + 1)
            out[closing].next = UInt32(count - base)
            top = parent == 0 ? -1 : base + parent - 1
            depth -= 1
        }

        /// Reads `"key" :` and returns the index of the value that follows.
        mutating func memberKey(_ i: Int) throws(JSONSyntaxError) -> Int {
            guard i < p.count else { throw fail(i, "unexpected end of input, expected an object key") }
            guard p[i] == JSONParser.quote else { throw fail(i, "unexpected \(describe(i)), expected a string key") }
            var j = skipWhitespace(try string(i))
            guard j < p.count, p[j] == UInt8(ascii: ":") else { throw fail(j, "unexpected \(describe(j)), expected ':' after object key") }
            j = skipWhitespace(j + 1)
            return j
        }

        mutating func literal(_ i: Int, _ word: StaticString, _ kind: JSONTapeEntry.Kind) throws(JSONSyntaxError) -> Int {
            let n = word.utf8CodeUnitCount
            guard i + n <= p.count else { throw fail(i, "unexpected \(describe(i)), expected a value") }
            let w = word.utf8Start
            for k in 0..<n where p[i + k] != w[k] {
                throw fail(i + k, "unexpected \(describe(i + k)), expected a value")
            }
            let next = UInt32(count - base + 1)
            append(JSONTapeEntry(kind: kind, hasEscapes: false, start: UInt32(i), end: UInt32(i + n), next: next))
            return i + n
        }

        mutating func number(_ start: Int) throws(JSONSyntaxError) -> Int {
            var i = start
            @inline(__always) func isDigit(_ k: Int) -> Bool { k < p.count && p[k] >= 0x30 && p[k] <= 0x39 }
            if p[i] == UInt8(ascii: "-") { i += 1 }
            guard isDigit(i) else { throw fail(i, "a number needs a digit here, found \(describe(i))") }
            if p[i] == UInt8(ascii: "0") {
                i += 1
                if isDigit(i) { throw fail(i, "numbers may not have leading zeros") }
            } else {
                while isDigit(i) { i += 1 }
            }
            if i < p.count && p[i] == UInt8(ascii: ".") {
                i += 1
                guard isDigit(i) else { throw fail(i, "a decimal point must be followed by a digit") }
                while isDigit(i) { i += 1 }
            }
            if i < p.count && (p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E")) {
                i += 1
                if i < p.count && (p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-")) { i += 1 }
                guard isDigit(i) else { throw fail(i, "an exponent needs a digit") }
                while isDigit(i) { i += 1 }
            }
            let next = UInt32(count - base + 1)
            append(JSONTapeEntry(kind: .number, hasEscapes: false, start: UInt32(start), end: UInt32(i), next: next))
            return i
        }

        /// Reads a string starting at its opening quote; returns the index after the closing quote.
        mutating func string(_ open: Int) throws(JSONSyntaxError) -> Int {
            var i = open + 1
            var escaped = false
            let n = p.count
            while true {
                // Fast path, eight bytes at a time: skip words with no quote, backslash,
                // control character or non-ASCII byte, and go straight to the first such byte
                // of a word that has one (the lowest flag is exact: a borrow only flags bytes
                // above a byte that is flagged itself).
                while i + 8 <= n {
                    let w = UInt64(littleEndian: UnsafeRawPointer(p.baseAddress! + i).loadUnaligned(as: UInt64.self))
                    let high: UInt64 = 0x8080_8080_8080_8080
                    let ones: UInt64 = 0x0101_0101_0101_0101
                    let q = w ^ (ones &* 0x22)
                    let bs = w ^ (ones &* 0x5C)
                    let special = (w | ((w &- ones &* 0x20) & ~w) | ((q &- ones) & ~q) | ((bs &- ones) & ~bs)) & high
                    if special != 0 {
                        i += special.trailingZeroBitCount >> 3
                        break
                    }
                    i += 8
                }
                // Near the end of the input: printable ASCII that needs no attention, a byte at a time.
                while i < n {
                    let b = p[i]
                    if b >= 0x20 && b < 0x80 && b != JSONParser.quote && b != JSONParser.backslash { i += 1 } else { break }
                }
                guard i < n else { throw JSONSyntaxError(offset: open, message: "unterminated string", truncated: true) }
                let b = p[i]
                if b == JSONParser.quote { break }
                if b == JSONParser.backslash {
                    escaped = true
                    i = try escape(i)
                } else if b < 0x20 {
                    throw fail(i, "control character 0x\(String(b, radix: 16, uppercase: true)) in a string must be escaped")
                } else {
                    i = try utf8Sequence(i)
                }
            }
            let next = UInt32(count - base + 1)
            append(JSONTapeEntry(kind: .string, hasEscapes: escaped, start: UInt32(open + 1), end: UInt32(i), next: next))
            return i + 1
        }

        func escape(_ i: Int) throws(JSONSyntaxError) -> Int {
            guard i + 1 < p.count else { throw JSONSyntaxError(offset: i, message: "unterminated string", truncated: true) }
            switch p[i + 1] {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                return i + 2
            case UInt8(ascii: "u"):
                let unit = try hexUnit(i + 2)
                if unit >= 0xDC00 && unit < 0xE000 { throw fail(i, "unpaired low surrogate \\u\(String(unit, radix: 16, uppercase: true))") }
                if unit >= 0xD800 && unit < 0xDC00 {
                    let j = i + 6
                    guard j + 1 < p.count, p[j] == JSONParser.backslash, p[j + 1] == UInt8(ascii: "u") else {
                        throw fail(i, "unpaired high surrogate \\u\(String(unit, radix: 16, uppercase: true))")
                    }
                    let low = try hexUnit(j + 2)
                    guard low >= 0xDC00 && low < 0xE000 else { throw fail(j, "high surrogate not followed by a low surrogate") }
                    return j + 6
                }
                return i + 6
            default:
                throw fail(i, "invalid escape \\\(describe(i + 1))")
            }
        }

        func hexUnit(_ at: Int) throws(JSONSyntaxError) -> UInt32 {
            guard at + 4 <= p.count else { throw fail(at, "\\u needs four hex digits") }
            var v: UInt32 = 0
            for k in 0..<4 {
                let h = JSONParser.hexValue(p[at + k])
                if h == 0xFF { throw fail(at + k, "\\u needs four hex digits") }
                v = v << 4 | UInt32(h)
            }
            return v
        }

        /// Validates one multi-byte UTF-8 sequence (no overlongs, no surrogates, at most U+10FFFF).
        func utf8Sequence(_ i: Int) throws(JSONSyntaxError) -> Int {
            let b0 = p[i]
            let n = p.count
            @inline(__always) func cont(_ k: Int, _ lo: UInt8 = 0x80, _ hi: UInt8 = 0xBF) -> Bool {
                k < n && p[k] >= lo && p[k] <= hi
            }
            switch b0 {
            case 0xC2...0xDF:
                if cont(i + 1) { return i + 2 }
            case 0xE0:
                if cont(i + 1, 0xA0, 0xBF) && cont(i + 2) { return i + 3 }
            case 0xE1...0xEC, 0xEE...0xEF:
                if cont(i + 1) && cont(i + 2) { return i + 3 }
            case 0xED:
                if cont(i + 1, 0x80, 0x9F) && cont(i + 2) { return i + 3 }
            case 0xF0:
                if cont(i + 1, 0x90, 0xBF) && cont(i + 2) && cont(i + 3) { return i + 4 }
            case 0xF1...0xF3:
                if cont(i + 1) && cont(i + 2) && cont(i + 3) { return i + 4 }
            case 0xF4:
                if cont(i + 1, 0x80, 0x8F) && cont(i + 2) && cont(i + 3) { return i + 4 }
            default:
                break
            }
            throw fail(i, "invalid UTF-8 in a string")
        }
    }
}
