import Foundation

/// RFC 3339 timestamps, read and written without Foundation's formatters (they are slow and
/// lenient). Seconds since the Unix epoch, as a Double.
public enum Timestamp {
    /// Parses `2026-06-01T12:00:00Z`, with optional fraction and a `Z` or `±HH:MM` offset.
    /// Returns nil for anything else, including impossible dates (Feb 30, hour 24).
    public static func parse(_ s: ArraySlice<UInt8>) -> Double? {
        s.withUnsafeBufferPointer { parse(buffer: $0) }
    }

    public static func parse(_ s: String) -> Double? {
        parse(Array(s.utf8)[...])
    }

    static func parse(buffer b: UnsafeBufferPointer<UInt8>) -> Double? {
        guard b.count >= 20 else { return nil }
        func digits(_ at: Int, _ n: Int) -> Int? {
            var v = 0
            for k in at..<(at + n) {
                let c = b[k]
                guard c >= 0x30 && c <= 0x39 else { return nil }
                v = v * 10 + Int(c - 0x30)
            }
            return v
        }
        guard let year = digits(0, 4), b[4] == UInt8(ascii: "-"),
              let month = digits(5, 2), b[7] == UInt8(ascii: "-"),
              let day = digits(8, 2),
              b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t"),
              let hour = digits(11, 2), b[13] == UInt8(ascii: ":"),
              let minute = digits(14, 2), b[16] == UInt8(ascii: ":"),
              let second = digits(17, 2) else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
              hour < 24, minute < 60, second <= 60 else { return nil }
        var i = 19
        var fraction = 0.0
        if b[i] == UInt8(ascii: ".") {
            i += 1
            var scale = 0.1
            let start = i
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                fraction += Double(b[i] - 0x30) * scale
                scale /= 10
                i += 1
            }
            guard i > start else { return nil }
        }
        guard i < b.count else { return nil }
        var offset = 0
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            guard i + 6 == b.count, let oh = digits(i + 1, 2), b[i + 3] == UInt8(ascii: ":"),
                  let om = digits(i + 4, 2), oh < 24, om < 60 else { return nil }
            offset = (oh * 60 + om) * 60 * (b[i] == UInt8(ascii: "-") ? -1 : 1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + min(second, 59) - offset
        return Double(seconds) + fraction
    }

    /// `2026-06-01T12:00:00.250Z` (UTC, milliseconds).
    public static func format(_ t: Double) -> String {
        let millis = Int((t * 1000).rounded(.down))
        let seconds = millis >= 0 ? millis / 1000 : (millis - 999) / 1000
        let ms = millis - seconds * 1000
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secOfDay = seconds - days * 86_400
        let (y, m, d) = civilFromDays(days)
        // Built as bytes: this runs for every ticket and emitted event.
        var out = [UInt8](repeating: 0, count: 24)
        func put(_ v: Int, _ at: Int, _ width: Int) {
            var v = v
            for k in stride(from: at + width - 1, through: at, by: -1) {
                out[k] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
            }
        }
        put(min(max(y, 0), 9999), 0, 4); out[4] = UInt8(ascii: "-")
        put(m, 5, 2); out[7] = UInt8(ascii: "-")
        put(d, 8, 2); out[10] = UInt8(ascii: "T")
        put(secOfDay / 3600, 11, 2); out[13] = UInt8(ascii: ":")
        put(secOfDay / 60 % 60, 14, 2); out[16] = UInt8(ascii: ":")
        put(secOfDay % 60, 17, 2); out[19] = UInt8(ascii: ".")
        put(ms, 20, 3); out[23] = UInt8(ascii: "Z")
        return String(decoding: out, as: UTF8.self)
    }

    public static func now() -> Double { Date().timeIntervalSince1970 }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    // Howard Hinnant's days_from_civil / civil_from_days.
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civilFromDays(_ z: Int) -> (Int, Int, Int) {
        let z = z + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }
}
