/// Text from outside Lymph (a receiver's answer, an event's id in a table) made safe to quote in
/// a log line, a dead letter or a terminal: every control character (line breaks, escapes, NUL)
/// and every bidirectional control (U+202E shows the text after it reversed) is shown as `?`, so
/// quoted text cannot forge a log line, send a terminal escape, or read as something it is not.
public enum PrintableText {
    /// `text` with control characters and bidirectional controls as `?`, cut to `limit`
    /// characters (Unicode scalars).
    public static func of(_ text: some StringProtocol, limit: Int = .max) -> String {
        String(
            String.UnicodeScalarView(
                text.unicodeScalars.prefix(limit).map { $0.properties.generalCategory == .control || $0.properties.isBidiControl ? "?" : $0 }))
    }
}
