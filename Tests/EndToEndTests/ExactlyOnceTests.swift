import Foundation
import Lymph
import TestSupport
import Testing

/// `kill -9` at random points, then a restart: the output file, the log file and the dead
/// letters hold every event exactly once, as if the process had never been killed.
@Suite("exactly-once file outputs across kill -9", .serialized)
struct ExactlyOnceTests {
    /// dedup, a filter, a log file and an output file.
    static let runPipeline = """
        pipeline: once
        state: .lymph/once.sqlite
        output: out.ndjson
        dead_letter: dead.ndjson
        stages:
          - parse
          - dedup: { key: id, window: 7d }
          - filter:
              types: [prediction.created, "alert.*", sensor.status_changed]
          - log: { path: logs/processed.log, format: text, template: "{id} {type} {data.equipment_id}" }
        """

    /// Events in the piped `lymph run` test (`cat events | lymph run`): a pipe cannot be read
    /// twice, so each restart reads everything again and dedup drops what was done.
    /// LYMPH_EXACTLY_ONCE_COUNT changes it.
    static let runCount = ProcessInfo.processInfo.environment["LYMPH_EXACTLY_ONCE_COUNT"].flatMap(Int.init) ?? 200_000

    /// `cat input | lymph run once.yaml` in `dir`; stderr is collected as it comes.
    final class PipedRun {
        let lymph = Process()
        let cat = Process()
        let stderr = Locked(Data())
        let err = Pipe()

        init(input: String, in dir: String) throws {
            let pipe = Pipe()
            cat.executableURL = URL(fileURLWithPath: "/bin/cat")
            cat.arguments = [input]
            cat.standardOutput = pipe
            cat.standardError = FileHandle.nullDevice
            lymph.executableURL = URL(fileURLWithPath: LymphBinary.path)
            lymph.arguments = ["run", "once.yaml", "--summary", "json", "--no-progress"]
            lymph.currentDirectoryURL = URL(fileURLWithPath: dir)
            lymph.standardInput = pipe
            lymph.standardOutput = FileHandle.nullDevice
            lymph.standardError = err
            let stderr = self.stderr
            err.fileHandleForReading.readabilityHandler = { h in
                let d = h.availableData
                if !d.isEmpty { stderr.update { $0.append(d) } }
            }
            try lymph.run()
            try cat.run()
            // Only the two children hold the pipe now: lymph sees its end when cat is done.
            try pipe.fileHandleForReading.close()
            try pipe.fileHandleForWriting.close()
        }

        /// Waits for both; lymph's exit status and its stderr.
        func wait() -> (status: Int32, stderr: String) {
            lymph.waitUntilExit()
            cat.waitUntilExit()
            err.fileHandleForReading.readabilityHandler = nil
            let rest = (try? err.fileHandleForReading.readToEnd()) ?? nil
            return (lymph.terminationStatus, String(decoding: stderr.get() + (rest ?? Data()), as: UTF8.self))
        }
    }

