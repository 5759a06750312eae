import Foundation
import Testing

/// pipelines/plugins.yaml with the example plugins, run as the README shows. The pipeline and
/// plugins/ are copied into a fresh folder (same layout) so notifications land there.
@Suite("pipelines/plugins.yaml, end to end", .serialized)
struct PluginsPipelineTests {
    static func layout() throws -> String {
        let dir = LymphBinary.workDirectory()
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/pipelines", withIntermediateDirectories: true)
        try fm.copyItem(atPath: LymphBinary.repo("pipelines/plugins.yaml"), toPath: dir + "/pipelines/plugins.yaml")
        try fm.copyItem(atPath: LymphBinary.repo("plugins"), toPath: dir + "/plugins")
        return dir
    }

    static let events = LymphBinary.repo("examples/events.ndjson")

    @Test("the example plugins enrich, filter and tag the example events; alerts are notified")
    func examplePipeline() throws {
        let dir = try Self.layout()
        let r = try LymphBinary.run(["run", "pipelines/plugins.yaml", Self.events, "--summary", "json"], in: dir)
        #expect(r.status == 1, "parse dead letters are expected: \(r.stderr)")
        #expect(r.count("events_read") == 300)
        #expect(r.count("passed") == 213)
        #expect(r.count("duplicates") == 19)
        #expect(r.count("dropped") == 78)  // 19 duplicates + 59 predictions under 80% confidence
        #expect((ExecHarness.stage(r, "high-confidence")["dropped"] as? [String: Int])?["no_output"] == 59)
        #expect(r.count("dead_letters") == 9)
        let events = r.stdoutLines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(events.count == 213)
        let sites = Set(["plant-north", "plant-south", "harbour-depot", "east-warehouse"])
        #expect(events.allSatisfy { sites.contains(($0["data"] as? [String: Any])?["site"] as? String ?? "") })
        let predictions = events.filter { $0["type"] as? String == "prediction.created" }
        #expect(!predictions.isEmpty)
        #expect(predictions.allSatisfy { (($0["data"] as? [String: Any])?["confidence"] as? Double ?? 0) >= 0.8 })
        let alerts = events.filter { $0["type"] as? String == "alert.triggered" }
        #expect(alerts.allSatisfy { ["P1", "P2", "P3", "P4"].contains(($0["data"] as? [String: Any])?["priority"] as? String ?? "") })
        let serious = alerts.filter { ["high", "critical"].contains(($0["data"] as? [String: Any])?["severity"] as? String ?? "") }
        let notified = LymphBinary.lines(dir + "/logs/notifications.log")
        #expect(notified.count == serious.count && !serious.isEmpty)
        #expect(notified.allSatisfy { line in serious.contains { line.contains($0["id"] as! String) } })
        // Input order is kept through event-mode workers and stream processes.
        let inputOrder = LymphBinary.lines(Self.events).compactMap { ExecHarness.field($0, "id").isEmpty ? nil : ExecHarness.field($0, "id") }
        let outputOrder = events.map { $0["id"] as! String }
        #expect(outputOrder == inputOrder.filter { outputOrder.contains($0) }.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } })
    }

    @Test("a pager outage: notify.sh exits 75, is retried, then dead-lettered; replaying later delivers")
    func outageAndReplay() throws {
        let dir = try Self.layout()
        try FileManager.default.createDirectory(atPath: dir + "/logs", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: dir + "/logs/pager-down", contents: Data())
        let r = try LymphBinary.run(["run", "pipelines/plugins.yaml", Self.events, "--summary", "json"], in: dir)
        #expect(r.status == 1)
        let dead = LymphBinary.lines(dir + "/.lymph/plugins.dead.ndjson").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let notify = dead.filter { ($0["error"] as? [String: Any])?["stage"] as? String == "notify" }
        #expect(!notify.isEmpty)
        #expect(r.count("passed") == 213 - notify.count)
        for record in notify {
            let message = (record["error"] as! [String: Any])["message"] as! String
            #expect(message.contains("exited with status 75"))
            #expect(message.contains("gave up after 3 attempts"))
            #expect(message.contains("pager service unavailable"))
        }
        #expect(LymphBinary.lines(dir + "/logs/notifications.log").isEmpty)
        // The pager is back: the dead letters go through the pipeline again.
        try FileManager.default.removeItem(atPath: dir + "/logs/pager-down")
        let replay = try LymphBinary.run(
            [
                "run", "pipelines/plugins.yaml", ".lymph/plugins.dead.ndjson", "--dead-letter", ".lymph/replay.dead.ndjson",
                "--summary", "json",
            ], in: dir)
        #expect(LymphBinary.lines(dir + "/logs/notifications.log").count == notify.count)
        #expect(replay.count("passed") >= notify.count)
    }
}
