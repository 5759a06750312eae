import Lymph

/// The `Date` header's value (RFC 9110's IMF-fixdate), formatted once a second at most.
struct HTTPDate {
    private var second = -1
    private var text = ""

    mutating func now() -> String {
        let t = Int(Timestamp.now().rounded(.down))
        if t != second {
            text = Self.format(t)
            second = t
        }
        return text
    }

    /// `Sun, 06 Nov 1994 08:49:37 GMT` for whole seconds since the Unix epoch.
    static func format(_ t: Int) -> String {
        let c = Timestamp.Civil(millis: Int64(t) * 1000)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(c.weekdayName), \(two(c.day)) \(c.monthName) \(c.year) \(two(c.hour)):\(two(c.minute)):\(two(c.second)) GMT"
    }
}
