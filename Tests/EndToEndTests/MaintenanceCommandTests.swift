import Foundation
import Lymph
import Testing

@Suite("maintenance pipeline and the tickets/sensors commands, end to end")
struct MaintenanceCommandTests {
    static let secret = ["IMMUNE_WEBHOOK_SECRET": "whsec_lymph_example_only"]

    func runMaintenance(in dir: String) throws -> LymphBinary.Result {
        try LymphBinary.run(
            [
                "run", LymphBinary.repo("pipelines/maintenance.yaml"), LymphBinary.repo("examples/deliveries.ndjson"),
                "--summary", "json", "--output", "none",
            ], in: dir, environment: Self.secret)
    }

    @Test("the example deliveries make tickets; replays leave the table as it was")
    func tickets() throws {
        let dir = LymphBinary.workDirectory()
        let first = try runMaintenance(in: dir)
        #expect(first.status == 1)  // the example deliveries include malformed ones
        let pipelineArg = ["--pipeline", LymphBinary.repo("pipelines/maintenance.yaml")]
        let json = try LymphBinary.run(["tickets", "--status", "all", "--format", "json"] + pipelineArg, in: dir)
        #expect(json.status == 0)
        let tickets = json.stdoutLines.map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(tickets.count > 10)
        for t in tickets {
            #expect((t["ticket_id"] as? String)?.hasPrefix("mt_") == true)
            #expect(["critical", "high", "medium", "low"].contains(t["priority"] as? String ?? ""))
            #expect((t["source_event_ids"] as? [String])?.isEmpty == false)
        }
        let dueDates = tickets.map { $0["due_by"] as! String }
        #expect(dueDates == dueDates.sorted())
        // Replays (dedup and the ticket book's own idempotency) change nothing.
        _ = try runMaintenance(in: dir)
        try FileManager.default.removeItem(atPath: dir + "/.lymph/maintenance.dead.ndjson")
        _ = try runMaintenance(in: dir)
        let again = try LymphBinary.run(["tickets", "--status", "all", "--format", "json"] + pipelineArg, in: dir)
        #expect(again.stdout == json.stdout)

        let table = try LymphBinary.run(["tickets", "--format", "table"] + pipelineArg, in: dir)
        let lines = table.stdoutLines
        #expect(lines.first?.hasPrefix("TICKET") == true)
        #expect(lines.last == "\(tickets.count) tickets")

        // Close one: it leaves the open list and keeps its note.
        let id = tickets[0]["ticket_id"] as! String
        let close = try LymphBinary.run(["tickets", "close", id, "--note", "bearing replaced"] + pipelineArg, in: dir)
        #expect(close.stdout == "\(id): done\n")
        let shown = try LymphBinary.run(["tickets", "show", id] + pipelineArg, in: dir)
        #expect(shown.stdout.contains(#""status":"done""#) && shown.stdout.contains(#""note":"bearing replaced""#))
        let open = try LymphBinary.run(["tickets", "--format", "json"] + pipelineArg, in: dir)
        #expect(open.stdoutLines.count == tickets.count - 1)
        let missing = try LymphBinary.run(["tickets", "show", "mt_nope"] + pipelineArg, in: dir)
        #expect(missing.status == 1)
    }

    @Test(
        "tables show an event's control characters and bidirectional controls as '?': an id cannot send a terminal escape, forge a row or turn text around"
    )
    func tablesShowControlCharacters() throws {
        let dir = LymphBinary.workDirectory()
        try "pipeline: t\nstate: st.sqlite\noutput: none\nstages: [parse, schedule_maintenance, track_sensors]\n".write(
            toFile: dir + "/t.yaml", atomically: true, encoding: .utf8)
        let id = #"p\u001b[2J\r\nmt_0000000000000000  forged\u202e1_pmup"#
        try [
            #"{"id":"\#(id)","type":"prediction.created","created_at":"2026-06-01T00:00:00Z","data":{"equipment_id":"pump_1","confidence":0.95,"predicted_failure_time":"2026-06-05T00:00:00Z","recommended_action":"Fix"}}"#,
            #"{"id":"\#(id)","type":"sensor.status_changed","created_at":"2026-06-01T00:00:00Z","data":{"sensor_id":"sen_1","status":"online"}}"#,
        ].joined(separator: "\n").write(toFile: dir + "/in.ndjson", atomically: true, encoding: .utf8)
        #expect(try LymphBinary.run(["run", "t.yaml", "in.ndjson", "--summary", "none"], in: dir).status == 0)
        let ticket = try LymphBinary.run(["tickets", "--state", "st.sqlite", "--format", "json"], in: dir)
        let first = ticket.stdoutLines.first.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let ticketID = try #require(first?["ticket_id"] as? String)
        for args in [["tickets", "show", ticketID, "--format", "table"], ["sensors", "--format", "table"]] {
            let table = try LymphBinary.run(args + ["--state", "st.sqlite"], in: dir)
            #expect(table.status == 0)
            #expect(!table.stdout.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x0D || $0.value == 0x202E })
            #expect(table.stdout.contains("p?[2J??mt_0000000000000000  forged?1_pmup"))
        }
    }

