import Foundation
import Testing

/// A run never reads what it writes: replaying the dead-letter file with the default paths ends,
/// and reads each record once.
@Suite("replay never reads its own output, end to end")
struct ReplayGuardTests {
    static let pipeline = """
        pipeline: replay
        state: memory
        output: out.ndjson
        dead_letter: .lymph/replay.dead.ndjson
        stages:
          - parse
          - verify: { secrets: [env:IMMUNE_WEBHOOK_SECRET] }
          - log: { path: seen.log }
        """

    static func setUp(events: Int) throws -> String {
        let dir = LymphBinary.workDirectory()
        try pipeline.write(toFile: dir + "/replay.yaml", atomically: true, encoding: .utf8)
        // Unsigned events: each fails verify again on every replay.
        let padding = String(repeating: "x", count: 200)
        let lines = (1...events).map { #"{"id":"e\#($0)","type":"alert.triggered","created_at":"2026-06-01T00:00:00Z","data":{"pad":"\#(padding)"}}"# }
        try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/events.ndjson", atomically: true, encoding: .utf8)
        let first = try LymphBinary.run(["run", "replay.yaml", "events.ndjson", "--summary", "none"], in: dir, environment: ["IMMUNE_WEBHOOK_SECRET": "s3"])
        #expect(first.status == 1)
        #expect(LymphBinary.lines(dir + "/.lymph/replay.dead.ndjson").count == events)
        return dir
    }

    @Test("replaying a dead-letter file over 1 MiB with the default paths ends, with each record failing once")
    func largeReplayEnds() throws {
        let dir = try Self.setUp(events: 5_000)
        let size = (try FileManager.default.attributesOfItem(atPath: dir + "/.lymph/replay.dead.ndjson")[.size] as? Int) ?? 0
        #expect(size > 1 << 20)
        let r = try LymphBinary.run(
            ["run", "replay.yaml", ".lymph/replay.dead.ndjson", "--summary", "json"], in: dir,
            environment: ["IMMUNE_WEBHOOK_SECRET": "s3"], timeout: 60)
        #expect(r.status == 1)
        #expect(r.summary["events_read"] as? Int == 5_000)
        #expect(r.stderr.contains("replaying '.lymph/replay.dead.ndjson' from '.lymph/replay.dead.ndjson.replay-"), "\(r.stderr)")
        #expect(LymphBinary.lines(dir + "/.lymph/replay.dead.ndjson").count == 5_000)
        let moved = try FileManager.default.contentsOfDirectory(atPath: dir + "/.lymph").filter { $0.hasPrefix("replay.dead.ndjson.replay-") }
        #expect(moved.count == 1)
    }

    @Test("replaying twice never doubles the records")
    func noDoubling() throws {
        let dir = try Self.setUp(events: 9)
        for _ in 0..<2 {
            let r = try LymphBinary.run(
                ["run", "replay.yaml", ".lymph/replay.dead.ndjson", "--summary", "none"], in: dir,
                environment: ["IMMUNE_WEBHOOK_SECRET": "s3"])
            #expect(r.status == 1)
            #expect(LymphBinary.lines(dir + "/.lymph/replay.dead.ndjson").count == 9)
        }
    }

    @Test("an input that is the pipeline's output or a log file is refused, exit 2, before anything is written")
    func refusesOwnOutput() throws {
        let dir = try Self.setUp(events: 3)
        try "x\n".write(toFile: dir + "/out.ndjson", atomically: true, encoding: .utf8)
        try "y\n".write(toFile: dir + "/seen.log", atomically: true, encoding: .utf8)
        for (input, role) in [("out.ndjson", "output"), ("./seen.log", "log file (stage 'log-3')")] {
            let r = try LymphBinary.run(["run", "replay.yaml", input], in: dir, environment: ["IMMUNE_WEBHOOK_SECRET": "s3"])
            #expect(r.status == 2)
            #expect(r.stderr.contains("input '\(input)' is this pipeline's \(role)"), "\(r.stderr)")
        }
        #expect(LymphBinary.lines(dir + "/out.ndjson") == ["x"])
        let same = try LymphBinary.run(
            ["run", "replay.yaml", "events.ndjson", "--output", "d.ndjson", "--dead-letter", "./d.ndjson"], in: dir,
            environment: ["IMMUNE_WEBHOOK_SECRET": "s3"])
        #expect(same.status == 2)
        #expect(same.stderr.contains("would both go to 'd.ndjson'"))
    }
}

@Suite("replay from stdin and linked sinks, end to end")
struct ReplayStdinTests {
    @Test("the dead-letter file redirected to stdin is moved aside and read once; the output on stdin is refused")
    func stdinReplay() throws {
        let dir = try ReplayGuardTests.setUp(events: 3_000)
        let dead = dir + "/.lymph/replay.dead.ndjson"
        let r = try LymphBinary.run(
            ["run", "replay.yaml", "--summary", "json"], in: dir, environment: ["IMMUNE_WEBHOOK_SECRET": "s3"],
            stdin: try Data(contentsOf: URL(fileURLWithPath: dead)), timeout: 60)
        // Data on a pipe is a copy, not the file: read once, its failures appended (6,000 now).
        #expect(r.summary["events_read"] as? Int == 3_000)
        #expect(LymphBinary.lines(dead).count == 6_000)
        // A shell redirect, so stdin is the file itself rather than a pipe holding a copy.
        let replay = try Self.shell(
            "IMMUNE_WEBHOOK_SECRET=s3 timeout 60 '\(LymphBinary.path)' run replay.yaml --summary json < .lymph/replay.dead.ndjson", in: dir)
        #expect(replay.status == 1)
        #expect(replay.stderr.contains("replaying stdin (the dead-letter file, now '.lymph/replay.dead.ndjson.replay-"), "\(replay.stderr)")
        #expect(replay.stderr.contains("\"events_read\":6000"), "\(replay.stderr)")
        #expect(LymphBinary.lines(dead).count == 6_000)

        try "x\n".write(toFile: dir + "/out.ndjson", atomically: true, encoding: .utf8)
        let output = try Self.shell("IMMUNE_WEBHOOK_SECRET=s3 timeout 60 '\(LymphBinary.path)' run replay.yaml < out.ndjson", in: dir)
        #expect(output.status == 2)
        #expect(output.stderr.contains("input 'stdin' is this pipeline's output"))
    }

