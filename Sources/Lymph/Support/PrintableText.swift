/// Text from outside Lymph (a receiver's answer) made safe to quote in a log line, a dead letter
/// or a terminal: every control character (line breaks, escapes, NUL) is shown as `?`, so a
/// quoted answer cannot forge a log line or send a terminal escape.
public enum PrintableText {
    /// `text` with control characters as `?`, cut to `limit` characters (Unicode scalars).
    public static func of(_ text: some StringProtocol, limit: Int = .max) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.prefix(limit).map { $0.properties.generalCategory == .control ? "?" : $0 }))
    }
}
