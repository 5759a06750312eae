import Foundation
import Testing

/// A pipeline whose `deliver` stage fails every event (exit 65) until a file named `fixed`
/// exists: the operator's "fix the cause, then replay".
struct FixableHarness {
    let dir = LymphBinary.workDirectory()
    static let dead = ".lymph/fixme.dead.ndjson"

    /// `dedup: false`: no stage keeps state, though the pipeline names a store.
    init(events: Int = 5, dedup: Bool = true) throws {
        let yaml = """
            pipeline: fixme
            state: .lymph/fixme.sqlite
            output: out.ndjson
            dead_letter: \(Self.dead)
            stages:
              - parse
            \(dedup ? "  - dedup\n" : "")  - exec: { name: deliver, command: ./deliver.sh }
            """
        try yaml.write(toFile: dir + "/fixme.yaml", atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(
            atPath: dir + "/deliver.sh",
            contents: Data("#!/bin/sh\nif [ ! -f fixed ]; then echo 'downstream not configured' >&2; exit 65; fi\ntee -a delivered.ndjson\n".utf8),
            attributes: [.posixPermissions: 0o755])
        let lines = (1...events).map { #"{"id":"e\#($0)","type":"alert.triggered","created_at":"2026-06-01T00:00:00Z","data":{"n":\#($0)}}"# }
        try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/events.ndjson", atomically: true, encoding: .utf8)
        let first = try run(["run", "fixme.yaml", "events.ndjson"])
        #expect(first.status == 1, "\(first.stderr)")
        #expect(LymphBinary.lines(dir + "/" + Self.dead).count == events)
    }

    func run(_ arguments: [String]) throws -> LymphBinary.Result {
        try LymphBinary.run(arguments + ["--summary", "json"], in: dir)
    }

    func fix() { _ = FileManager.default.createFile(atPath: dir + "/fixed", contents: Data()) }

    /// Files kept by replays beside the dead-letter file.
    var kept: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir + "/.lymph")) ?? []).filter { $0.hasPrefix("fixme.dead.ndjson.replay-") }.sorted()
    }
}

@Suite("lymph replay, end to end")
struct ReplayCommandTests {
    @Test("a record replayed from the top that fails again keeps its first source position, replay after replay, not the kept .replay- file's")
    func replayedFromTheTopKeepsFirstSource() throws {
        let dir = LymphBinary.workDirectory()
        try "pipeline: q\nstate: st/q.sqlite\noutput: out/out.ndjson\ndead_letter: out/dead.ndjson\nstages:\n  - parse\n  - dedup\n".write(
            toFile: dir + "/q.yaml", atomically: true, encoding: .utf8)
        let good = #"{"id":"e1","type":"alert.triggered","created_at":"2026-06-01T00:00:00Z","data":{}}"#
        try "\(good)\nnot json\n".write(toFile: dir + "/ev.ndjson", atomically: true, encoding: .utf8)
        func source() throws -> [String: Any] {
            let line = try #require(LymphBinary.lines(dir + "/out/dead.ndjson").first)
            let record = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return try #require(record["source"] as? [String: Any])
        }
        let first = try LymphBinary.run(["run", "q.yaml", "ev.ndjson", "--summary", "none"], in: dir)
        #expect(first.status == 1, "\(first.stderr)")
        var s = try source()
        #expect(s["file"] as? String == "ev.ndjson" && s["line"] as? Int == 2, "\(s)")
        for _ in 1...2 {
            let replay = try LymphBinary.run(["replay", "q.yaml", "--summary", "none"], in: dir)
            #expect(replay.status == 1, "\(replay.stderr)")
            s = try source()
            #expect(s["file"] as? String == "ev.ndjson" && s["line"] as? Int == 2, "\(s)")
        }
    }

