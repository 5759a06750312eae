/// Hex without Foundation's `String(format:)` (slow on a per-event path), and back.
enum Hex {
    static let digits = Array("0123456789abcdef".utf8)

    static func string(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes that hex text stands for (either case), or nil when it is not hex.
    static func decode(_ utf8: ArraySlice<UInt8>) -> [UInt8]? {
        guard utf8.count % 2 == 0 else { return nil }
        var valid = true
        let out = [UInt8](unsafeUninitializedCapacity: utf8.count / 2) { out, count in
            utf8.withUnsafeBufferPointer { text in
                Self.values.withUnsafeBufferPointer { digits in
                    // Every event's signature goes through here: a table and no bounds checks,
                    // with the validity of all digits folded into one test at the end.
                    var bad: UInt8 = 0
                    for o in 0..<text.count / 2 {
                        let hi = digits[Int(text[2 &* o])], lo = digits[Int(text[2 &* o &+ 1])]
                        bad |= hi | lo
                        out[o] = hi << 4 | lo
                    }
                    valid = bad & 0xF0 == 0
                }
            }
            count = valid ? utf8.count / 2 : 0
        }
        return valid ? out : nil
    }

    /// Each byte's value as a hex digit, 0xFF when it is not one.
    static let values: [UInt8] = (0..<256).map { JSONParser.hexValue(UInt8($0)) }
}
