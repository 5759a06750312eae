import Foundation

/// RFC 3339 timestamps, read and written without Foundation's formatters (they are slow and
/// lenient), and times for people. Seconds since the Unix epoch, as a Double. Lymph's only
/// calendar arithmetic is here (`Civil`, `daysFromCivil`, `civilFromDays`).
public enum Timestamp {
    /// Parses `2026-06-01T12:00:00Z`, with optional fraction and a `Z` or `±HH:MM` offset.
    /// Returns nil for anything else, including impossible dates (Feb 30, hour 24).
    public static func parse(_ s: ArraySlice<UInt8>) -> Double? {
        s.withUnsafeBufferPointer { parse(buffer: $0) }
    }

    /// `parse(_:)` on a string's UTF-8 bytes.
    public static func parse(_ s: String) -> Double? {
        parse(Array(s.utf8)[...])
    }

    static func parse(buffer b: UnsafeBufferPointer<UInt8>) -> Double? {
        guard let f = Fields(b) else { return nil }
        var fraction = 0.0
        var scale = 0.1
        for i in f.fraction {
            fraction += Double(b[i] - 0x30) * scale
            scale /= 10
        }
        let days = daysFromCivil(year: f.year, month: f.month, day: f.day)
        let seconds = days * 86_400 + f.hour * 3600 + f.minute * 60 + min(f.second, 59) - f.offset
        return Double(seconds) + fraction
    }

    /// Whether `b` is a timestamp `parse` reads, without working out the time: every event's
    /// `created_at` is checked as it is parsed.
    static func isValid(buffer b: UnsafeBufferPointer<UInt8>) -> Bool {
        Fields(b) != nil
    }

    /// A timestamp's parts, checked: the date exists, the time is within its ranges.
    struct Fields {
        var year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0
        /// Where the fraction's digits are (empty without one).
        var fraction = 0..<0
        /// The zone's offset from UTC, in seconds.
        var offset = 0

