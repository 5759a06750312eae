import ArgumentParser
import Lymph

/// `--utc` (the default) or `--local`: the zone a table shows its times in, each time with its
/// zone (`2026-06-01 16:45Z`, `2026-06-01 18:45+02:00`). JSON output is always RFC 3339 UTC.
struct TimeZoneOptions: ParsableArguments {
    enum Zone: String, EnumerableFlag {
        case utc, local

        static func help(for value: Zone) -> ArgumentHelp? {
            switch value {
            case .utc: "Show times in tables in UTC, marked Z (the default)."
            case .local: "Show times in tables in the local time zone (TZ), with their offset from UTC."
            }
        }
    }

    @Flag(exclusivity: .exclusive) var zone: Zone = .utc
}

extension TimeZoneOptions.Zone {
    /// `t` for a table, in this zone, with the zone.
    func show(_ t: Double, seconds: Bool = false) -> String {
        Timestamp.display(t, offset: self == .utc ? 0 : Timestamp.localOffset(at: t), seconds: seconds)
    }

    /// An RFC 3339 time read from a file, for a table; as it is when it cannot be read.
    func show(_ text: String, seconds: Bool = true) -> String {
        Timestamp.parse(text).map { show($0, seconds: seconds) } ?? text
    }
}
