import Foundation
import Testing

/// The day-2 failure that used to lose notifications for good: a notifier stage breaks after
/// tickets were opened, its events go to the dead letters, the operator fixes the stage and
/// replays. Each ticket must be announced exactly once.
@Suite("replay after a broken notifier, end to end")
struct ReplayScenarioTests {
    static let secret = ["IMMUNE_WEBHOOK_SECRET": "whsec_lymph_example_only"]

    /// The example pipeline and its plugin in a fresh folder, as an operator's checkout.
    func checkout() throws -> String {
        let dir = LymphBinary.workDirectory()
        let fm = FileManager.default
        for folder in ["pipelines", "plugins", "examples"] { try fm.createDirectory(atPath: dir + "/" + folder, withIntermediateDirectories: true) }
        for file in ["pipelines/maintenance-notify.yaml", "plugins/ticket-notify.sh"] {
            try fm.copyItem(atPath: LymphBinary.repo(file), toPath: dir + "/" + file)
        }
        // Signed deliveries with retries among them, and nothing malformed: every dead letter
        // then comes from the broken stage.
        let sample = try LymphBinary.run(
            ["sample", "--count", "400", "--seed", "17", "--duplicates", "0.05", "--sign", "env:IMMUNE_WEBHOOK_SECRET"],
            in: dir, environment: Self.secret)
        #expect(sample.status == 0)
        try sample.stdout.write(toFile: dir + "/examples/deliveries.ndjson", atomically: true, encoding: .utf8)
        return dir
    }

    func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func object(_ line: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? [:]
    }

    @Test("broken plugin, dead letters, fix, lymph replay: one notice per ticket; a second replay and the original deliveries add none")
    func notificationsSurviveReplay() throws {
        let dir = try checkout()
        let pipeline = "pipelines/maintenance-notify.yaml"
        let fixed = try String(contentsOfFile: dir + "/" + pipeline, encoding: .utf8)
        let passThrough = "      env:\n        TICKET_CHANNEL: ../logs/tickets-channel.log\n"
        #expect(fixed.contains(passThrough))
        // The operator's mistake: the variable the plugin needs is not passed through env:.
        try fixed.replacingOccurrences(of: passThrough, with: "").write(toFile: dir + "/" + pipeline, atomically: true, encoding: .utf8)

        let first = try LymphBinary.run(
            ["run", pipeline, "examples/deliveries.ndjson", "--output", "none", "--summary", "json"], in: dir, environment: Self.secret)
        #expect(first.status == 1)
        #expect(first.count("dead_letters") > 10)
        let tickets = try LymphBinary.run(["tickets", "--status", "all", "--format", "json", "--pipeline", pipeline], in: dir)
        let ticketIDs = Set(tickets.stdoutLines.map { object($0)["ticket_id"] as? String ?? "" })
        #expect(ticketIDs.count > 10)
        let channel = dir + "/logs/tickets-channel.log"
        #expect(lines(channel).isEmpty)
        let dead = dir + "/.lymph/maintenance-notify.dead.ndjson"
        let notifyRecords = lines(dead).map(object).filter { ($0["error"] as? [String: Any])?["stage"] as? String == "notify" }
        #expect(notifyRecords.count == ticketIDs.count && notifyRecords.count == first.count("dead_letters"))
        for record in notifyRecords {
            let resume = record["resume"] as? [String: Any]
            #expect(resume?["stage"] as? String == "notify")
            #expect((resume?["event"] as? [String: Any])?["type"] as? String == "maintenance.scheduled")
        }

        // The fix, then one replay: every ticket is announced once.
        try fixed.write(toFile: dir + "/" + pipeline, atomically: true, encoding: .utf8)
        let replay = try LymphBinary.run(["replay", pipeline, "--output", "none", "--summary", "json"], in: dir, environment: Self.secret)
        let announced = lines(channel).map { $0.split(separator: " ")[1] }.map(String.init)
        #expect(announced.count == ticketIDs.count)
        #expect(Set(announced) == ticketIDs)
        // Nothing failed again: the moved file is gone, and so is any fresh dead letter.
        #expect(replay.status == 0)
        #expect(lines(dead).isEmpty)
        let left = try FileManager.default.contentsOfDirectory(atPath: dir + "/.lymph").filter { $0.contains(".replay-") }
        #expect(left.isEmpty)

        // Replaying again does nothing; the original deliveries again announce nothing more.
        let again = try LymphBinary.run(["replay", pipeline, "--output", "none"], in: dir, environment: Self.secret)
        #expect(again.status == 0 && again.stderr.contains("nothing to replay"))
        let original = try LymphBinary.run(
            ["run", pipeline, "examples/deliveries.ndjson", "--output", "none", "--summary", "json"], in: dir, environment: Self.secret)
        #expect(original.status == 0 && original.count("passed") == 0)
        #expect(lines(channel).count == ticketIDs.count)
        let after = try LymphBinary.run(["tickets", "--status", "all", "--format", "json", "--pipeline", pipeline], in: dir)
        #expect(after.stdout == tickets.stdout, "replay opened or changed tickets")
    }
}
