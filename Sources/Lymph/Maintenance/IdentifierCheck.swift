/// The names that key tickets and sensors in memory and in the store (equipment and sensor ids,
/// actions) may not hold control characters: SQLite hands a text value back cut at a NUL, so a
/// job's id no longer matched its open ticket and every later run stopped on the store's unique
/// index; and `lymph tickets` and `lymph sensors` print them, where a terminal would take the
/// others as commands.
enum IdentifierCheck {
    /// Why `value` cannot name a ticket's job or a sensor, or nil when it can.
    static func problem(_ value: String) -> String? {
        for scalar in value.unicodeScalars where scalar.properties.generalCategory == .control {
            let hex = String(scalar.value, radix: 16, uppercase: true)
            return "must not contain control characters (found U+\(String(repeating: "0", count: 4 - hex.count))\(hex))"
        }
        return nil
    }
}
