import Foundation
import Testing

/// `lymph tickets` and `lymph sensors` as the README describes them: `--format` on `show`, a
/// close that changes nothing says so, misuse shows the command's own usage.
@Suite("tickets and sensors commands")
struct TicketsAndSensorsCommandTests {
    static let secret = ["IMMUNE_WEBHOOK_SECRET": "whsec_lymph_example_only"]

    /// A folder whose store holds the maintenance tickets of the example deliveries, and the
    /// `--pipeline` arguments that find it.
    func maintenanceStore() throws -> (dir: String, pipeline: [String], ticket: String) {
        let dir = LymphBinary.workDirectory()
        try LymphBinary.run(["run", LymphBinary.repo("pipelines/maintenance.yaml"), LymphBinary.repo("examples/deliveries.ndjson"),
                             "--summary", "none", "--output", "none"], in: dir, environment: Self.secret)
        let pipeline = ["--pipeline", LymphBinary.repo("pipelines/maintenance.yaml")]
        let list = try LymphBinary.run(["tickets", "--format", "json"] + pipeline, in: dir)
        let first = try #require(list.stdoutLines.first)
        let ticket = try #require((try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])?["ticket_id"] as? String)
        return (dir, pipeline, ticket)
    }

    @Test("tickets show takes --format: json prints the ticket as one JSON line, table one field a line")
    func showFormat() throws {
        let (dir, pipeline, id) = try maintenanceStore()
        let json = try LymphBinary.run(["tickets", "show", id, "--format", "json"] + pipeline, in: dir)
        #expect(json.status == 0, "\(json.stderr)")
        #expect(json.stdoutLines.count == 1)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(object?["ticket_id"] as? String == id)
        #expect((object?["source_event_ids"] as? [String])?.isEmpty == false)

        let table = try LymphBinary.run(["tickets", "show", id, "--format", "table"] + pipeline, in: dir)
        #expect(table.status == 0, "\(table.stderr)")
        let lines = table.stdoutLines
        #expect(lines.first?.hasPrefix("TICKET") == true && lines.first?.hasSuffix(id) == true, "\(table.stdout)")
        #expect(lines.contains { $0.hasPrefix("STATUS") && $0.hasSuffix("open") })
        #expect(lines.contains { $0.hasPrefix("SOURCES") && $0.contains("evt_") })
    }

    @Test("closing or cancelling a ticket already closed says so, changes nothing and exits 1")
    func closeClosedTicket() throws {
        let (dir, pipeline, id) = try maintenanceStore()
        let close = try LymphBinary.run(["tickets", "close", id, "--note", "bearing replaced"] + pipeline, in: dir)
        #expect(close.status == 0)
        #expect(close.stdout == "\(id): done\n")

        let cancel = try LymphBinary.run(["tickets", "close", id, "--cancel", "--note", "changed my mind"] + pipeline, in: dir)
        #expect(cancel.status == 1)
        #expect(cancel.stdout.isEmpty)
        #expect(cancel.stderr.contains("ticket \(id) is already done (closed 20"), "\(cancel.stderr)")
        #expect(cancel.stderr.contains("nothing changed"))

        let again = try LymphBinary.run(["tickets", "close", id] + pipeline, in: dir)
        #expect(again.status == 1)
        #expect(again.stderr.contains("is already done"), "\(again.stderr)")

        // Still done, with the first close's note.
        let shown = try LymphBinary.run(["tickets", "show", id, "--format", "json"] + pipeline, in: dir)
        #expect(shown.stdout.contains(#""status":"done""#) && shown.stdout.contains(#""note":"bearing replaced""#), "\(shown.stdout)")
    }

    @Test("a cancelled ticket closed again says it is already cancelled")
    func closeCancelledTicket() throws {
        let (dir, pipeline, id) = try maintenanceStore()
        let cancel = try LymphBinary.run(["tickets", "close", id, "--cancel"] + pipeline, in: dir)
        #expect(cancel.status == 0)
        #expect(cancel.stdout == "\(id): cancelled\n")
        let close = try LymphBinary.run(["tickets", "close", id] + pipeline, in: dir)
        #expect(close.status == 1)
        #expect(close.stderr.contains("ticket \(id) is already cancelled (closed "), "\(close.stderr)")
    }

    @Test("without --state or --pipeline, tickets and sensors show their own usage, not lymph's", arguments: [
        (["tickets"], "lymph tickets list"),
        (["tickets", "show", "mt_0000000000000000"], "lymph tickets show"),
        (["tickets", "close", "mt_0000000000000000"], "lymph tickets close"),
        (["sensors"], "lymph sensors"),
    ])
    func usageWithoutState(arguments: [String], command: String) throws {
        let r = try LymphBinary.run(arguments, in: LymphBinary.workDirectory())
        #expect(r.status == 2)
        #expect(r.stderr.contains("--state PATH or --pipeline FILE"), "\(r.stderr)")
        #expect(r.stderr.contains("Usage: \(command) "), "\(r.stderr)")
        #expect(r.stderr.contains("See '\(command) --help'"), "\(r.stderr)")
        #expect(!r.stderr.contains("<subcommand>"), "\(r.stderr)")
    }

    @Test("sensors on a pipeline without a track_sensors stage says so on stderr and exits 2")
    func sensorsWithoutTrackSensors() throws {
        let dir = LymphBinary.workDirectory()
        let yaml = """
            pipeline: nosensors
            state: .lymph/nosensors.sqlite
            output: out.ndjson
            dead_letter: dead.ndjson
            stages:
              - parse
              - dedup
            """
        _ = FileManager.default.createFile(atPath: dir + "/p.yaml", contents: Data(yaml.utf8))
        // The store exists (the pipeline has run), so the question is only the stage.
        let run = try LymphBinary.run(["run", "p.yaml", LymphBinary.repo("examples/events.ndjson"), "--summary", "none"], in: dir)
        #expect(FileManager.default.fileExists(atPath: dir + "/.lymph/nosensors.sqlite"), "\(run.stderr)")
        for format in ["json", "table"] {
            let r = try LymphBinary.run(["sensors", "--pipeline", "p.yaml", "--format", format], in: dir)
            #expect(r.status == 2)
            #expect(r.stdout.isEmpty)
            #expect(r.stderr.contains("p.yaml tracks no sensors (it has no track_sensors stage)"), "\(r.stderr)")
        }
        // A pipeline that tracks sensors still lists them.
        let maintenance = LymphBinary.workDirectory()
        try LymphBinary.run(["run", LymphBinary.repo("pipelines/maintenance.yaml"), LymphBinary.repo("examples/deliveries.ndjson"),
                             "--summary", "none", "--output", "none"], in: maintenance, environment: Self.secret)
        let listed = try LymphBinary.run(["sensors", "--pipeline", LymphBinary.repo("pipelines/maintenance.yaml"), "--format", "json"], in: maintenance)
        #expect(listed.status == 0)
        #expect(!listed.stdoutLines.isEmpty)
    }
}
