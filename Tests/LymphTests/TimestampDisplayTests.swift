import Foundation
import Testing
@testable import Lymph

@Suite("timestamps for people, file names and HTTP")
struct TimestampDisplayTests {
    static let t = Timestamp.parse("2026-06-01T16:45:07.250Z")!

    @Test(
        "tables: minutes or seconds, always with the zone",
        arguments: [
            (0, false, "2026-06-01 16:45Z"),
            (0, true, "2026-06-01 16:45:07Z"),
            (7200, false, "2026-06-01 18:45+02:00"),
            (19_800, true, "2026-06-01 22:15:07+05:30"),
            (-36_000, false, "2026-06-01 06:45-10:00"),
            (-17 * 3600, false, "2026-05-31 23:45-17:00"),
        ])
    func display(offset: Int, seconds: Bool, expected: String) {
        #expect(Timestamp.display(Self.t, offset: offset, seconds: seconds) == expected)
    }

    @Test("the zone: Z for UTC, else ±HH:MM", arguments: [(0, "Z"), (3600, "+01:00"), (-12_600, "-03:30"), (45_900, "+12:45")])
    func zone(offset: Int, expected: String) {
        #expect(Timestamp.zone(offset) == expected)
    }

    @Test("file names: the same as ISO 8601's basic format, in UTC")
    func compact() {
        #expect(Timestamp.compact(Self.t) == "20260601T164507Z")
        #expect(Timestamp.compact(0) == "19700101T000000Z")
    }

    @Test(
        "calendar fields, weekday and month names, before and after the epoch",
        arguments: [
            ("2026-06-01T16:45:07.250Z", "Mon", "Jun"),
            ("1969-12-31T23:59:59.500Z", "Wed", "Dec"),
            ("2000-02-29T00:00:00.000Z", "Tue", "Feb"),
            ("1970-01-01T00:00:00.000Z", "Thu", "Jan"),
        ])
    func civil(text: String, weekday: String, month: String) throws {
        let t = try #require(Timestamp.parse(text))
        let c = Timestamp.Civil(t)
        #expect("\(c.weekdayName)" == weekday && "\(c.monthName)" == month)
        #expect(Timestamp.format(t) == text)
    }

    @Test("a time past 9999 or before 0000 is written as the nearest a four-digit year can show, never an earlier day of 9999")
    func beyondFourDigitYears() throws {
        let last = try #require(Timestamp.parse("9999-12-31T12:00:00Z"))
        #expect(Timestamp.format(last + 86_400) == "9999-12-31T23:59:59.999Z")
        #expect(Timestamp.format(last + 400 * 86_400) == "9999-12-31T23:59:59.999Z")
        #expect(Timestamp.compact(last + 86_400) == "99991231T235959Z")
        #expect(Timestamp.format(-1e300) == "0000-01-01T00:00:00.000Z")
        #expect(Timestamp.format(.infinity) == "9999-12-31T23:59:59.999Z")
        #expect(Timestamp.format(.nan) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.format(try #require(Timestamp.parse("0000-01-01T00:00:00Z"))) == "0000-01-01T00:00:00.000Z")
    }

    @Test("the local offset is the C library's for TZ (here UTC or whatever the machine has), and a whole number of minutes")
    func localOffset() {
        let offset = Timestamp.localOffset(at: Self.t)
        #expect(offset % 60 == 0 && abs(offset) <= 14 * 3600)
    }

    @Test("Foundation's calendar agrees with Civil from 1601 to 2369 (an independent check)")
    func agreesWithFoundation() {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        for day in stride(from: -134_774, through: 146_097, by: 97) {  // from 1601: Foundation is Julian before 1582
            let t = Double(day) * 86_400 + 3_723.5
            let c = Timestamp.Civil(t)
            let f = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: Date(timeIntervalSince1970: t))
            #expect(
                [c.year, c.month, c.day, c.hour, c.minute, c.second, c.weekday + 1] == [f.year, f.month, f.day, f.hour, f.minute, f.second, f.weekday],
                "day \(day)")
        }
    }
}
