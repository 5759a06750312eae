import Foundation
import Testing

/// Tables show each time with its zone: UTC by default (`--utc`), the local zone with `--local`;
/// JSON stays RFC 3339 UTC.
@Suite("time zones in tables")
struct TimeZoneTableTests {
    static let secret = ["IMMUNE_WEBHOOK_SECRET": "whsec_lymph_example_only"]
    /// A POSIX TZ needing no zone files: 5 h 30 min east of UTC.
    static let india = ["TZ": "IST-5:30"]

    static func maintenance() throws -> (dir: String, pipeline: [String]) {
        let dir = LymphBinary.workDirectory()
        try LymphBinary.run(
            [
                "run", LymphBinary.repo("pipelines/maintenance.yaml"), LymphBinary.repo("examples/deliveries.ndjson"),
                "--summary", "none", "--output", "none",
            ], in: dir, environment: Self.secret)
        return (dir, ["--pipeline", LymphBinary.repo("pipelines/maintenance.yaml")])
    }

    /// The `due_by` of the first ticket in the JSON list, and its row in the table.
    static func firstDue(_ dir: String, _ pipeline: [String], _ zone: [String], environment: [String: String] = [:]) throws -> (json: String, row: String) {
        let json = try LymphBinary.run(["tickets", "--format", "json"] + pipeline, in: dir, environment: environment)
        let first = try #require(json.stdoutLines.first)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])
        let table = try LymphBinary.run(["tickets", "--format", "table"] + zone + pipeline, in: dir, environment: environment)
        #expect(table.status == 0, "\(table.stderr)")
        let id = try #require(object["ticket_id"] as? String)
        return (try #require(object["due_by"] as? String), try #require(table.stdoutLines.first { $0.hasPrefix(id) }))
    }

    @Test("lymph tickets: UTC marked Z by default and with --utc; --local shows the offset; JSON is UTC either way")
    func tickets() throws {
        let (dir, pipeline) = try Self.maintenance()
        let utc = try Self.firstDue(dir, pipeline, [], environment: Self.india)
        // 2026-06-01T16:45:00.000Z -> 2026-06-01 16:45Z
        let minutes = String(utc.json.prefix(16)).replacingOccurrences(of: "T", with: " ")
        #expect(utc.json.hasSuffix("Z"))
        #expect(utc.row.contains(" \(minutes)Z "), "\(utc.row)")
        #expect(try Self.firstDue(dir, pipeline, ["--utc"], environment: Self.india).row == utc.row)
        let local = try Self.firstDue(dir, pipeline, ["--local"], environment: Self.india)
        #expect(local.json == utc.json)
        let t = try #require(ISO8601DateFormatter().date(from: String(utc.json.prefix(19)) + "Z"))
        let shifted = ISO8601DateFormatter.string(
            from: t.addingTimeInterval(19_800), timeZone: TimeZone(identifier: "UTC")!,
            formatOptions: [.withInternetDateTime])
        let expected = String(shifted.prefix(16)).replacingOccurrences(of: "T", with: " ") + "+05:30"
        #expect(local.row.contains(" \(expected) "), "\(local.row)")

        let show = try LymphBinary.run(
            ["tickets", "show", String(local.row.prefix(19)), "--format", "table", "--local"] + pipeline,
            in: dir, environment: Self.india)
        #expect(show.stdoutLines.contains { $0.hasPrefix("DUE BY") && $0.hasSuffix("+05:30") }, "\(show.stdout)")
        #expect(show.stdoutLines.contains { $0.hasPrefix("CREATED") && $0.hasSuffix("+05:30") }, "\(show.stdout)")
    }

    @Test("--utc and --local together are a usage error (exit 2)")
    func exclusive() throws {
        let r = try LymphBinary.run(["sensors", "--utc", "--local", "--state", "x.sqlite"], in: LymphBinary.workDirectory())
        #expect(r.status == 2, "\(r.stderr)")
    }

    @Test("lymph sensors and lymph dead-letters mark their times too")
    func sensorsAndDeadLetters() throws {
        let (dir, _) = try Self.maintenance()
        let state = ["--state", dir + "/.lymph/maintenance.sqlite"]
        let sensors = try LymphBinary.run(["sensors", "--format", "table"] + state, in: dir, environment: Self.india)
        let rows = sensors.stdoutLines.dropFirst().dropLast()
        #expect(!rows.isEmpty && rows.allSatisfy { $0.range(of: #" \d{4}-\d\d-\d\d \d\d:\d\dZ "#, options: .regularExpression) != nil }, "\(sensors.stdout)")
        let local = try LymphBinary.run(["sensors", "--format", "table", "--local"] + state, in: dir, environment: Self.india)
        #expect(local.stdoutLines.dropFirst().dropLast().allSatisfy { $0.contains("+05:30 ") }, "\(local.stdout)")

        let dead = try LymphBinary.run(["dead-letters", ".lymph/maintenance.dead.ndjson", "--format", "table", "--local"], in: dir, environment: Self.india)
        #expect(dead.status == 0, "\(dead.stderr)")
        #expect(dead.stdoutLines.dropFirst().first?.range(of: #"\d\d:\d\d:\d\d\+05:30 +\d{4}-"#, options: .regularExpression) != nil, "\(dead.stdout)")
        let shown = try LymphBinary.run(["dead-letters", "show", "1", ".lymph/maintenance.dead.ndjson", "--format", "table"], in: dir)
        #expect(shown.stdoutLines.contains { $0.range(of: #"^AT +\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$"#, options: .regularExpression) != nil }, "\(shown.stdout)")
    }
}