    @Test("sensors are listed in both formats")
    func sensors() throws {
        let dir = LymphBinary.workDirectory()
        _ = try runMaintenance(in: dir)
        let state = ["--state", dir + "/.lymph/maintenance.sqlite"]
        let json = try LymphBinary.run(["sensors", "--format", "json"] + state, in: dir)
        #expect(json.status == 0)
        #expect(!json.stdoutLines.isEmpty)
        for line in json.stdoutLines {
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            #expect(["online", "offline", "error"].contains(o["status"] as? String ?? ""))
        }
        let offline = try LymphBinary.run(["sensors", "--status", "offline", "--format", "table"] + state, in: dir)
        #expect(offline.stdoutLines.dropFirst().dropLast().allSatisfy { $0.contains(" offline ") })
    }

    @Test("tickets and sensors only read: a file that is not a store is refused and left as it was, and a store's files are not written")
    func listingOnlyReads() throws {
        let dir = LymphBinary.workDirectory()
        FileManager.default.createFile(atPath: dir + "/empty.sqlite", contents: Data())
        for command in [["tickets"], ["sensors"]] {
            let r = try LymphBinary.run(command + ["--state", "empty.sqlite"], in: dir)
            #expect(r.status == 3, "\(r.stderr)")
            #expect(r.stderr.contains("is not a Lymph store"), "\(r.stderr)")
            #expect((try? FileManager.default.attributesOfItem(atPath: dir + "/empty.sqlite")[.size] as? Int) == 0)
        }
        let dev = try LymphBinary.run(["tickets", "--state", "/dev/null"], in: dir)
        #expect(dev.status == 3 && dev.stderr.contains("is not a Lymph store"), "\(dev.stderr)")

        _ = try runMaintenance(in: dir)
        let store = dir + "/.lymph/maintenance.sqlite"
        // The store's file as it was; SQLite may open an empty log beside it for a reader.
        func stamp() -> String {
            let a = try? FileManager.default.attributesOfItem(atPath: store)
            let log = (try? FileManager.default.attributesOfItem(atPath: store + "-wal")[.size] as? Int) ?? 0
            return "\(a?[.size] ?? "-") \((a?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0) log \(log)"
        }
        let before = stamp()
        Thread.sleep(forTimeInterval: 0.05)
        let listed = try LymphBinary.run(["tickets", "--state", store, "--format", "json"], in: dir)
        #expect(listed.status == 0, "\(listed.stderr)")
        #expect(!listed.stdout.isEmpty)
        #expect(try LymphBinary.run(["sensors", "--state", store], in: dir).status == 0)
        #expect(stamp() == before)
    }

    @Test(
        "a user who may only read the store and its folder lists tickets and sensors, and leaves no file behind",
        .enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/runuser")))
    func readOnlyUser() throws {
        let dir = NSTemporaryDirectory() + "lymph-ro-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/st", withIntermediateDirectories: true)
        defer {
            chmod(dir + "/st", 0o755)
            try? FileManager.default.removeItem(atPath: dir)
        }
        let run = try LymphBinary.run(
            [
                "run", LymphBinary.repo("pipelines/maintenance.yaml"), LymphBinary.repo("examples/deliveries.ndjson"), "--summary", "none",
                "--output", "none", "--state", dir + "/st/m.sqlite", "--dead-letter", dir + "/dead.ndjson",
            ], in: dir, environment: Self.secret)
        #expect(run.status == 1, "\(run.stderr)")
        // As a store is left once the last process using it has closed it: without its log.
        do { _ = try StateStore.open(path: dir + "/st/m.sqlite", concurrentReads: false) }
        #expect(!FileManager.default.fileExists(atPath: dir + "/st/m.sqlite-wal"))
        let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/st").sorted()
        for path in [dir, dir + "/st"] + files.map({ dir + "/st/" + $0 }) { chmod(path, path.hasSuffix("st") || path == dir ? 0o555 : 0o444) }
        for command in ["tickets", "sensors"] {
            let r = Shell.run(["/usr/sbin/runuser", "-u", "nobody", "--", LymphBinary.path, command, "--state", dir + "/st/m.sqlite"])
            #expect(r.status == 0, "\(command): \(r.stderr)")
            #expect(!r.stdout.isEmpty)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/st").sorted() == files)
    }

    @Test("without --state or --pipeline the command says what it needs")
    func needsState() throws {
        let r = try LymphBinary.run(["tickets"], in: LymphBinary.workDirectory())
        #expect(r.status == 2)
        #expect(r.stderr.contains("--state PATH or --pipeline FILE"))
    }
}
