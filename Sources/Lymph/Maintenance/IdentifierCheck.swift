/// The names that key tickets and sensors in memory and in the store (equipment and sensor ids,
/// actions) may not hold control characters: SQLite hands a text value back cut at a NUL, so a
/// job's id no longer matched its open ticket and every later run stopped on the store's unique
/// index; and `lymph tickets` and `lymph sensors` print them, where a terminal would take the
/// others as commands. Nor Unicode's bidirectional controls, which make a table show text in
/// another order than it has (U+202E turns `pump_1` around), nor only spaces: a blank equipment
/// named a ticket no one could tell apart.
enum IdentifierCheck {
    /// Why `value` cannot name a ticket's job or a sensor, or nil when it can.
    ///
    /// The control characters (general category Cc, which Unicode's stability policy fixes) are
    /// U+0000–U+001F and U+007F–U+009F, so the check reads UTF-8 bytes: U+0080–U+009F are
    /// 0xC2 then 0x80–0x9F, and 0xC2 only ever starts a scalar. Both maintenance stages check
    /// every event's names on the ordered path, where a lookup of each scalar's category in
    /// Unicode's tables would be a large share of their per-event work.
    static func problem(_ value: String) -> String? {
        var value = value
        // The first control or bidirectional control found, and whether a byte was seen that is
        // neither an ASCII space nor part of a non-ASCII scalar (so the value is not blank).
        let (found, printable): (UInt32?, Bool) = value.withUTF8 { bytes in
            var printable = false
            var i = 0
            while i < bytes.count {
                let b = bytes[i]
                if b < 0x20 || b == 0x7F { return (UInt32(b), printable) }
                if b == 0xC2, i + 1 < bytes.count, bytes[i + 1] >= 0x80, bytes[i + 1] <= 0x9F {
                    return (UInt32(bytes[i + 1]), printable)
                }
                if b >= 0xD8, let scalar = bidiControl(bytes, at: i) { return (scalar, printable) }
                if b > 0x20 && b < 0x80 { printable = true }
                i += 1
            }
            return (nil, printable)
        }
        if let found {
            let hex = String(found, radix: 16, uppercase: true)
            let code = "U+\(String(repeating: "0", count: max(0, 4 - hex.count)))\(hex)"
            return found < 0x100 ? "must not contain control characters (found \(code))" : "must not contain bidirectional controls (found \(code))"
        }
        // Only ASCII spaces, or non-ASCII scalars that may all be spaces (U+3000): looked at whole.
        if !printable && value.allSatisfy(\.isWhitespace) { return "must not be blank" }
        return nil
    }

    /// The bidirectional control starting at `i`, if one does: U+061C (D8 9C), U+200E and U+200F
    /// (E2 80 8E/8F), U+202A–U+202E (E2 80 AA–AE) and U+2066–U+2069 (E2 81 A6–A9).
    static func bidiControl(_ bytes: UnsafeBufferPointer<UInt8>, at i: Int) -> UInt32? {
        let b = bytes[i]
        if b == 0xD8 { return i + 1 < bytes.count && bytes[i + 1] == 0x9C ? 0x061C : nil }
        guard b == 0xE2, i + 2 < bytes.count else { return nil }
        let (b1, b2) = (bytes[i + 1], bytes[i + 2])
        if b1 == 0x80 && (b2 == 0x8E || b2 == 0x8F || (b2 >= 0xAA && b2 <= 0xAE)) { return 0x2000 + UInt32(b2 - 0x80) }
        if b1 == 0x81 && b2 >= 0xA6 && b2 <= 0xA9 { return 0x2040 + UInt32(b2 - 0x80) }
        return nil
    }
}