    /// Runs `command` with /bin/sh in `dir`: its exit status and stderr.
    static func shell(_ command: String, in dir: String) throws -> (status: Int32, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command + " 2> shell-err.txt"]
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        try p.run()
        p.waitUntilExit()
        return (p.terminationStatus, (try? String(contentsOfFile: dir + "/shell-err.txt", encoding: .utf8)) ?? "")
    }

    @Test("an output that is the dead-letter file under another name (a symlink) is refused, exit 2")
    func linkedSinks() throws {
        let dir = try ReplayGuardTests.setUp(events: 2)
        try FileManager.default.createSymbolicLink(atPath: dir + "/dlsym", withDestinationPath: dir + "/.lymph/replay.dead.ndjson")
        let r = try LymphBinary.run(["run", "replay.yaml", "events.ndjson", "--output", "dlsym"], in: dir, environment: ["IMMUNE_WEBHOOK_SECRET": "s3"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("are the same file"), "\(r.stderr)")
    }

    @Test("the same for a symlink to a dead-letter file not made yet (relative, as written), which the first dead letter would make")
    func linkedSinkNotYetMade() throws {
        let dir = LymphBinary.workDirectory()
        try "state: memory\noutput: out.ndjson\ndead_letter: dead.ndjson\nstages:\n  - parse\n".write(
            toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        try "not json\n".write(toFile: dir + "/in.ndjson", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: "dead.ndjson")
        let r = try LymphBinary.run(["run", "p.yaml", "in.ndjson", "--output", "link"], in: dir)
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("are the same file"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/dead.ndjson"))
    }
}

@Suite("replay reads every record a run writes, end to end")
struct ReplayRecordSizeTests {
    @Test("a rejected line of control bytes within max_bytes, kept as raw six bytes for one, is replayed as itself, not as too_large")
    func escapedRawRecord() throws {
        let dir = LymphBinary.workDirectory()
        try "state: memory\noutput: out.ndjson\ndead_letter: dead.ndjson\nstages:\n  - parse: {max_bytes: 64KiB}\n".write(
            toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        try Data([UInt8](repeating: 0x01, count: 60_000) + [0x0A]).write(to: URL(fileURLWithPath: dir + "/in.ndjson"))
        let first = try LymphBinary.run(["run", "p.yaml", "in.ndjson", "--summary", "none"], in: dir)
        #expect(first.status == 1)
        let record = try #require(LymphBinary.lines(dir + "/dead.ndjson").first)
        #expect(record.utf8.count > 4 * 65_536 + 65_536)
        #expect(record.contains(#""reason":"invalid_json""#))
        let again = try LymphBinary.run(["replay", "p.yaml", "--summary", "none"], in: dir)
        #expect(again.status == 1)
        let replayed = try #require(LymphBinary.lines(dir + "/dead.ndjson").first)
        #expect(replayed.contains(#""reason":"invalid_json""#), "\(replayed.prefix(300))")
        #expect(replayed.components(separatedBy: #""raw":"#).last == record.components(separatedBy: #""raw":"#).last)
        #expect(!replayed.contains(#""truncated":true"#))
    }

    @Test(
        "a line over max_bytes is kept whole while lymph reads it whole, and replays once max_bytes is raised; a far longer one keeps 4 KiB; both say how to fix it"
    )
    func overLongLines() throws {
        let dir = LymphBinary.workDirectory()
        let pipeline = "state: memory\noutput: out.ndjson\ndead_letter: dead.ndjson\nstages:\n  - parse: {max_bytes: MAX}\n"
        try pipeline.replacingOccurrences(of: "MAX", with: "1000").write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        func event(_ id: String, padding: Int) -> String {
            #"{"id":"\#(id)","type":"alert.triggered","created_at":"2026-06-01T00:00:00Z","data":{"p":"\#(String(repeating: "a", count: padding))"}}"#
        }
        // 6 × 1000 + 64 KiB is the most read as one item.
        try (event("evt_some", padding: 5_000) + "\n" + event("evt_far", padding: 80_000) + "\n").write(
            toFile: dir + "/in.ndjson", atomically: true, encoding: .utf8)
        let first = try LymphBinary.run(["run", "p.yaml", "in.ndjson", "--summary", "none"], in: dir)
        #expect(first.status == 1)
        let records = LymphBinary.lines(dir + "/dead.ndjson")
        try #require(records.count == 2)
        let hint = "item is larger than max_bytes (1000 bytes); raise parse.max_bytes if such events are expected"
        #expect(records[0].contains(hint) && records[1].contains(hint), "\(records.map { $0.prefix(300) })")
        #expect(records[0].contains(#""reason":"too_large""#) && !records[0].contains(#""truncated":true"#))
        #expect(records[0].contains(event("evt_some", padding: 5_000).replacingOccurrences(of: "\"", with: "\\\"")))
        #expect(records[1].contains(#""truncated":true"#) && records[1].utf8.count < 4_096 * 2 + 1_024)

        try pipeline.replacingOccurrences(of: "MAX", with: "200KiB").write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        let again = try LymphBinary.run(["replay", "p.yaml", "--summary", "none"], in: dir)
        #expect(again.status == 1)
        #expect(LymphBinary.lines(dir + "/out.ndjson") == [event("evt_some", padding: 5_000)])
        let left = LymphBinary.lines(dir + "/dead.ndjson")
        #expect(left.count == 1 && left[0].contains("it cannot be replayed"), "\(left.map { $0.prefix(300) })")
    }
}

@Suite("replay and a run writing the same dead letters, end to end", .serialized)
struct ReplayWhileWrittenTests {
    @Test("a replay does not move aside a dead-letter file another process is appending to (another store): it is refused, exit 2, and nothing is lost")
    func refusedWhileWritten() throws {
        let dir = LymphBinary.workDirectory()
        try "pipeline: w\nstate: memory\noutput: out.ndjson\ndead_letter: dead.ndjson\nstages:\n  - parse\n".write(
            toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        let stdin = Pipe()
        let writer = try LymphBinary.launch(["run", "p.yaml", "-", "--summary", "none"], in: dir, stdin: stdin)
        stdin.fileHandleForWriting.write(Data("not json 1\nnot json 2\n".utf8))
        let deadline = Date().addingTimeInterval(20)
        while LymphBinary.lines(dir + "/dead.ndjson").count < 2 && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(LymphBinary.lines(dir + "/dead.ndjson").count == 2)
        let replay = try LymphBinary.run(["replay", "p.yaml", "--summary", "none"], in: dir)
        #expect(replay.status == 2, "\(replay.stderr)")
        #expect(replay.stderr.contains("is being written by another lymph process"), "\(replay.stderr)")
        // The run goes on writing to the same file, and every record is there.
        stdin.fileHandleForWriting.write(Data("not json 3\n".utf8))
        try stdin.fileHandleForWriting.close()
        writer.waitUntilExit()
        #expect(LymphBinary.lines(dir + "/dead.ndjson").count == 3)
        let after = try LymphBinary.run(["replay", "p.yaml", "--summary", "none"], in: dir)
        #expect(after.status == 1, "\(after.stderr)")
        #expect(LymphBinary.lines(dir + "/dead.ndjson").count == 3)
    }
}
