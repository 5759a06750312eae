import Foundation
import Testing

/// Drives the built binary over the example pipelines and data, as the README does.
@Suite("lymph run, end to end")
struct RunCommandTests {
    static let secret = ["IMMUNE_WEBHOOK_SECRET": "whsec_lymph_example_only"]

    @Test("quickstart on the example events gives the documented counts; a second run sees only duplicates")
    func quickstart() throws {
        let dir = LymphBinary.workDirectory()
        let args = ["run", LymphBinary.repo("pipelines/quickstart.yaml"), LymphBinary.repo("examples/events.ndjson"), "--summary", "json"]
        let first = try LymphBinary.run(args, in: dir)
        #expect(first.status == 1, "dead letters present: \(first.stderr)")
        #expect(first.count("events_read") == 300)
        #expect(first.count("passed") == 72)
        #expect(first.count("duplicates") == 19)
        #expect(first.count("filtered") == 200)
        #expect(first.count("dead_letters") == 9)
        #expect(first.stdoutLines.count == 72)
        #expect(first.stdoutLines.allSatisfy { $0.contains("\"type\":\"prediction.created\"") || $0.contains("\"type\":\"alert.triggered\"") })
        #expect(LymphBinary.lines(dir + "/logs/quickstart.log").count == 72)
        let dead = LymphBinary.lines(dir + "/.lymph/quickstart.dead.ndjson")
        #expect(dead.count == 9)
        // Every dead letter names the file and line it came from.
        for line in dead {
            let record = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let source = record["source"] as! [String: Any]
            #expect((source["file"] as? String)?.hasSuffix("examples/events.ndjson") == true)
            let n = source["line"] as! Int
            let original = LymphBinary.lines(LymphBinary.repo("examples/events.ndjson"))[n - 1]
            #expect(record["raw"] as? String == original)
            #expect(((record["error"] as! [String: Any])["message"] as! String).isEmpty == false)
        }
        let second = try LymphBinary.run(args, in: dir)
        #expect(second.count("passed") == 0)
        #expect(second.count("duplicates") == 291)
        #expect(second.stdout.isEmpty)
    }