    @Test(
        "a pipeline that names a store but has no stage keeping state still remembers its replays: the same records replayed again are already_replayed, not delivered twice"
    )
    func replayRememberedWithoutStatefulStages() throws {
        let h = try FixableHarness(events: 3, dedup: false)
        let copy = h.dir + "/copy.ndjson"
        try FileManager.default.copyItem(atPath: h.dir + "/" + FixableHarness.dead, toPath: copy)
        h.fix()
        let first = try h.run(["replay", "fixme.yaml"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.count("passed") == 3, "\(first.stderr)")
        let again = try h.run(["replay", "fixme.yaml", "copy.ndjson"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("\"already_replayed\": 3") || again.stderr.contains("\"already_replayed\":3"), "\(again.stderr)")
        #expect(LymphBinary.lines(h.dir + "/delivered.ndjson").count == 3)
        #expect(LymphBinary.lines(h.dir + "/out.ndjson").count == 3)
    }

    @Test("after the fix, replay processes every dead letter, deletes the moved file and exits 0; a second replay has nothing to do")
    func replayAfterFix() throws {
        let h = try FixableHarness()
        h.fix()
        let r = try h.run(["replay", "fixme.yaml"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.count("events_read") == 5 && r.count("passed") == 5 && r.count("dead_letters") == 0)
        #expect(r.stderr.contains("replaying '\(FixableHarness.dead)' from '\(FixableHarness.dead).replay-"), "\(r.stderr)")
        #expect(r.stderr.contains("every record went through: deleted '\(FixableHarness.dead).replay-"), "\(r.stderr)")
        #expect(h.kept.isEmpty)
        #expect(LymphBinary.lines(h.dir + "/out.ndjson").count == 5)
        #expect(LymphBinary.lines(h.dir + "/" + FixableHarness.dead).isEmpty)

        let again = try h.run(["replay", "fixme.yaml"])
        #expect(again.status == 0)
        #expect(again.stderr.contains("nothing to replay: '\(FixableHarness.dead)' is empty"), "\(again.stderr)")
        #expect(again.summary.isEmpty)
        #expect(LymphBinary.lines(h.dir + "/out.ndjson").count == 5)
    }

    @Test("records that fail again go to a fresh file; the moved file is kept and named; exit 1")
    func replayFailsAgain() throws {
        let h = try FixableHarness(events: 3)
        let r = try h.run(["replay", "fixme.yaml"])
        #expect(r.status == 1)
        #expect(r.count("dead_letters") == 3)
        let kept = try #require(h.kept.first)
        #expect(h.kept.count == 1)
        #expect(r.stderr.contains("kept '.lymph/\(kept)': 3 records failed again (now in '\(FixableHarness.dead)')"), "\(r.stderr)")
        #expect(LymphBinary.lines(h.dir + "/.lymph/" + kept).count == 3)
        #expect(LymphBinary.lines(h.dir + "/" + FixableHarness.dead).count == 3)

        // The summary lists the kept file; a later replay after the fix replays only the fresh file.
        let summary = try LymphBinary.run(["dead-letters", "fixme.yaml", "--format", "table"], in: h.dir)
        #expect(summary.stdout.contains("kept by an earlier replay: '.lymph/\(kept)' (3 records"), "\(summary.stdout)")
        h.fix()
        let fixed = try h.run(["replay", "fixme.yaml"])
        #expect(fixed.status == 0, "\(fixed.stderr)")
        #expect(fixed.count("passed") == 3)
        #expect(h.kept == [kept])

        // The kept file replayed by name, as 'nothing to replay' suggests: its records were done
        // by the replay just now (already_replayed), and it goes, as the moved file would have.
        let named = try h.run(["replay", "fixme.yaml", ".lymph/\(kept)"])
        #expect(named.status == 0, "\(named.stderr)")
        #expect(named.stderr.contains("every record went through: deleted '.lymph/\(kept)'"), "\(named.stderr)")
        #expect(h.kept.isEmpty)
        let after = try h.run(["replay", "fixme.yaml"])
        #expect(!after.stderr.contains("kept by an earlier replay"), "\(after.stderr)")
    }

    @Test("another file is read in place and never moved or deleted; a missing one is exit 2")
    func otherFile() throws {
        let h = try FixableHarness(events: 2)
        try FileManager.default.moveItem(atPath: h.dir + "/" + FixableHarness.dead, toPath: h.dir + "/saved.ndjson")
        h.fix()
        let r = try h.run(["replay", "fixme.yaml", "saved.ndjson"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.count("passed") == 2)
        #expect(LymphBinary.lines(h.dir + "/saved.ndjson").count == 2)
        #expect(h.kept.isEmpty)

        let missing = try h.run(["replay", "fixme.yaml", "typo.ndjson"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("'typo.ndjson': cannot read"), "\(missing.stderr)")
    }

    @Test("the pipeline's own file named explicitly is moved and deleted as by default")
    func ownFileNamed() throws {
        let h = try FixableHarness(events: 2)
        h.fix()
        let r = try h.run(["replay", "fixme.yaml", "./" + FixableHarness.dead])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("deleted"))
        #expect(h.kept.isEmpty)
    }

    @Test("records that resume at their stage: counted and shown as such, and replayed there once the stage is fixed")
    func resumeAtStage() throws {
        // pipelines/maintenance-notify.yaml without the notifier's env: every announcement fails (exit 78).
        let dir = LymphBinary.workDirectory()
        try FileManager.default.createDirectory(atPath: dir + "/pipes", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/plugins", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: LymphBinary.repo("plugins/ticket-notify.sh"), toPath: dir + "/plugins/ticket-notify.sh")
        let fixed = try String(contentsOfFile: LymphBinary.repo("pipelines/maintenance-notify.yaml"), encoding: .utf8)
        let broken = fixed.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("      env:") && !$0.hasPrefix("        TICKET_CHANNEL") }.joined(separator: "\n")
        #expect(broken != fixed)
        try broken.write(toFile: dir + "/pipes/mn.yaml", atomically: true, encoding: .utf8)
        let secret = ["IMMUNE_WEBHOOK_SECRET": "whsec_lymph_example_only"]
        let run = try LymphBinary.run(
            ["run", "pipes/mn.yaml", LymphBinary.repo("examples/deliveries.ndjson"), "--output", "none", "--summary", "none"],
            in: dir, environment: secret)
        #expect(run.status == 1)

        let summary = try LymphBinary.run(["dead-letters", "pipes/mn.yaml", "--format", "json"], in: dir)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(summary.stdout.utf8)) as? [String: Any])
        let groups = try #require(object["groups"] as? [[String: Any]])
        let notify = try #require(groups.first { $0["stage"] as? String == "notify" })
        let announcements = try #require(notify["count"] as? Int)
        #expect(announcements > 0)
        #expect(notify["resumes"] as? Int == announcements && notify["from_start"] as? Int == 0)
        #expect(groups.last?["stage"] as? String == "notify", "pipeline order: parse and verify first")
        #expect(groups.filter { $0["stage"] as? String != "notify" }.allSatisfy { $0["resumes"] as? Int == 0 })

        let line = try #require(LymphBinary.lines(dir + "/.lymph/maintenance-notify.dead.ndjson").firstIndex { $0.contains(#""resume":"#) }) + 1
        let shown = try LymphBinary.run(["dead-letters", "show", String(line), "pipes/mn.yaml", "--format", "table"], in: dir)
        #expect(shown.stdoutLines.contains { $0.hasPrefix("REPLAY") && $0.hasSuffix("resumes at stage 'notify' (exec)") }, "\(shown.stdout)")

        try fixed.write(toFile: dir + "/pipes/mn.yaml", atomically: true, encoding: .utf8)
        let replay = try LymphBinary.run(["replay", "pipes/mn.yaml", "--output", "none", "--summary", "json"], in: dir, environment: secret)
        // The malformed and forged deliveries fail again; every announcement goes out, once.
        #expect(replay.status == 1)
        #expect(replay.count("dead_letters") == (object["from_start"] as? Int ?? -1))
        #expect(LymphBinary.lines(dir + "/logs/tickets-channel.log").count == announcements)
        #expect(replay.stderr.contains("records failed again"), "\(replay.stderr)")
    }

    @Test("a pipeline that has never run has nothing to replay, and nothing is created")
    func neverRan() throws {
        let dir = LymphBinary.workDirectory()
        let r = try LymphBinary.run(["replay", LymphBinary.repo("pipelines/quickstart.yaml")], in: dir)
        #expect(r.status == 0)
        #expect(r.stderr.contains("nothing to replay: '.lymph/quickstart.dead.ndjson' does not exist"), "\(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    @Test("nothing to replay names the files an earlier replay kept (one killed half-way), and how to replay each")
    func nothingButKeptReplays() throws {
        let dir = LymphBinary.workDirectory()
        try FileManager.default.createDirectory(atPath: dir + "/.lymph", withIntermediateDirectories: true)
        let kept = ".lymph/quickstart.dead.ndjson.replay-20261206T120000Z"
        try "{}\n{}\n".write(toFile: dir + "/" + kept, atomically: true, encoding: .utf8)
        let pipeline = LymphBinary.repo("pipelines/quickstart.yaml")
        let r = try LymphBinary.run(["replay", pipeline], in: dir)
        #expect(r.status == 0)
        #expect(r.stderr.contains("nothing to replay: '.lymph/quickstart.dead.ndjson' does not exist"), "\(r.stderr)")
        #expect(r.stderr.contains("kept by an earlier replay: '\(kept)' (2 records); replay it with 'lymph replay \(pipeline) \(kept)'"), "\(r.stderr)")
    }

    @Test("a replay that cannot open the pipeline puts the dead letters back under their name")
    func putBackOnOpenFailure() throws {
        let h = try FixableHarness(events: 2)
        // The store is held by another process: exit 2 before anything is read. (Its dead
        // letters go elsewhere: one appending to the file replayed is refused before the move.)
        let lock = Pipe()
        let holder = try LymphBinary.launch(["run", "fixme.yaml", "-", "--output", "none", "--dead-letter", "holder.dead.ndjson"], in: h.dir, stdin: lock)
        defer { try? lock.fileHandleForWriting.close(); holder.waitUntilExit() }
        // The holder writes its pid into the lock file once it holds the lock.
        let lockFile = h.dir + "/.lymph/fixme.sqlite.lock"
        for _ in 0..<300 where (try? String(contentsOfFile: lockFile, encoding: .utf8))?.hasPrefix("\(holder.processIdentifier)") != true {
            Thread.sleep(forTimeInterval: 0.05)
        }
        let r = try h.run(["replay", "fixme.yaml"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("is in use by another lymph process"), "\(r.stderr)")
        #expect(r.stderr.contains("put the dead letters back in '\(FixableHarness.dead)'"), "\(r.stderr)")
        #expect(LymphBinary.lines(h.dir + "/" + FixableHarness.dead).count == 2)
        #expect(h.kept.isEmpty)
    }
}

@Suite("lymph dead-letters, end to end")
struct DeadLettersCommandTests {
    /// A folder where the quickstart pipeline has run over the example events (9 dead letters in parse).
    static func quickstart() throws -> (dir: String, pipeline: String) {
        let dir = LymphBinary.workDirectory()
        let pipeline = LymphBinary.repo("pipelines/quickstart.yaml")
        let r = try LymphBinary.run(["run", pipeline, LymphBinary.repo("examples/events.ndjson"), "--summary", "none", "--output", "none"], in: dir)
        #expect(r.status == 1)
        return (dir, pipeline)
    }

    @Test("json: the quickstart's 9 dead letters, all in parse, grouped by reason with counts, times and examples")
    func summaryJSON() throws {
        let (dir, pipeline) = try Self.quickstart()
        let r = try LymphBinary.run(["dead-letters", pipeline, "--format", "json"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdoutLines.count == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(object["file"] as? String == ".lymph/quickstart.dead.ndjson")
        #expect(object["records"] as? Int == 9 && object["from_start"] as? Int == 9 && object["resumes"] as? Int == 0)
        let groups = try #require(object["groups"] as? [[String: Any]])
        #expect(groups.allSatisfy { $0["stage"] as? String == "parse" })
        #expect(groups.reduce(0) { $0 + ($1["count"] as? Int ?? 0) } == 9)
        let counts = groups.map { $0["count"] as? Int ?? 0 }
        #expect(counts == counts.sorted(by: >))
        #expect(groups.allSatisfy { ($0["oldest"] as? String)?.hasPrefix("20") == true && !($0["example"] as? String ?? "").isEmpty })
        #expect((object["unreadable"] as? [String: Any])?["count"] as? Int == 0)
    }

    @Test("table: a row per group and a total line; the file named directly gives the same groups")
    func summaryTable() throws {
        let (dir, pipeline) = try Self.quickstart()
        let r = try LymphBinary.run(["dead-letters", pipeline, "--format", "table"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdoutLines
        #expect(lines.first?.hasPrefix("STAGE") == true && lines.first?.contains("RESUMES") == true, "\(r.stdout)")
        #expect(lines.contains("9 dead letters in '.lymph/quickstart.dead.ndjson' (9 replay from the start, 0 resume at their stage)"), "\(r.stdout)")
        let direct = try LymphBinary.run(["dead-letters", ".lymph/quickstart.dead.ndjson", "--format", "table"], in: dir)
        #expect(direct.status == 0)
        #expect(direct.stdoutLines.count == lines.count)
    }

    @Test("lines that are not records are counted as unreadable with their line numbers")
    func unreadable() throws {
        let (dir, _) = try Self.quickstart()
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/.lymph/quickstart.dead.ndjson"))
        handle.seekToEndOfFile()
        handle.write(Data("garbage\n{\"no\":\"error\"}\n".utf8))
        try handle.close()
        let r = try LymphBinary.run(["dead-letters", ".lymph/quickstart.dead.ndjson", "--format", "json"], in: dir)
        #expect(r.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let unreadable = object?["unreadable"] as? [String: Any]
        #expect(unreadable?["count"] as? Int == 2)
        #expect((unreadable?["lines"] as? [[String: Any]])?.compactMap { $0["line"] as? Int } == [10, 11])
        #expect(object?["records"] as? Int == 9)
        let table = try LymphBinary.run(["dead-letters", ".lymph/quickstart.dead.ndjson", "--format", "table"], in: dir)
        #expect(table.stdout.contains("2 unreadable lines (not dead-letter records): line 10: not JSON"), "\(table.stdout)")
    }

    @Test("show N prints record N with its line number, pretty-printed; json is one line; out of range is exit 1")
    func show() throws {
        let (dir, pipeline) = try Self.quickstart()
        let table = try LymphBinary.run(["dead-letters", "show", "2", pipeline, "--format", "table"], in: dir)
        #expect(table.status == 0, "\(table.stderr)")
        let lines = table.stdoutLines
        #expect(lines.first == "LINE     2 of '.lymph/quickstart.dead.ndjson'", "\(table.stdout)")
        #expect(lines.contains { $0.hasPrefix("STAGE") && $0.hasSuffix("parse") })
        #expect(lines.contains { $0.hasPrefix("REPLAY") && $0.hasSuffix("from the start") })
        #expect(lines.contains("{") && lines.contains("  \"error\": {"))

        let json = try LymphBinary.run(["dead-letters", "show", "2", ".lymph/quickstart.dead.ndjson", "--format", "json"], in: dir)
        #expect(json.status == 0)
        #expect(json.stdoutLines.count == 1)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(object?["line"] as? Int == 2)
        #expect(((object?["record"] as? [String: Any])?["error"] as? [String: Any])?["stage"] as? String == "parse")

        let beyond = try LymphBinary.run(["dead-letters", "show", "10", pipeline], in: dir)
        #expect(beyond.status == 1)
        #expect(beyond.stderr.contains("'.lymph/quickstart.dead.ndjson' has 9 lines: no record 10"), "\(beyond.stderr)")
    }

    @Test("signatures: never in the summary, cut to 8 characters in show")
    func signatures() throws {
        let dir = LymphBinary.workDirectory()
        let pipeline = LymphBinary.repo("pipelines/verified.yaml")
        let run = try LymphBinary.run(
            ["run", pipeline, LymphBinary.repo("examples/deliveries.ndjson"), "--summary", "none", "--output", "none"],
            in: dir, environment: ["IMMUNE_WEBHOOK_SECRET": "wrong_secret"])
        #expect(run.status == 1)
        let dead = try #require(try FileManager.default.contentsOfDirectory(atPath: dir + "/.lymph").first { $0.hasSuffix(".dead.ndjson") })
        let firstLine = try #require(LymphBinary.lines(dir + "/.lymph/" + dead).first { $0.contains("x-immune-signature") })
        let signature = try #require(firstLine.range(of: #"[0-9a-f]{64}"#, options: .regularExpression).map { String(firstLine[$0]) })
        let number = try #require(LymphBinary.lines(dir + "/.lymph/" + dead).firstIndex(of: firstLine)) + 1

        let summary = try LymphBinary.run(["dead-letters", pipeline, "--format", "json"], in: dir)
        #expect(summary.status == 0)
        #expect(!summary.stdout.contains(signature.prefix(12)))
        for format in ["table", "json"] {
            let shown = try LymphBinary.run(["dead-letters", "show", String(number), pipeline, "--format", format], in: dir)
            #expect(shown.status == 0, "\(shown.stderr)")
            #expect(!shown.stdout.contains(signature))
            #expect(shown.stdout.contains(signature.prefix(8) + "…"), "\(shown.stdout)")
        }
    }

    @Test("a pipeline with no dead-letter file yet: no dead letters, exit 0; a missing file named directly: exit 2")
    func missing() throws {
        let dir = LymphBinary.workDirectory()
        let r = try LymphBinary.run(["dead-letters", LymphBinary.repo("pipelines/quickstart.yaml"), "--format", "table"], in: dir)
        #expect(r.status == 0)
        #expect(r.stdout.contains("no dead letters: '.lymph/quickstart.dead.ndjson' does not exist"))
        let file = try LymphBinary.run(["dead-letters", "nothing.ndjson"], in: dir)
        #expect(file.status == 2)
        #expect(file.stderr.contains("cannot read 'nothing.ndjson'"))
    }
}

@Suite("lymph spool, end to end", .serialized)
struct SpoolCommandTests {
    @Test("a pipeline that has never served: no spool, depth 0, exit 0, nothing created")
    func neverServed() throws {
        let dir = LymphBinary.workDirectory()
        let pipeline = LymphBinary.repo("pipelines/serve.yaml")
        let table = try LymphBinary.run(["spool", pipeline, "--format", "table"], in: dir)
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdout.contains("no spool: \(pipeline) has never served"), "\(table.stdout)")
        let json = try LymphBinary.run(["spool", pipeline, "--format", "json"], in: dir)
        #expect(json.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(object?["exists"] as? Bool == false && object?["entries"] as? Int == 0)
        #expect(object?["spool"] as? String == ".lymph/serve.spool.sqlite")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    @Test("a spool that is a FIFO is refused at once, not waited on for a writer")
    func fifoSpool() throws {
        let dir = LymphBinary.workDirectory()
        #expect(mkfifo(dir + "/ff", 0o600) == 0)
        let started = Date()
        let r = try LymphBinary.run(["spool", "--spool", "ff"], in: dir, timeout: 20)
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(r.status == 3, "\(r.stderr)")
        #expect(r.stderr.contains("is not a regular file"), "\(r.stderr)")
    }

    @Test("state: memory has no spool (exit 2); no spool named at all is a usage error (exit 2)")
    func noSpool() throws {
        let dir = LymphBinary.workDirectory()
        try "pipeline: m\nstate: memory\nstages: [parse]\n".write(toFile: dir + "/m.yaml", atomically: true, encoding: .utf8)
        let memory = try LymphBinary.run(["spool", "m.yaml"], in: dir)
        #expect(memory.status == 2)
        #expect(memory.stderr.contains("m.yaml keeps its state in memory: it has no spool"), "\(memory.stderr)")
        let none = try LymphBinary.run(["spool"], in: dir)
        #expect(none.status == 2)
        #expect(none.stderr.contains("Usage: lymph spool"), "\(none.stderr)")
    }

    @Test("while lymph serve runs and events wait in the spool, lymph spool reads it without blocking the server")
    func whileServing() throws {
        let h = ServeHarness(pipeline: ServeCommandTests.pipeline(extra: ServeCommandTests.slowStage))
        ServeCommandTests.writeSlowPlugin(h, seconds: "0.3")
        try h.start()
        for i in 1...6 { #expect(try h.post(ServeHarness.event("sp\(i)")).status == 202) }
        let r = try LymphBinary.run(["spool", "serve.yaml", "--format", "json"], in: h.dir)
        #expect(r.status == 0, "\(r.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(object?["exists"] as? Bool == true)
        #expect((object?["entries"] as? Int ?? 0) >= 1, "\(r.stdout)")
        #expect((object?["pending"] as? Int ?? 0) + (object?["done"] as? Int ?? 0) == object?["entries"] as? Int)
        #expect((object?["oldest_received_at"] as? String)?.hasPrefix("20") == true)
        let table = try LymphBinary.run(["spool", "--state", ".lymph/serve.sqlite", "--format", "table"], in: h.dir)
        #expect(table.status == 0)
        #expect(table.stdout.contains("ENTRIES"), "\(table.stdout)")
        // The server still answers and accepts.
        #expect(try h.post(ServeHarness.event("sp7")).status == 202)
        #expect(h.stop() == 0)
    }
}
