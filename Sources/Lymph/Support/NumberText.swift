/// JSON numbers as text, compared by what they stand for rather than how they are written.
enum NumberText {
    /// An integer's sign and digits without leading zeros ("-0" as "0"), a fraction of zeros
    /// ignored (`5.0` is 5); nil for a number with another fraction or an exponent. Exact at
    /// any size, where a double is not past 2^53.
    static func integerDigits(_ text: String) -> String? {
        let negative = text.hasPrefix("-")
        var digits = negative ? text.dropFirst() : text[...]
        if let dot = digits.firstIndex(of: "."), digits[digits.index(after: dot)...].allSatisfy({ $0 == "0" }) { digits = digits[..<dot] }
        guard !digits.isEmpty, digits.allSatisfy({ $0 >= "0" && $0 <= "9" }) else { return nil }
        let trimmed = digits.drop { $0 == "0" }
        if trimmed.isEmpty { return "0" }
        return (negative ? "-" : "") + trimmed
    }

    /// One way to write the number `text` is: its integer digits, else, for a finite number, the
    /// double it is as Swift writes it (an integral one below 2^53 by its digits); else `text`.
    static func canonical(_ text: String) -> String {
        if let digits = integerDigits(text) { return digits }
        guard let d = Double(text), d.isFinite else { return text }
        return d == d.rounded() && abs(d) < 9_007_199_254_740_992 ? String(Int64(d)) : String(d)
    }
}
