/// Appends JSON string literals (RFC 8259) to a byte buffer.
///
/// Output is always valid UTF-8: well-formed multi-byte sequences are copied
/// unchanged, and each ill-formed sequence is replaced by U+FFFD using the
/// "maximal subpart" rule, which matches `String(decoding:as: UTF8.self)`.
public enum JSONStringEncoder {
    /// Appends `"…"` with `bytes` escaped as needed.
    @inlinable
    public static func append(_ bytes: some Collection<UInt8>, to out: inout [UInt8]) {
        out.append(0x22)
        if bytes.withContiguousStorageIfAvailable({ appendContents($0, to: &out) }) == nil {
            Array(bytes).withUnsafeBufferPointer { appendContents($0, to: &out) }
        }
        out.append(0x22)
    }

    /// Appends `"…"` for `string`.
    @inlinable
    public static func append(_ string: String, to out: inout [UInt8]) {
        var string = string
        out.append(0x22)
        // A native String is already valid UTF-8; withUTF8 only copies bridged ones.
        string.withUTF8 { appendContents($0, to: &out) }
        out.append(0x22)
    }

    /// Appends the escaped contents without the surrounding quotes.
    @usableFromInline
    static func appendContents(_ input: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        guard let base = input.baseAddress else { return }
        let count = input.count
        var runStart = 0
        var i = 0
        while i < count {
            let byte = base[i]
            if byte >= 0x20 && byte < 0x80 && byte != 0x22 && byte != 0x5C {
                i += 1
                continue
            }
            if byte >= 0x80 {
                let length = validSequenceLength(base + i, available: count - i)
                if length > 0 {
                    // Valid UTF-8 stays inside the current run and is copied in bulk.
                    i += length
                    continue
                }
            }
            if runStart < i {
                out.append(contentsOf: UnsafeBufferPointer(start: base + runStart, count: i - runStart))
            }
            if byte >= 0x80 {
                out.append(contentsOf: replacementCharacter)
                i += invalidSubpartLength(base + i, available: count - i)
            } else {
                appendEscape(byte, to: &out)
                i += 1
            }
            runStart = i
        }
        if runStart < count {
            out.append(contentsOf: UnsafeBufferPointer(start: base + runStart, count: count - runStart))
        }
    }

    private static let replacementCharacter: [UInt8] = [0xEF, 0xBF, 0xBD]

    private static func appendEscape(_ byte: UInt8, to out: inout [UInt8]) {
        out.append(0x5C)
        switch byte {
        case 0x22: out.append(0x22)
        case 0x5C: out.append(0x5C)
        case 0x0A: out.append(UInt8(ascii: "n"))
        case 0x0D: out.append(UInt8(ascii: "r"))
        case 0x09: out.append(UInt8(ascii: "t"))
        case 0x08: out.append(UInt8(ascii: "b"))
        case 0x0C: out.append(UInt8(ascii: "f"))
        default:
            let hex: (UInt8) -> UInt8 = { $0 < 10 ? 0x30 + $0 : 0x57 + $0 }
            out.append(UInt8(ascii: "u"))
            out.append(0x30)
            out.append(0x30)
            out.append(hex(byte >> 4))
            out.append(hex(byte & 0x0F))
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