    @Test("verified pipeline on the signed example deliveries")
    func verified() throws {
        let dir = LymphBinary.workDirectory()
        let r = try LymphBinary.run(
            ["run", LymphBinary.repo("pipelines/verified.yaml"), LymphBinary.repo("examples/deliveries.ndjson"), "--summary", "json"],
            in: dir, environment: Self.secret)
        #expect(r.status == 1)
        #expect(r.count("events_read") == 200)
        #expect(r.count("passed") == 114)
        #expect(r.count("duplicates") == 8)
        #expect(r.count("filtered") == 67)
        #expect(r.count("dead_letters") == 11)
        // An unmodified event is written out as the exact body bytes that were signed.
        let deliveries = LymphBinary.lines(LymphBinary.repo("examples/deliveries.ndjson")).compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["body"] as? String
        }
        #expect(r.stdoutLines.allSatisfy { deliveries.contains($0) })
        #expect(!r.stderr.contains("whsec_lymph_example_only"))
        #expect(!(try String(contentsOfFile: dir + "/.lymph/verified.dead.ndjson", encoding: .utf8)).contains("whsec_lymph_example_only"))
    }

    @Test("wrong secret: every delivery is a dead letter; replaying them with the right secret processes them")
    func replayAfterFix() throws {
        let dir = LymphBinary.workDirectory()
        let pipeline = LymphBinary.repo("pipelines/verified.yaml")
        let wrong = try LymphBinary.run(
            ["run", pipeline, LymphBinary.repo("examples/deliveries.ndjson"), "--summary", "json"],
            in: dir, environment: ["IMMUNE_WEBHOOK_SECRET": "not-the-secret"])
        #expect(wrong.count("passed") == 0)
        #expect(wrong.count("dead_letters") == 200)  // verify runs before dedup, so duplicates are rejected too
        try FileManager.default.moveItem(atPath: dir + "/.lymph/verified.dead.ndjson", toPath: dir + "/replay.ndjson")
        let replay = try LymphBinary.run(["run", pipeline, "replay.ndjson", "--summary", "json"], in: dir, environment: Self.secret)
        #expect(replay.count("passed") == 114)
        #expect(replay.count("dead_letters") == 11)
    }

    @Test("a missing secret stops the run before any event is read, naming the source and not the value")
    func missingSecret() throws {
        let dir = LymphBinary.workDirectory()
        let r = try LymphBinary.run(["run", LymphBinary.repo("pipelines/verified.yaml"), LymphBinary.repo("examples/deliveries.ndjson")], in: dir)
        #expect(r.status == 2)
        #expect(r.stderr.contains("env:IMMUNE_WEBHOOK_SECRET"))
        #expect(r.stdout.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: dir + "/.lymph/verified.sqlite"))
    }

    @Test("every malformed line of lymph sample lands in the dead letters with its line number; the rest are unaffected")
    func malformedSample() throws {
        let dir = LymphBinary.workDirectory()
        let sample = try LymphBinary.run(["sample", "--count", "3000", "--seed", "5", "--malformed", "0.05"], in: dir)
        #expect(sample.status == 0)
        try sample.stdout.write(toFile: dir + "/events.ndjson", atomically: true, encoding: .utf8)
        // Independent judge: Python's json module (strict about commas and control characters,
        // unlike Foundation's) and the envelope rules; it prints the numbers of the bad lines.
        let judge = Process()
        judge.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        judge.arguments = ["python3", "-c", Self.judgeScript, dir + "/events.ndjson"]
        let judged = Pipe()
        judge.standardOutput = judged
        try judge.run()
        let verdict = String(decoding: judged.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        judge.waitUntilExit()
        let bad = Set(verdict.split(separator: "\n").compactMap { Int($0) })
        #expect(bad.count >= 100)
        try "state: memory\noutput: out.ndjson\ndead_letter: dead.ndjson\nstages: [parse]\n".write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        let r = try LymphBinary.run(["run", "p.yaml", "events.ndjson", "--summary", "json"], in: dir)
        #expect(r.status == 1)
        let deadLines = Set(
            LymphBinary.lines(dir + "/dead.ndjson").map { line -> Int in
                let o = try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                return (o["source"] as! [String: Any])["line"] as! Int
            })
        #expect(deadLines == bad)
        #expect(r.count("passed") == 3000 - bad.count)
        #expect(LymphBinary.lines(dir + "/out.ndjson").count == 3000 - bad.count)
    }

    static let judgeScript = #"""
        import json, re, sys, datetime
        RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
        def ok(raw):
            try:
                o = json.loads(raw.decode("utf-8"))
            except Exception:
                return False
            if not isinstance(o, dict): return False
            if not isinstance(o.get("id"), str) or not o["id"]: return False
            if not isinstance(o.get("type"), str) or not o["type"]: return False
            c = o.get("created_at")
            if not isinstance(c, str) or not RFC3339.match(c): return False
            try:
                datetime.datetime.fromisoformat(c.replace("Z", "+00:00").replace("z", "+00:00").upper())
            except ValueError:
                return False
            return isinstance(o.get("data"), dict)
        for n, line in enumerate(open(sys.argv[1], "rb").read().split(b"\n"), 1):
            if line.strip() and not ok(line):
                print(n)
        """#

    @Test("stdin input, '-' and a JSON array file; stdout carries only events")
    func inputs() throws {
        let dir = LymphBinary.workDirectory()
        try "state: memory\ndead_letter: dead.ndjson\nstages: [parse]\n".write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        let e1 = #"{"id":"a","type":"t","created_at":"2026-06-01T00:00:00Z","data":{}}"#
        let e2 = #"{"id":"b","type":"t","created_at":"2026-06-01T00:00:00Z","data":{}}"#
        let viaStdin = try LymphBinary.run(["run", "p.yaml"], in: dir, stdin: Data("\(e1)\n\(e2)\n".utf8))
        #expect(viaStdin.status == 0)
        #expect(viaStdin.stdoutLines == [e1, e2])
        let dash = try LymphBinary.run(["run", "p.yaml", "-"], in: dir, stdin: Data("\(e2)\n".utf8))
        #expect(dash.stdoutLines == [e2])
        try "[\n  \(e1),\n  \(e2)\n]\n".write(toFile: dir + "/array.json", atomically: true, encoding: .utf8)
        let array = try LymphBinary.run(["run", "p.yaml", "array.json"], in: dir)
        #expect(array.stdoutLines == [e1, e2])
        try "{\n  \"id\": \"p\",\n  \"type\": \"t\",\n  \"created_at\": \"2026-06-01T00:00:00Z\",\n  \"data\": {}\n}\n".write(
            toFile: dir + "/pretty.json", atomically: true, encoding: .utf8)
        let pretty = try LymphBinary.run(["run", "p.yaml", "pretty.json"], in: dir)
        #expect(pretty.stdoutLines == [#"{  "id": "p",  "type": "t",  "created_at": "2026-06-01T00:00:00Z",  "data": {}}"#])
    }

    @Test("exit 3 when the output cannot be opened; exit 2 for an output that is a folder (found with the file) and for a missing input")
    func failures() throws {
        let dir = LymphBinary.workDirectory()
        // A file where the output's folder would be.
        _ = FileManager.default.createFile(atPath: dir + "/out", contents: Data("x".utf8))
        try "state: memory\noutput: out/events.ndjson\nstages: [parse]\n".write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        let r = try LymphBinary.run(["run", "p.yaml", LymphBinary.repo("examples/events.ndjson")], in: dir)
        #expect(r.status == 3, "\(r.stderr)")
        #expect(r.stderr.contains("output 'out/events.ndjson'"), "\(r.stderr)")
        try FileManager.default.createDirectory(atPath: dir + "/folder", withIntermediateDirectories: true)
        try "state: memory\noutput: folder\nstages: [parse]\n".write(toFile: dir + "/f.yaml", atomically: true, encoding: .utf8)
        let folder = try LymphBinary.run(["run", "f.yaml", LymphBinary.repo("examples/events.ndjson")], in: dir)
        #expect(folder.status == 2, "\(folder.stderr)")
        #expect(folder.stderr.contains("f.yaml:2:9: output is a folder ('folder')"), "\(folder.stderr)")
        try "state: memory\noutput: none\nstages: [parse]\n".write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        let missing = try LymphBinary.run(["run", "p.yaml", "nope.ndjson"], in: dir)
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("cannot read input 'nope.ndjson'"))
    }

    @Test("a quiet stdin: an event comes out without waiting for more input")
    func quietStdin() throws {
        let dir = LymphBinary.workDirectory()
        try "state: memory\noutput: out.ndjson\nstages: [parse]\n".write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        let input = Pipe()
        let process = try LymphBinary.launch(["run", "p.yaml", "--summary", "none"], in: dir, stdin: input)
        for id in ["a", "b"] {
            input.fileHandleForWriting.write(Data((#"{"id":"\#(id)","type":"t","created_at":"2026-06-01T00:00:00Z","data":{}}"# + "\n").utf8))
        }
        let deadline = Date().addingTimeInterval(20)
        while LymphBinary.lines(dir + "/out.ndjson").count < 2 && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(LymphBinary.lines(dir + "/out.ndjson").count == 2)
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    @Test("SIGTERM, SIGINT and SIGHUP stop reading, flush, print the summary and exit 128 + the signal", arguments: [SIGTERM, SIGINT, SIGHUP])
    func sigterm(_ sig: Int32) throws {
        let dir = LymphBinary.workDirectory()
        try "state: memory\noutput: out.ndjson\nstages: [parse]\n".write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        let input = Pipe(), err = Pipe()
        let process = try LymphBinary.launch(["run", "p.yaml", "--summary", "json"], in: dir, stdin: input, stderr: err)
        input.fileHandleForWriting.write(Data((#"{"id":"a","type":"t","created_at":"2026-06-01T00:00:00Z","data":{}}"# + "\n").utf8))
        // Wait for the event to come out, then stop the run while stdin is still open.
        let deadline = Date().addingTimeInterval(30)
        while LymphBinary.lines(dir + "/out.ndjson").isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        kill(process.processIdentifier, sig)
        process.waitUntilExit()
        #expect(process.terminationStatus == 128 + sig)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(stderr.contains("\"interrupted\":true"))
        #expect(LymphBinary.lines(dir + "/out.ndjson").count == 1)
    }
}

@Suite("what a run appends never lands in its store or its pipeline file, end to end")
struct AppendedFileGuardTests {
    static func setUp(_ yaml: String) throws -> String {
        let dir = LymphBinary.workDirectory()
        try yaml.write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        let events = (1...3).map { #"{"id":"e\#($0)","type":"alert.triggered","created_at":"2026-06-01T00:00:00Z","data":{}}"# }
        try (events.joined(separator: "\n") + "\n").write(toFile: dir + "/events.ndjson", atomically: true, encoding: .utf8)
        return dir
    }

    @Test("an output, dead-letter file or log that is the store's file (or its WAL) is refused by check and run, exit 2, with its position")
    func storeInTheFile() throws {
        for (yaml, position, what) in [
            ("state: s.sqlite\noutput: s.sqlite\nstages:\n  - parse\n  - dedup\n", "p.yaml:2:9", "output is the state store's file"),
            ("state: s.sqlite\ndead_letter: ./s.sqlite\nstages:\n  - parse\n", "p.yaml:2:14", "dead_letter is the state store's file"),
            (
                "state: s.sqlite\nstages:\n  - parse\n  - log: {path: s.sqlite-wal}\n", "p.yaml:4:5",
                "stage 'log-2' logs to a file that is the state store's file"
            ),
            ("state: memory\noutput: p.yaml\nstages:\n  - parse\n", "p.yaml:2:9", "output is this pipeline file"),
        ] {
            let dir = try Self.setUp(yaml)
            for arguments in [["check", "p.yaml"], ["run", "p.yaml", "events.ndjson"]] {
                let r = try LymphBinary.run(arguments, in: dir)
                #expect(r.status == 2, "\(arguments) \(yaml): \(r.stderr)")
                #expect(r.stderr.contains("\(position): \(what)"), "\(r.stderr)")
            }
        }
    }

    @Test("the same through the command line: --dead-letter the store, --output the pipeline file, --output a symlink to a store not made yet")
    func storeOnTheCommandLine() throws {
        let dir = try Self.setUp("state: s.sqlite\noutput: out.ndjson\nstages:\n  - parse\n  - dedup\n")
        try FileManager.default.createSymbolicLink(atPath: dir + "/alias.db", withDestinationPath: "s.sqlite")
        for (flags, expected) in [
            (["--dead-letter", "s.sqlite"], "the dead-letter file ('s.sqlite') is the state store's file"),
            (["--output", "p.yaml"], "the output ('p.yaml') is the pipeline file"),
            (["--output", "alias.db"], "the output ('alias.db') is the state store's file"),
            (["--state", "other.sqlite", "--output", "other.sqlite-shm"], "is the state store's file ('other.sqlite')"),
        ] {
            let r = try LymphBinary.run(["run", "p.yaml", "events.ndjson"] + flags, in: dir)
            #expect(r.status == 2, "\(flags): \(r.stderr)")
            #expect(r.stderr.contains(expected), "\(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/s.sqlite"))
        #expect(try String(contentsOfFile: dir + "/p.yaml", encoding: .utf8).hasPrefix("state: s.sqlite\noutput: out.ndjson"))
    }

    @Test("on the command line, --dead-letter none, an empty path and a keyword in other letters are refused, exit 2, and make no file")
    func keywordsOnTheCommandLine() throws {
        let dir = try Self.setUp("output: out.ndjson\nstages:\n  - parse\n")
        for (flags, expected) in [
            (["--dead-letter", "none"], "--dead-letter: dead letters cannot go nowhere"),
            (["--output", ""], "--output: an empty path names no file"),
            (["--output", "NONE"], "--output: output 'NONE' is not the keyword 'none' (keywords are lower case): write 'none', or './NONE'"),
            (["--dead-letter", "Stderr"], "--dead-letter: dead-letter 'Stderr' is not the keyword 'stderr'"),
            (["--state", "MEMORY"], "--state: state 'MEMORY' is not the keyword 'memory'"),
            (["--output", "-", "--dead-letter", "stdout"], "the output and the dead letters would both go to '-'"),
        ] {
            let r = try LymphBinary.run(["run", "p.yaml", "events.ndjson"] + flags, in: dir)
            #expect(r.status == 2, "\(flags): \(r.stderr)")
            #expect(r.stderr.contains(expected), "\(flags): \(r.stderr)")
        }
        let made = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(made == ["events.ndjson", "p.yaml"], "\(made)")
    }

    @Test("another program's SQLite file named as the store is refused by run and tickets close, and left exactly as it was")
    func foreignDatabase() throws {
        let dir = try Self.setUp("state: other.sqlite\noutput: none\nstages:\n  - parse\n  - dedup\n")
        let make = Process()
        make.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        make.arguments = ["python3", "-c", "import sqlite3; c = sqlite3.connect('other.sqlite'); c.execute('CREATE TABLE tickets (id TEXT)'); c.commit()"]
        make.currentDirectoryURL = URL(fileURLWithPath: dir)
        try make.run()
        make.waitUntilExit()
        #expect(make.terminationStatus == 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: dir + "/other.sqlite"))
        let run = try LymphBinary.run(["run", "p.yaml", "events.ndjson"], in: dir)
        #expect(run.status == 3, "\(run.stderr)")
        #expect(run.stderr.contains("it is not a Lymph store: it holds another program's tables (tickets) and none of Lymph's"), "\(run.stderr)")
        let close = try LymphBinary.run(["tickets", "close", "T-1", "--state", "other.sqlite"], in: dir)
        #expect(close.status != 0 && close.stderr.contains("is not a Lymph store"), "\(close.status) \(close.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/other.sqlite")) == before)
        #expect(!FileManager.default.fileExists(atPath: dir + "/other.sqlite-wal"))
    }

    @Test("paths of one character work, and a folder as the store is refused by name, where Foundation used to crash the process (exit 132)")
    func shortPaths() throws {
        let dir = try Self.setUp("state: x\noutput: o\ndead_letter: d\nstages:\n  - parse\n  - dedup\n")
        let r = try LymphBinary.run(["run", "p.yaml", "events.ndjson", "--summary", "none"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(LymphBinary.lines(dir + "/o").count == 3)
        let folder = try Self.setUp("state: .\nstages:\n  - parse\n  - dedup\n")
        let f = try LymphBinary.run(["run", "p.yaml", "events.ndjson"], in: folder)
        #expect(f.status == 2, "\(f.stderr)")
        #expect(f.stderr.contains("state '.' is a folder"), "\(f.stderr)")
    }
}

@Suite("a named pipe as input, end to end")
struct FIFOInputTests {
    @Test("a FIFO is opened once and read to its end: its writer is not cut off by the checks before the run, and nothing hangs")
    func fifoInput() throws {
        let dir = try AppendedFileGuardTests.setUp("state: s.sqlite\noutput: out.ndjson\nstages:\n  - parse\n  - dedup\n")
        #expect(mkfifo(dir + "/f", 0o600) == 0)
        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: "/bin/sh")
        // Bounded, so that a run that never reads it cannot hold the test.
        writer.arguments = ["-c", "timeout 20 sh -c 'cat events.ndjson > f'"]
        writer.currentDirectoryURL = URL(fileURLWithPath: dir)
        try writer.run()
        let r = try LymphBinary.run(["run", "p.yaml", "f", "--summary", "none"], in: dir, timeout: 20)
        writer.waitUntilExit()
        #expect(r.status == 0, "\(r.stderr)")
        #expect(writer.terminationStatus == 0, "the writer was cut off (SIGPIPE), or never read")
        #expect(LymphBinary.lines(dir + "/out.ndjson").count == 3)
    }

    @Test("SIGTERM while a FIFO has no writer yet stops the run at once (exit 143), without a second signal")
    func stopBeforeTheWriter() throws {
        let dir = try AppendedFileGuardTests.setUp("state: memory\noutput: out.ndjson\nstages:\n  - parse\n")
        #expect(mkfifo(dir + "/f", 0o600) == 0)
        let err = Pipe()
        let process = try LymphBinary.launch(["run", "p.yaml", "f", "--summary", "none"], in: dir, stdin: Pipe(), stderr: err)
        Thread.sleep(forTimeInterval: 1)
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        let stopped = !process.isRunning
        if !stopped { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        #expect(stopped, "still waiting for the FIFO's writer 5 s after SIGTERM")
        #expect(process.terminationStatus == 143)
    }
}