        /// The parts of `b`, or nil when it is not a timestamp.
        init?(_ b: UnsafeBufferPointer<UInt8>) {
            guard b.count >= 20, readDate(b) else { return nil }
            guard (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
                hour < 24, minute < 60, second <= 60
            else { return nil }
            var i = 19
            if b[i] == UInt8(ascii: ".") {
                i += 1
                let start = i
                while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }
                guard i > start else { return nil }
                fraction = start..<i
            }
            guard i < b.count else { return nil }
            if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
                i += 1
            } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
                guard i + 6 == b.count, b[i + 3] == UInt8(ascii: ":"),
                    let oh = Self.digits(b, i + 1, 2), let om = Self.digits(b, i + 4, 2), oh < 24, om < 60
                else { return nil }
                offset = (oh * 60 + om) * 60 * (b[i] == UInt8(ascii: "-") ? -1 : 1)
                i += 6
            } else {
                return nil
            }
            guard i == b.count else { return nil }
        }

        /// Reads `YYYY-MM-DDTHH:MM:SS` from the first 19 bytes (of at least 20) as three 8-byte
        /// words: each digit becomes its value by one XOR, and one test per word finds any byte
        /// that is not a digit (`+ 0x76` sets a byte's top bit from 10 up; a byte that carries
        /// into the next is not ASCII, so a carry can only reject, never accept).
        private mutating func readDate(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
            let raw = UnsafeRawPointer(b.baseAddress!)
            let date = UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self)) ^ Self.zeros  // YYYY-MM-
            let time = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) ^ Self.zeros  // DDTHH:MM
            let secs = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 11, as: UInt64.self)) ^ Self.zeros  // HH:MM:SS
            // The separators, XORed with "0" like the rest; `T` or `t` (they differ in 0x20).
            guard date & 0xFF00_00FF_0000_0000 == 0x1D00_001D_0000_0000,
                (time | 0x0000_0000_0020_0000) & 0x0000_FF00_00FF_0000 == 0x0000_0A00_0064_0000,
                secs & 0x0000_FF00_0000_0000 == 0x0000_0A00_0000_0000,
                Self.allDigits(date, 0x00FF_FF00_FFFF_FFFF), Self.allDigits(time, 0xFFFF_00FF_FF00_FFFF),
                Self.allDigits(secs, 0xFFFF_0000_0000_0000)
            else { return false }
            func at(_ w: UInt64, _ k: Int) -> Int { Int(truncatingIfNeeded: (w >> (8 * UInt64(k))) & 0xFF) }
            year = at(date, 0) * 1000 + at(date, 1) * 100 + at(date, 2) * 10 + at(date, 3)
            month = at(date, 5) * 10 + at(date, 6)
            day = at(time, 0) * 10 + at(time, 1)
            hour = at(time, 3) * 10 + at(time, 4)
            minute = at(time, 6) * 10 + at(time, 7)
            second = at(secs, 6) * 10 + at(secs, 7)
            return true
        }

        static let zeros: UInt64 = 0x3030_3030_3030_3030

        /// Whether every byte of `w` under `mask` (XORed with "0") is 0 to 9.
        static func allDigits(_ w: UInt64, _ mask: UInt64) -> Bool {
            ((w &+ 0x7676_7676_7676_7676) | w) & 0x8080_8080_8080_8080 & mask == 0
        }

        /// The `n` decimal digits at `at`, or nil.
        static func digits(_ b: UnsafeBufferPointer<UInt8>, _ at: Int, _ n: Int) -> Int? {
            var v = 0
            for k in at..<(at + n) {
                let c = b[k]
                guard c >= 0x30 && c <= 0x39 else { return nil }
                v = v * 10 + Int(c - 0x30)
            }
            return v
        }
    }

    /// `2026-06-01T12:00:00.250Z` (UTC, milliseconds).
    public static func format(_ t: Double) -> String {
        let c = Civil(t)
        // Built as bytes: this runs for every ticket and emitted event.
        var out = [UInt8](repeating: 0, count: 24)
        put(min(max(c.year, 0), 9999), 4, at: 0, in: &out); out[4] = UInt8(ascii: "-")
        put(c.month, 2, at: 5, in: &out); out[7] = UInt8(ascii: "-")
        put(c.day, 2, at: 8, in: &out); out[10] = UInt8(ascii: "T")
        put(c.hour, 2, at: 11, in: &out); out[13] = UInt8(ascii: ":")
        put(c.minute, 2, at: 14, in: &out); out[16] = UInt8(ascii: ":")
        put(c.second, 2, at: 17, in: &out); out[19] = UInt8(ascii: ".")
        put(c.millisecond, 3, at: 20, in: &out); out[23] = UInt8(ascii: "Z")
        return String(decoding: out, as: UTF8.self)
    }

    /// `20260601T120000Z` (UTC, whole seconds, no separators): for file names.
    public static func compact(_ t: Double) -> String {
        let c = Civil(t)
        var out = [UInt8](repeating: 0, count: 16)
        put(min(max(c.year, 0), 9999), 4, at: 0, in: &out)
        put(c.month, 2, at: 4, in: &out)
        put(c.day, 2, at: 6, in: &out); out[8] = UInt8(ascii: "T")
        put(c.hour, 2, at: 9, in: &out)
        put(c.minute, 2, at: 11, in: &out)
        put(c.second, 2, at: 13, in: &out); out[15] = UInt8(ascii: "Z")
        return String(decoding: out, as: UTF8.self)
    }

    /// For people, in tables: `2026-06-01 16:45Z`, or at an offset east of UTC (seconds)
    /// `2026-06-01 18:45+02:00`; with `seconds`, `2026-06-01 16:45:07Z`. The zone is always
    /// shown. Not RFC 3339 (a space, no fraction): JSON output uses `format`.
    public static func display(_ t: Double, offset: Int = 0, seconds: Bool = false) -> String {
        let c = Civil(t + Double(offset))
        var out = [UInt8](repeating: 0, count: seconds ? 19 : 16)
        put(min(max(c.year, 0), 9999), 4, at: 0, in: &out); out[4] = UInt8(ascii: "-")
        put(c.month, 2, at: 5, in: &out); out[7] = UInt8(ascii: "-")
        put(c.day, 2, at: 8, in: &out); out[10] = UInt8(ascii: " ")
        put(c.hour, 2, at: 11, in: &out); out[13] = UInt8(ascii: ":")
        put(c.minute, 2, at: 14, in: &out)
        if seconds {
            out[16] = UInt8(ascii: ":")
            put(c.second, 2, at: 17, in: &out)
        }
        return String(decoding: out, as: UTF8.self) + zone(offset)
    }

    /// `Z` for UTC, else `+HH:MM` / `-HH:MM` (seconds east of UTC).
    public static func zone(_ offset: Int) -> String {
        guard offset != 0 else { return "Z" }
        let minutes = abs(offset) / 60
        var out: [UInt8] = [offset < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"), 0, 0, UInt8(ascii: ":"), 0, 0]
        put(minutes / 60 % 100, 2, at: 1, in: &out)
        put(minutes % 60, 2, at: 4, in: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The local time zone's offset from UTC at `t`, in seconds east (from `TZ`, else
    /// /etc/localtime; the C library reads the zone rules, the calendar is `Civil`'s).
    public static func localOffset(at t: Double) -> Int {
        tzset()
        var clock = time_t(t.rounded(.down))
        var parts = tm()
        guard localtime_r(&clock, &parts) != nil else { return 0 }
        return Int(parts.tm_gmtoff)
    }

    /// Writes `value` as `width` decimal digits at `at`.
    static func put(_ value: Int, _ width: Int, at: Int, in out: inout [UInt8]) {
        var v = value
        for k in stride(from: at + width - 1, through: at, by: -1) {
            out[k] = UInt8(ascii: "0") + UInt8(v % 10)
            v /= 10
        }
    }

    /// A UTC instant's calendar fields (proleptic Gregorian): the one calendar in Lymph, used
    /// for every date it writes (RFC 3339, table times, HTTP dates, sample events).
    public struct Civil: Sendable, Equatable {
        /// The year, such as 2026.
        public var year: Int
        /// 1...12
        public var month: Int
        /// The day of the month, from 1.
        public var day: Int
        /// 0...23
        public var hour: Int
        /// 0...59
        public var minute: Int
        /// 0...59
        public var second: Int
        /// 0...999
        public var millisecond: Int
        /// 0 Sunday ... 6 Saturday.
        public var weekday: Int

        /// From milliseconds since the Unix epoch (negative ones too).
        public init(millis: Int64) {
            var days = Int(millis / 86_400_000)
            var rest = Int(millis % 86_400_000)
            if rest < 0 {
                rest += 86_400_000
                days -= 1
            }
            (year, month, day) = Timestamp.civilFromDays(days)
            weekday = ((days + 4) % 7 + 7) % 7  // 1970-01-01 was a Thursday
            hour = rest / 3_600_000
            minute = rest / 60_000 % 60
            second = rest / 1_000 % 60
            millisecond = rest % 1_000
        }

        /// From seconds since the Unix epoch, rounded down to the millisecond.
        public init(_ t: Double) {
            let millis = (t * 1000).rounded(.down)
            let bounds = Self.fourDigitYears
            self.init(millis: millis.isNaN ? 0 : Int64(min(max(millis, Double(bounds.lowerBound)), Double(bounds.upperBound))))
        }

        /// The instants a four-digit year can show, 0000-01-01 to the last millisecond of
        /// 9999-12-31: a time outside is the nearest, so a due date past 9999 (an alert of
        /// 9999-12-31 due a day later) is not written as an earlier day of that year.
        static let fourDigitYears: ClosedRange<Int64> = -62_167_219_200_000...253_402_300_799_999

        /// `Sun` ... `Sat`.
        public var weekdayName: StaticString {
            switch weekday {
            case 0: "Sun"
            case 1: "Mon"
            case 2: "Tue"
            case 3: "Wed"
            case 4: "Thu"
            case 5: "Fri"
            default: "Sat"
            }
        }

        /// `Jan` ... `Dec`.
        public var monthName: StaticString {
            switch month {
            case 1: "Jan"
            case 2: "Feb"
            case 3: "Mar"
            case 4: "Apr"
            case 5: "May"
            case 6: "Jun"
            case 7: "Jul"
            case 8: "Aug"
            case 9: "Sep"
            case 10: "Oct"
            case 11: "Nov"
            default: "Dec"
            }
        }
    }

    /// The wall clock, in seconds since 1970.
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
