/// Appends JSON string literals (RFC 8259) to a byte buffer.
///
/// Output is always valid UTF-8: well-formed multi-byte sequences are copied
/// unchanged, and each ill-formed sequence is replaced by U+FFFD using the
/// "maximal subpart" rule, which matches `String(decoding:as: UTF8.self)`.
public enum JSONStringEncoder {
    /// Appends `"…"` with `bytes` escaped as needed. Returns true when some bytes were not
    /// UTF-8 (and so were written as U+FFFD).
    @inlinable @discardableResult
    public static func append(_ bytes: some Collection<UInt8>, to out: inout [UInt8]) -> Bool {
        out.append(0x22)
        let replaced =
            bytes.withContiguousStorageIfAvailable({ appendContents($0, to: &out) })
            ?? Array(bytes).withUnsafeBufferPointer { appendContents($0, to: &out) }
        out.append(0x22)
        return replaced
    }

    /// Appends `"…"` for `string`.
    @inlinable
    public static func append(_ string: String, to out: inout [UInt8]) {
        var string = string
        out.append(0x22)
        // A native String is already valid UTF-8; withUTF8 only copies bridged ones.
        _ = string.withUTF8 { appendContents($0, to: &out) }
        out.append(0x22)
    }

    /// Appends the escaped contents without the surrounding quotes; true when some bytes were
    /// not UTF-8.
    ///
    /// Runs of bytes that need no escaping are found 8 at a time and copied with
    /// memcpy; short runs and escapes are staged in a stack buffer so the array is
    /// touched about once per kilobyte instead of once per escape.
    @usableFromInline @discardableResult
    static func appendContents(_ input: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) -> Bool {
        guard let base = input.baseAddress, !input.isEmpty else { return false }
        let count = input.count
        var replaced = false
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: stageCapacity) { stage in
            var staged = Stage(buffer: stage.baseAddress!)
            var runStart = 0
            var i = 0
            while i < count {
                if i + 8 <= count {
                    let mask = specialMask(UInt64(littleEndian: UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self)))
                    if mask == 0 {
                        i += 8
                        continue
                    }
                    i += mask.trailingZeroBitCount >> 3  // the first special byte
                } else if case let byte = base[i], byte >= 0x20 && byte < 0x80 && byte != 0x22 && byte != 0x5C {
                    i += 1
                    continue
                }
                let byte = base[i]
                if byte >= 0x80 {
                    let length = validSequenceLength(base + i, available: count - i)
                    if length > 0 {
                        i += length
                        continue
                    }
                }
                staged.copy(base + runStart, count: i - runStart, into: &out)
                if byte >= 0x80 {
                    staged.write((0xEF, 0xBF, 0xBD), into: &out)  // U+FFFD
                    replaced = true
                    i += invalidSubpartLength(base + i, available: count - i)
                } else if byte == 0x22 || byte == 0x5C {
                    staged.write(0x5C, byte, into: &out)  // the common case in JSON-in-JSON
                    i += 1
                } else {
                    staged.escapeControl(byte, into: &out)
                    i += 1
                }
                runStart = i
            }
            staged.copy(base + runStart, count: count - runStart, into: &out)
            staged.flush(into: &out)
        }
        return replaced
    }

    private static let stageCapacity = 1_024

    /// High bit set in each byte of a little-endian word that is a control character,
    /// `"`, `\\` or non-ASCII. Borrows can flag bytes above a real hit, never below it,
    /// so the lowest flag is exact.
    @inline(__always)
    private static func specialMask(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let quote = word ^ (ones &* 0x22)
        let backslash = word ^ (ones &* 0x5C)
        let low = (word &- ones &* 0x20) & ~word
        return (word | low | ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash)) & (ones &* 0x80)
    }

    /// Pending output on the stack, flushed to the array when full.
    private struct Stage {
        let buffer: UnsafeMutablePointer<UInt8>
        var count = 0

        init(buffer: UnsafeMutablePointer<UInt8>) { self.buffer = buffer }

        @inline(__always)
        mutating func flush(into out: inout [UInt8]) {
            if count > 0 {
                out.append(contentsOf: UnsafeBufferPointer(start: buffer, count: count))
                count = 0
            }
        }

        @inline(__always)
        mutating func copy(_ source: UnsafePointer<UInt8>, count length: Int, into out: inout [UInt8]) {
            guard length > 0 else { return }
            if count + length > stageCapacity {
                flush(into: &out)
                if length > stageCapacity / 2 {
                    out.append(contentsOf: UnsafeBufferPointer(start: source, count: length))
                    return
                }
            }
            if length <= 16 {
                // Short runs between escapes: a loop beats a memcpy call.
                for k in 0..<length { buffer[count + k] = source[k] }
            } else {
                (buffer + count).update(from: source, count: length)
            }
            count += length
        }

        @inline(__always)
        mutating func write(_ first: UInt8, _ second: UInt8, into out: inout [UInt8]) {
            if count + 2 > stageCapacity { flush(into: &out) }
            buffer[count] = first
            buffer[count + 1] = second
            count += 2
        }

        @inline(__always)
        mutating func write(_ bytes: (UInt8, UInt8, UInt8), into out: inout [UInt8]) {
            if count + 3 > stageCapacity { flush(into: &out) }
            buffer[count] = bytes.0
            buffer[count + 1] = bytes.1
            buffer[count + 2] = bytes.2
            count += 3
        }

        /// A control character (< 0x20): its short escape, else `\u00XX`.
        mutating func escapeControl(_ byte: UInt8, into out: inout [UInt8]) {
            if count + 6 > stageCapacity { flush(into: &out) }
            buffer[count] = 0x5C
            let short: UInt8? =
                switch byte {
                case 0x0A: UInt8(ascii: "n")
                case 0x0D: UInt8(ascii: "r")
                case 0x09: UInt8(ascii: "t")
                case 0x08: UInt8(ascii: "b")
                case 0x0C: UInt8(ascii: "f")
                default: nil
                }
            if let short {
                buffer[count + 1] = short
                count += 2
            } else {
                let hex: (UInt8) -> UInt8 = { $0 < 10 ? 0x30 + $0 : 0x57 + $0 }
                buffer[count + 1] = UInt8(ascii: "u")
                buffer[count + 2] = 0x30
                buffer[count + 3] = 0x30
                buffer[count + 4] = hex(byte >> 4)
                buffer[count + 5] = hex(byte & 0x0F)
                count += 6
            }
        }
    }

    /// Second-byte range allowed after a lead byte (RFC 3629 table), which
    /// rules out overlongs, surrogates and code points above U+10FFFF.
    @inline(__always)
    private static func leadInfo(_ lead: UInt8) -> (length: Int, low: UInt8, high: UInt8) {
        switch lead {
        case 0xC2...0xDF: return (2, 0x80, 0xBF)
        case 0xE0: return (3, 0xA0, 0xBF)
        case 0xE1...0xEC, 0xEE...0xEF: return (3, 0x80, 0xBF)
        case 0xED: return (3, 0x80, 0x9F)
        case 0xF0: return (4, 0x90, 0xBF)
        case 0xF1...0xF3: return (4, 0x80, 0xBF)
        case 0xF4: return (4, 0x80, 0x8F)
        default: return (0, 0, 0)
        }
    }

    /// Length of the well-formed sequence at `p`, or 0 if it is ill-formed.
    @inline(__always)
    private static func validSequenceLength(_ p: UnsafePointer<UInt8>, available: Int) -> Int {
        let info = leadInfo(p[0])
        guard info.length > 0, info.length <= available else { return 0 }
        guard p[1] >= info.low && p[1] <= info.high else { return 0 }
        var k = 2
        while k < info.length {
            guard p[k] & 0xC0 == 0x80 else { return 0 }
            k += 1
        }
        return info.length
    }

    /// Bytes covered by one U+FFFD: the maximal prefix of a valid sequence, at least 1.
    private static func invalidSubpartLength(_ p: UnsafePointer<UInt8>, available: Int) -> Int {
        let info = leadInfo(p[0])
        guard info.length > 0, available > 1, p[1] >= info.low && p[1] <= info.high else { return 1 }
        var k = 2
        while k < info.length && k < available && p[k] & 0xC0 == 0x80 {
            k += 1
        }
        return k
    }
}