    /// Runs `lymph` with stdout to `stdoutPath` (or nowhere) and stderr to a string.
    static func launch(_ arguments: [String], in dir: String, stdoutPath: String? = nil, environment: [String: String] = [:]) throws -> (Process, Pipe) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: LymphBinary.path)
        p.arguments = arguments
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        if let stdoutPath {
            _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
            p.standardOutput = FileHandle(forWritingAtPath: stdoutPath)
        } else {
            p.standardOutput = FileHandle.nullDevice
        }
        let err = Pipe()
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return (p, err)
    }

    static func size(_ path: String) -> Int {
        (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    }

    static func bytes(_ path: String) -> Data { FileManager.default.contents(atPath: path) ?? Data() }

    /// Lines that occur more than once, and how many extra times.
    static func extraCopies(_ lines: [String]) -> Int {
        var counts: [String: Int] = [:]
        for l in lines { counts[l, default: 0] += 1 }
        return counts.values.reduce(0) { $0 + max(0, $1 - 1) }
    }

    static func sample(count: Int, seed: Int, duplicates: Double, into path: String, in dir: String) throws {
        let (p, _) = try launch(["sample", "--count", "\(count)", "--seed", "\(seed)", "--duplicates", "\(duplicates)"], in: dir, stdoutPath: path)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
    }

    @Test("lymph run killed with -9 five times at random points, then finished: output, log and dead letters equal a run never killed, byte for byte")
    func runKilledAndRestarted() async throws {
        try await onOwnThread { try Self.runKilledAndRestartedBody() }
    }

    static func runKilledAndRestartedBody() throws {
        let clock = ContinuousClock()
        let dir = LymphBinary.workDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let reference = dir + "/reference", killed = dir + "/killed"
        for d in [reference, killed] {
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: d + "/once.yaml", contents: Data(Self.runPipeline.utf8))
        }
        var timings: [String] = []
        var started = clock.now
        try Self.sample(count: Self.runCount, seed: 17, duplicates: 0.02, into: dir + "/events.ndjson", in: dir)
        timings.append("sample \(clock.now - started)")
        let events = dir + "/events.ndjson"

        started = clock.now
        let whole = try PipedRun(input: events, in: reference).wait()
        timings.append("never-killed run \(clock.now - started)")
        #expect(whole.status == 0, "\(whole.stderr)")
        #expect(whole.stderr.contains(#""duplicates":"#) && !whole.stderr.contains(#""duplicates":0,"#))

        // Kill points: a random share of what is left to write, early on (each restart reads
        // the input again from the start, so late kills make the test long), then a random
        // delay of up to 0.3 s, so kills land inside batches, between them, and around commits.
        let finalSize = Self.bytes(reference + "/out.ndjson").count
        var generator = SystemRandomNumberGenerator()
        var cuts: [String] = []
        var killedMidway = 0
        let out = killed + "/out.ndjson"
        for round in 1...5 {
            let before = Self.size(out)
            let target = before + max(1, Int(Double(finalSize - before) * Double.random(in: 0.05...0.3, using: &generator)))
            started = clock.now
            let run = try PipedRun(input: events, in: killed)
            let deadline = Date().addingTimeInterval(120)
            while run.lymph.isRunning && Self.size(out) < target && Date() < deadline { Thread.sleep(forTimeInterval: 0.002) }
            let delay = Double.random(in: 0...0.3, using: &generator)
            Thread.sleep(forTimeInterval: delay)
            if run.lymph.isRunning {
                kill(run.lymph.processIdentifier, SIGKILL)
                killedMidway += 1
            }
            let text = run.wait().stderr
            cuts += text.split(separator: "\n").filter { $0.contains("cut ") }.map(String.init)
            timings.append(
                "round \(round): killed at \(Self.size(out)) of \(finalSize) bytes (+\(String(format: "%.2f", delay)) s) after \(clock.now - started)")
        }
        started = clock.now
        let last = try PipedRun(input: events, in: killed).wait()
        timings.append("last run \(clock.now - started)")
        cuts += last.stderr.split(separator: "\n").filter { $0.contains("cut ") }.map(String.init)
        #expect(last.status == 0, "\(last.stderr)")
        print("exactly-once run: \(timings.joined(separator: "; "))\n\(cuts.joined(separator: "\n"))")

        #expect(killedMidway >= 4, "most rounds must be killed while running, not after the end")
        // Restarts cut back what the killed process wrote after its last commit (a kill just
        // after a commit leaves nothing to cut).
        #expect(!cuts.isEmpty)
        for file in ["out.ndjson", "logs/processed.log", "dead.ndjson"] {
            let expected = Self.bytes(reference + "/" + file), got = Self.bytes(killed + "/" + file)
            let lines = String(decoding: got, as: UTF8.self).split(separator: "\n").map(String.init)
            let expectedLines = String(decoding: expected, as: UTF8.self).split(separator: "\n").map(String.init)
            let duplicates = Self.extraCopies(lines) - Self.extraCopies(expectedLines)
            let lost = Set(expectedLines).subtracting(lines).count
            #expect(duplicates == 0, "\(file): \(duplicates) duplicate lines")
            #expect(lost == 0, "\(file): \(lost) lines lost")
            // Input order is kept across restarts, so the files are the same bytes. (Compared
            // outside #expect, which would diff 50 MB on a mismatch.)
            let same = got == expected
            #expect(same, "\(file): \(got.count) bytes, never-killed run \(expected.count)")
        }
        #expect(!Self.bytes(reference + "/out.ndjson").isEmpty && !Self.bytes(reference + "/logs/processed.log").isEmpty)
    }

    /// Events in the named-file test. LYMPH_EXACTLY_ONCE_FILE_COUNT changes it.
    static let fileCount = ProcessInfo.processInfo.environment["LYMPH_EXACTLY_ONCE_FILE_COUNT"].flatMap(Int.init) ?? 150_000

    /// A dead-letter line without its `"at"` time, which differs between any two runs.
    static func withoutTime(_ line: Substring) -> String {
        line.replacingOccurrences(of: #","at":"[^"]*""#, with: "", options: .regularExpression)
    }

    @Test(
        "lymph run over a named file with malformed lines, killed with -9 three times: each restart continues after the committed items, so no dead letter is written twice"
    )
    func namedFileContinues() async throws {
        try await onOwnThread { try Self.namedFileContinuesBody() }
    }

    static func namedFileContinuesBody() throws {
        let dir = LymphBinary.workDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let reference = dir + "/reference", killed = dir + "/killed"
        for d in [reference, killed] {
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: d + "/once.yaml", contents: Data(Self.runPipeline.utf8))
        }
        let (sample, _) = try Self.launch(
            ["sample", "--count", "\(Self.fileCount)", "--seed", "23", "--duplicates", "0.02", "--malformed", "0.03"],
            in: dir, stdoutPath: dir + "/events.ndjson")
        sample.waitUntilExit()
        let arguments = ["run", "once.yaml", "../events.ndjson", "--summary", "json", "--no-progress"]

        let (whole, wholeErr) = try Self.launch(arguments, in: reference)
        let wholeText = String(decoding: wholeErr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        whole.waitUntilExit()
        #expect(whole.terminationStatus == 1, "dead letters: exit 1; \(wholeText)")
        let deadLines = String(decoding: Self.bytes(reference + "/dead.ndjson"), as: UTF8.self).split(separator: "\n")
        #expect(deadLines.count > Self.fileCount / 100)

        // Kill 0.2 to 0.8 s after the run's first commit, before the end. The commit is seen
        // as a write to the state's log after the first batch wrote dead letters (the file
        // grew; at start it is only cut back), so a loaded machine, where the first commit
        // comes late, still kills after it. A run that finishes first ends the rounds: running
        // the file again after a run that finished is a new run over it, not a restart.
        var generator = SystemRandomNumberGenerator()
        var continued: [String] = []
        var killedMidway = 0
        var finishedEarly = false
        let dead = killed + "/dead.ndjson", log = killed + "/.lymph/once.sqlite-wal"
        func logState() -> String {
            guard let a = try? FileManager.default.attributesOfItem(atPath: log) else { return "none" }
            return "\(a[.size] as? Int ?? -1) \((a[.modificationDate] as? Date)?.timeIntervalSince1970 ?? -1)"
        }
        for _ in 1...3 {
            let (run, err) = try Self.launch(arguments, in: killed)
            let limit = Date().addingTimeInterval(60)
            var seen = Self.size(dead)
            while run.isRunning && Date() < limit {
                let now = Self.size(dead)
                if now > seen { break }
                seen = now
                Thread.sleep(forTimeInterval: 0.005)
            }
            let before = logState()
            while run.isRunning && Date() < limit && logState() == before { Thread.sleep(forTimeInterval: 0.005) }
            let deadline = Date().addingTimeInterval(Double.random(in: 0.2...0.8, using: &generator))
            while run.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
            if run.isRunning {
                kill(run.processIdentifier, SIGKILL)
                killedMidway += 1
            }
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            run.waitUntilExit()
            continued += text.split(separator: "\n").filter { $0.contains("continuing an interrupted run") }.map(String.init)
            if run.terminationReason == .exit {
                finishedEarly = true
                break
            }
        }
        var lastText = ""
        if !finishedEarly {
            let (last, lastErr) = try Self.launch(arguments, in: killed)
            lastText = String(decoding: lastErr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            last.waitUntilExit()
            #expect(last.terminationStatus == 1, "\(lastText)")
            continued += lastText.split(separator: "\n").filter { $0.contains("continuing an interrupted run") }.map(String.init)
        }

        print("named-file run: killed \(killedMidway) times; \(continued.joined(separator: "; "))")
        #expect(killedMidway >= 1, "the first run at least must be killed while running")
        // Restarts continue after what was committed (one killed before its first commit
        // would find the same record as the one before it, or none).
        #expect(!continued.isEmpty, "\(continued)")
        for file in ["out.ndjson", "logs/processed.log"] {
            let same = Self.bytes(reference + "/" + file) == Self.bytes(killed + "/" + file)
            #expect(same, "\(file) differs from the never-killed run's")
        }
        let got = String(decoding: Self.bytes(killed + "/dead.ndjson"), as: UTF8.self).split(separator: "\n")
        #expect(got.count == deadLines.count, "dead letters: \(got.count), never-killed run \(deadLines.count)")
        let sameDead = got.map(Self.withoutTime) == deadLines.map(Self.withoutTime)
        #expect(sameDead, "dead letters differ from the never-killed run's (times aside)")

        // The run that finished deleted the record: the same file again is read from the start
        // (every event a duplicate now, every malformed line a dead letter again).
        let (again, againErr) = try Self.launch(arguments + ["--dead-letter", "again.ndjson"], in: killed)
        let againText = String(decoding: againErr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        again.waitUntilExit()
        #expect(!againText.contains("continuing an interrupted run"), "\(againText)")
        #expect(againText.contains(#""events_read":\#(Self.fileCount)"#), "\(againText)")
    }

    @Test(
        "lymph run stopped, then its input edited in place (a line deleted before where it stopped, past the first 4 KiB): the next run says so, reads the file from its start, and every event is in the output once"
    )
    func inputEditedInPlace() async throws {
        try await onOwnThread { try Self.inputEditedInPlaceBody() }
    }

    static func inputEditedInPlaceBody() throws {
        let dir = LymphBinary.workDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = FileManager.default.createFile(atPath: dir + "/once.yaml", contents: Data(Self.runPipeline.utf8))
        try Self.sample(count: 200_000, seed: 29, duplicates: 0, into: dir + "/events.ndjson", in: dir)
        let original = String(decoding: Self.bytes(dir + "/events.ndjson"), as: UTF8.self).split(separator: "\n").map(String.init)
        let arguments = ["run", "once.yaml", "events.ndjson", "--summary", "json", "--no-progress"]

        // Stopped once some thousands of events are out: the run records how far it got.
        let (first, firstErr) = try Self.launch(arguments, in: dir)
        let limit = Date().addingTimeInterval(60)
        while first.isRunning && Date() < limit && Self.size(dir + "/out.ndjson") < 2_000_000 { Thread.sleep(forTimeInterval: 0.005) }
        kill(first.processIdentifier, SIGTERM)
        let firstText = String(decoding: firstErr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        first.waitUntilExit()
        #expect(first.terminationStatus == 143, "stopped before the end: \(firstText)")
        let done = LymphBinary.lines(dir + "/out.ndjson").count
        #expect(done > 1_000)

        // The operator deletes line 100 in place (same inode, as an editor saving over it does).
        var edited = original
        edited.remove(at: 99)
        let handle = try #require(FileHandle(forWritingAtPath: dir + "/events.ndjson"))
        handle.truncateFile(atOffset: 0)
        handle.write(Data((edited.joined(separator: "\n") + "\n").utf8))
        handle.closeFile()

        let (second, secondErr) = try Self.launch(arguments, in: dir)
        let secondText = String(decoding: secondErr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        second.waitUntilExit()
        #expect(second.terminationStatus == 0, "\(secondText)")
        #expect(secondText.contains("input 'events.ndjson' changed since the interrupted run"), "\(secondText)")
        // Every event of the filter's types once: those done before (the deleted line's among
        // them), and the rest; the ones read again are duplicates now.
        let passing = ["prediction.created", "alert.", "sensor.status_changed"]
        func id(_ line: String) -> String { String(line.split(separator: "\"")[3]) }
        let expected = original.filter { line in passing.contains { line.contains(#""type":"\#($0)"#) } }.map(id)
        let out = LymphBinary.lines(dir + "/out.ndjson").map(id)
        #expect(Self.extraCopies(out) == 0)
        #expect(Set(out) == Set(expected) && out.count == expected.count, "\(out.count) events out, \(expected.count) expected")
    }

    /// parse, verify and a log file, no dedup: every entry of the spool is written once.
    static let servePipeline = """
        pipeline: serve-once
        state: .lymph/serve.sqlite
        output: out.ndjson
        dead_letter: dead.ndjson
        stages:
          - parse
          - verify: { secrets: [env:IMMUNE_WEBHOOK_SECRET] }
          - schedule_maintenance: { emit: false }
          - log: { path: processed.log, format: text, template: "{id}" }
        """

    /// Events in the serve test. The debug build takes webhooks at about 550/s from
    /// `lymph send`, and its worker keeps up.
    static let serveCount = 12_000

    @Test("lymph serve killed with -9 twice while lymph send sends, then sent the rest: every accepted event once in output, log and dead letters")
    func serveKilledAndRestarted() async throws {
        try await onOwnThread { try Self.serveKilledAndRestartedBody() }
    }

    static func serveKilledAndRestartedBody() throws {
        let clock = ContinuousClock()
        let h = ServeHarness(pipeline: Self.servePipeline)
        defer { try? FileManager.default.removeItem(atPath: h.dir) }
        try Self.sample(count: Self.serveCount, seed: 23, duplicates: 0, into: h.dir + "/sample.ndjson", in: h.dir)
        // Every 100th event is replaced by one that the server accepts (a whole envelope) and
        // schedule_maintenance rejects (an alert whose severity is none of the four): a dead
        // letter each. The stage drops nothing and, with emit false, adds no event.
        var lines = LymphBinary.lines(h.dir + "/sample.ndjson")
        var bad: [String] = []
        for i in stride(from: 50, to: lines.count, by: 100) {
            let id = "evt_bad_\(i)"
            bad.append(id)
            lines[i] = #"{"id":"\#(id)","type":"alert.triggered","created_at":"2026-06-01T00:00:00Z","data":{"equipment_id":"pump_1","severity":"HIGH"}}"#
        }
        let ids = lines.map { line in (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["id"] as? String ?? "" }
        let good = ids.filter { !$0.hasPrefix("evt_bad_") }
        #expect(Set(ids).count == lines.count && good.count + bad.count == lines.count)

        func outputIDs() -> [String] {
            LymphBinary.lines(h.dir + "/out.ndjson").compactMap { line in
                (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["id"] as? String
            }
        }
        func deadIDs() -> [String] {
            LymphBinary.lines(h.dir + "/dead.ndjson").compactMap { line in
                line.range(of: #"evt_bad_[0-9]+"#, options: .regularExpression).map { String(line[$0]) }
            }
        }
        /// The events no spool entry has brought through the pipeline yet, as a file to send.
        func rest(_ name: String) -> Int {
            let done = Set(outputIDs()).union(deadIDs())
            let left = zip(lines, ids).filter { !done.contains($0.1) }.map(\.0)
            _ = FileManager.default.createFile(atPath: h.dir + "/" + name, contents: Data(left.map { $0 + "\n" }.joined().utf8))
            return left.count
        }
        func sender(_ file: String, retries: Int) throws -> (Process, Pipe) {
            try Self.launch(
                [
                    "send", "http://127.0.0.1:\(h.port)/webhooks", file, "--secret", "env:IMMUNE_WEBHOOK_SECRET", "--concurrency", "16",
                    "--retries", "\(retries)",
                ], in: h.dir, environment: ["IMMUNE_WEBHOOK_SECRET": ServeHarness.secret])
        }

        var timings: [String] = []
        var notes: [String] = []
        func collectNotes() {
            notes += h.stderrText.get().split(separator: "\n").filter { $0.contains("skipped") || $0.contains("cut ") }.map(String.init)
        }
        // No retries while a kill may come: an event is then sent once until the server has
        // drained, and only those it never took in are sent again, so any event twice in a
        // file was written twice by the server. (A request in flight at the kill may be in
        // the spool without its 202; it is processed after the restart, and not sent again.)
        var generator = SystemRandomNumberGenerator()
        try h.start()
        var file = h.dir + "/sample-sent.ndjson"
        _ = FileManager.default.createFile(atPath: file, contents: Data(lines.map { $0 + "\n" }.joined().utf8))
        for round in 1...2 {
            let started = clock.now
            let before = LymphBinary.lines(h.dir + "/out.ndjson").count
            let toSend = LymphBinary.lines(file).count
            let target = before + Int(Double(toSend) * Double.random(in: 0.15...0.5, using: &generator))
            let (send, err) = try sender(file, retries: 0)
            let deadline = Date().addingTimeInterval(120)
            while send.isRunning && Self.size(h.dir + "/out.ndjson") < target * 300 && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
            // The output is about 300 bytes an event: count lines only near the target.
            while send.isRunning && LymphBinary.lines(h.dir + "/out.ndjson").count < target && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
            let depth = ((try? h.get("/healthz").body) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            let killedWhileSending = send.isRunning
            #expect(h.stop(SIGKILL) == 9)
            send.waitUntilExit()
            let sendText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            collectNotes()
            #expect(killedWhileSending, "the kill must come while lymph send sends")
            try h.start()
            try h.waitForDrain(timeout: 120)
            let left = rest("rest\(round).ndjson")
            file = h.dir + "/rest\(round).ndjson"
            timings.append(
                "round \(round): killed at \(target) output lines (\(depth)); \(sendText.split(separator: "\n").last ?? ""); \(left) left to send; \(clock.now - started)"
            )
        }
        let (last, lastErr) = try sender(file, retries: 5)
        last.waitUntilExit()
        let lastText = String(decoding: lastErr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(last.terminationStatus == 0 && lastText.contains("retried 0"), "\(lastText)")
        try h.waitForDrain(timeout: 120)
        collectNotes()
        #expect(h.stop(SIGTERM) == 0)
        print("exactly-once serve: \(timings.joined(separator: "; "))\n\(notes.joined(separator: "\n"))")

        let outIDs = outputIDs()
        let logIDs = LymphBinary.lines(h.dir + "/processed.log")
        for (name, got, expected) in [("output", outIDs, good), ("log", logIDs, good), ("dead letters", deadIDs(), bad)] {
            #expect(Self.extraCopies(got) == 0, "\(name): \(Self.extraCopies(got)) duplicates")
            #expect(Set(expected).subtracting(got).isEmpty, "\(name): \(Set(expected).subtracting(got).count) lost")
            #expect(got.count == expected.count, "\(name): \(got.count) lines for \(expected.count) events")
        }
        // Spool order is arrival order, which concurrent sending does not fix; the output and
        // the log hold the events in the same order.
        let sameOrder = outIDs == logIDs
        #expect(sameOrder)
    }
}
