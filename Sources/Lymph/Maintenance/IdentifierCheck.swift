/// The names that key tickets and sensors in memory and in the store (equipment and sensor ids,
/// actions) may not hold control characters: SQLite hands a text value back cut at a NUL, so a
/// job's id no longer matched its open ticket and every later run stopped on the store's unique
/// index; and `lymph tickets` and `lymph sensors` print them, where a terminal would take the
/// others as commands.
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
        let control: UInt32? = value.withUTF8 { bytes -> UInt32? in
            var i = 0
            while i < bytes.count {
                let b = bytes[i]
                if b < 0x20 || b == 0x7F { return UInt32(b) }
                if b == 0xC2, i + 1 < bytes.count, bytes[i + 1] >= 0x80, bytes[i + 1] <= 0x9F {
                    return UInt32(bytes[i + 1])
                }
                i += 1
            }
            return nil
        }
        guard let control else { return nil }
        let hex = String(control, radix: 16, uppercase: true)
        return "must not contain control characters (found U+\(String(repeating: "0", count: 4 - hex.count))\(hex))"
    }
}
