import Foundation
import GRDB
import Testing
@testable import Lymph

/// A dead-letter record line as `DeadLetter` writes it, with optional `resume`.
private func record(
    stage: String, reason: String, message: String = "m", at: String = "2026-06-01T12:00:00.000Z",
    resume: String? = nil, tail: String = #""raw":"x""#
) -> String {
    let resumed = resume.map { #","resume":{"stage":"\#($0)","kind":"dedup","event":{"id":"e1"},"claims":[]}"# } ?? ""
    return
        #"{"error":{"stage":"\#(stage)","reason":"\#(reason)","message":"\#(message)"},"source":{"file":"in.ndjson","line":3},"at":"\#(at)"\#(resumed),\#(tail)}"#
}

private func write(_ lines: [String], to name: String = "dead.ndjson") -> String {
    let path = Fixture.temporaryDirectory() + "/" + name
    _ = FileManager.default.createFile(atPath: path, contents: Data((lines.joined(separator: "\n") + "\n").utf8))
    return path
}

@Suite("dead-letter summary")
struct DeadLetterSummaryTests {
    @Test("records are grouped by stage and reason, in pipeline stage order, then largest group first")
    func grouping() throws {
        let path = write([
            record(stage: "exec-3", reason: "plugin_exit"),
            record(stage: "parse", reason: "invalid_json"),
            record(stage: "parse", reason: "missing_field"),
            record(stage: "parse", reason: "missing_field"),
            record(stage: "verify-2", reason: "bad_signature"),
            record(stage: "gone-9", reason: "old"),
        ])
        let s = try DeadLetterSummary.read(path: path, stageOrder: ["parse", "verify-2", "exec-3"])
        #expect(
            s.groups.map { "\($0.stage)/\($0.reason)/\($0.count)" } == [
                "parse/missing_field/2", "parse/invalid_json/1", "verify-2/bad_signature/1", "exec-3/plugin_exit/1", "gone-9/old/1",
            ])
        #expect(s.records == 6)
        #expect(s.groups[0].firstLine == 3)
    }

    @Test("without a pipeline, stages come in the order they first appear in the file")
    func appearanceOrder() throws {
        let path = write([record(stage: "b", reason: "r"), record(stage: "a", reason: "r"), record(stage: "a", reason: "r"), record(stage: "b", reason: "s")])
        let s = try DeadLetterSummary.read(path: path)
        #expect(s.groups.map { "\($0.stage)/\($0.reason)" } == ["b/r", "b/s", "a/r"])
    }

    @Test("oldest and newest are the earliest and latest times, as written; the example is the first message's first line")
    func times() throws {
        let path = write([
            record(stage: "parse", reason: "r", message: #"first line\nsecond line"#, at: "2026-06-02T00:00:00.000Z"),
            record(stage: "parse", reason: "r", message: "later", at: "2026-06-01T08:30:00.000Z"),
            record(stage: "parse", reason: "r", at: "2026-06-03T23:59:59.999Z"),
            record(stage: "parse", reason: "r", at: "not a time"),
        ])
        let g = try #require(try DeadLetterSummary.read(path: path).groups.first)
        #expect(g.count == 4)
        #expect(g.oldest == "2026-06-01T08:30:00.000Z")
        #expect(g.newest == "2026-06-03T23:59:59.999Z")
        #expect(g.example == "first line")
    }

    @Test("records with a resume member are counted apart from those that replay from the start")
    func resumes() throws {
        let path = write([
            record(stage: "exec-4", reason: "plugin_exit", resume: "exec-4"),
            record(stage: "exec-4", reason: "plugin_exit", resume: "exec-4"),
            record(stage: "exec-4", reason: "plugin_exit"),
            record(stage: "parse", reason: "invalid_json"),
        ])
        let s = try DeadLetterSummary.read(path: path)
        #expect(s.groups[0].resumes == 2 && s.groups[0].fromStart == 1)
        #expect(s.groups[1].resumes == 0 && s.groups[1].fromStart == 1)
        #expect(s.resumes == 2)
        let json = try JSONSerialization.jsonObject(with: Data(s.json().utf8)) as? [String: Any]
        #expect(json?["resumes"] as? Int == 2)
        #expect(json?["from_start"] as? Int == 2)
        #expect((json?["groups"] as? [[String: Any]])?.first?["resumes"] as? Int == 2)
    }

    @Test("lines that are not records are unreadable, with their numbers; blank lines are skipped; nothing crashes")
    func unreadable() throws {
        let path = write([
            record(stage: "parse", reason: "r"),
            "{not json",
            "",
            "[1,2]",
            #"{"error":"a string"}"#,
            #"{"error":{"stage":"parse"}}"#,
            "\u{FF}\u{FE}",
            record(stage: "parse", reason: "r"),
        ])
        let s = try DeadLetterSummary.read(path: path)
        #expect(s.records == 2)
        #expect(s.unreadableCount == 5)
        #expect(s.unreadable.map(\.line) == [2, 4, 5, 6, 7])
        #expect(s.unreadable[0].why.hasPrefix("not JSON"))
        #expect(s.unreadable[1].why == "not a JSON object")
        #expect(s.blankLines == 1)
    }

    @Test("a line over the limit is unreadable and the lines after it are still read")
    func overLongLine() throws {
        let long = record(stage: "parse", reason: "big", message: String(repeating: "x", count: 5000))
        let path = write([record(stage: "parse", reason: "r"), long, record(stage: "parse", reason: "r")])
        let s = try DeadLetterSummary.read(path: path, maxLineBytes: 1000)
        #expect(s.records == 2)
        #expect(s.unreadable.map(\.line) == [2])
        #expect(s.unreadable[0].why.contains("longer than 1000 bytes"))
    }

    @Test("a file that does not exist is an empty summary that says so")
    func missing() throws {
        let s = try DeadLetterSummary.read(path: Fixture.temporaryDirectory() + "/none.ndjson")
        #expect(!s.exists)
        #expect(s.records == 0 && s.groups.isEmpty)
    }

    @Test("the summary's JSON never holds header values")
    func noHeaders() throws {
        let delivery = Fixture.delivery(#"{"id":"e1"}"#)
        let path = write([record(stage: "verify-2", reason: "bad_signature", tail: #""delivery":\#(delivery)"#)])
        let s = try DeadLetterSummary.read(path: path)
        let signature = Fixture.hmacHex(#"{"id":"e1"}"#, secret: "topsecret")
        #expect(!s.json().contains(signature.prefix(16)))
        #expect(s.records == 1)
    }
}

@Suite("reading files line by line")
struct NDJSONLinesTests {
    func lines(_ text: String, max: Int = 1 << 20, readSize: Int) throws -> [String] {
        let path = Fixture.temporaryDirectory() + "/lines"
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        var out: [String] = []
        try NDJSONLines.forEach(descriptor: fd, path: path, maxLineBytes: max, readSize: readSize) { n, line in
            switch line {
            case .bytes(let b): out.append("\(n):\(String(decoding: b, as: UTF8.self))")
            case .tooLong(let length): out.append("\(n):tooLong(\(length))")
            }
            return true
        }
        return out
    }

    @Test("lines split across blocks, CRLF, blank lines and a last line without newline", arguments: [1, 2, 3, 7, 64])
    func splitting(readSize: Int) throws {
        #expect(try lines("ab\r\ncdef\n\nghi", readSize: readSize) == ["1:ab", "2:cdef", "3:", "4:ghi"])
    }

    @Test("an over-long line is reported with its length wherever the blocks end", arguments: [1, 3, 5, 64])
    func tooLong(readSize: Int) throws {
        #expect(
            try lines("abc\n0123456789\nxy\n0123456789", max: 5, readSize: readSize)
                == ["1:abc", "2:tooLong(10)", "3:xy", "4:tooLong(10)"])
    }

    @Test("a UTF-8 byte-order mark before the first line is dropped, as lymph run and replay drop it; one later is the line's", arguments: [1, 2, 64])
    func byteOrderMark(readSize: Int) throws {
        #expect(try lines("\u{FEFF}{\"a\":1}\n\u{FEFF}x\n", readSize: readSize) == ["1:{\"a\":1}", "2:\u{FEFF}x"])
    }

    @Test("an empty file has no lines")
    func empty() throws {
        #expect(try lines("", readSize: 4).isEmpty)
    }
}

@Suite("dead-letter show")
struct DeadLetterShowTests {
    @Test("the signature header is cut to 8 characters; other members are printed as written, in order")
    func redaction() throws {
        let body = #"{"id":"e1","type":"t"}"#
        let signature = Fixture.hmacHex(body, secret: "topsecret")
        let line = record(stage: "verify-2", reason: "bad_signature", tail: #""delivery":\#(Fixture.delivery(body, header: "X-Immune-Signature"))"#)
        let r = try DeadLetterRecord.read(Array(line.utf8)[...])
        let pretty = r.rendered(pretty: true)
        #expect(!pretty.contains(signature))
        #expect(pretty.contains(#""X-Immune-Signature": "\#(signature.prefix(8))…""#), "\(pretty)")
        #expect(pretty.hasPrefix("{\n  \"error\": {\n    \"stage\": \"verify-2\","))
        #expect(pretty.contains(#""body": "{\"id\":\"e1\",\"type\":\"t\"}""#))
        let compact = r.rendered(pretty: false)
        #expect(!compact.contains("\n"))
        let object = try JSONSerialization.jsonObject(with: Data(compact.utf8)) as? [String: Any]
        #expect(((object?["delivery"] as? [String: Any])?["body"] as? String) == body)
    }

    @Test("a signature quoted in a raw line is cut, and its raw_base64 too")
    func rawRedaction() throws {
        let signature = String(repeating: "ab", count: 32)
        let raw = #"{\"headers\":{\"x-immune-signature\":\"\#(signature)\"},\"body\":broken"#
        let line = record(stage: "parse", reason: "invalid_json", tail: #""raw":"\#(raw)","raw_base64":"\#(Data(signature.utf8).base64EncodedString())""#)
        let shown = try DeadLetterRecord.read(Array(line.utf8)[...]).rendered(pretty: true)
        #expect(!shown.contains(signature))
        #expect(!shown.contains(Data(signature.utf8).base64EncodedString()))
        #expect(shown.contains(#"x-immune-signature\":\"abababab…\""#), "\(shown)")
    }

    @Test("json(file:line:) is one line with the resume stage")
    func json() throws {
        let r = try DeadLetterRecord.read(Array(record(stage: "exec-4", reason: "plugin_exit", resume: "exec-4").utf8)[...])
        let object = try JSONSerialization.jsonObject(with: Data(r.json(file: "d.ndjson", line: 7).utf8)) as? [String: Any]
        #expect(object?["line"] as? Int == 7)
        #expect(object?["resume_stage"] as? String == "exec-4")
        #expect(((object?["record"] as? [String: Any])?["error"] as? [String: Any])?["reason"] as? String == "plugin_exit")
    }

    @Test("looking up line N: a record, a line that is not one, past the end")
    func lookUp() throws {
        let path = write([record(stage: "parse", reason: "r"), "", "oops"])
        guard case .record(let r) = try DeadLetterRecord.lookUp(line: 1, in: path) else { Issue.record("line 1"); return }
        #expect(r.reason == "r")
        guard case .unreadable = try DeadLetterRecord.lookUp(line: 2, in: path) else { Issue.record("line 2"); return }
        guard case .unreadable(let why) = try DeadLetterRecord.lookUp(line: 3, in: path) else { Issue.record("line 3"); return }
        #expect(why.hasPrefix("not JSON"))
        guard case .beyondEnd(let n) = try DeadLetterRecord.lookUp(line: 9, in: path) else { Issue.record("line 9"); return }
        #expect(n == 3)
        guard case .beyondEnd = try DeadLetterRecord.lookUp(line: 0, in: path) else { Issue.record("line 0"); return }
    }
}

@Suite("replay decisions")
struct DeadLetterReplayTests {
    @Test("a missing or empty dead-letter file is nothing to replay; a named file that is missing is an error")
    func sources() throws {
        let dir = Fixture.temporaryDirectory()
        let dead = dir + "/dead.ndjson"
        #expect(try DeadLetterReplay.source(file: nil, deadLetter: dead) == .nothing("nothing to replay: '\(dead)' does not exist"))
        _ = FileManager.default.createFile(atPath: dead, contents: Data())
        #expect(try DeadLetterReplay.source(file: nil, deadLetter: dead) == .nothing("nothing to replay: '\(dead)' is empty"))
        _ = FileManager.default.createFile(atPath: dead, contents: Data("x\n".utf8))
        #expect(try DeadLetterReplay.source(file: nil, deadLetter: dead) == .own(dead))
        #expect(try DeadLetterReplay.source(file: dir + "/./dead.ndjson", deadLetter: dead) == .own(dir + "/./dead.ndjson"))
        _ = FileManager.default.createFile(atPath: dir + "/other.ndjson", contents: Data("x\n".utf8))
        #expect(try DeadLetterReplay.source(file: dir + "/other.ndjson", deadLetter: dead) == .other(dir + "/other.ndjson"))
        #expect(throws: RecoveryFileError.self) { try DeadLetterReplay.source(file: dir + "/typo.ndjson", deadLetter: dead) }
    }

    @Test("the moved file is deleted only after a whole replay with no new dead letters")
    func finish() throws {
        let dir = Fixture.temporaryDirectory()
        let moved = dir + "/d.replay-x"
        for (dead, signal, kept) in [
            (Int?.some(2), Int32(0), "2 records failed again (now in 'd')"),
            (0, 15, "the replay was stopped by signal 15 before the end"),
            (nil, 0, "the replay stopped on an error before the end"),
        ] {
            _ = FileManager.default.createFile(atPath: moved, contents: Data("x\n".utf8))
            #expect(DeadLetterReplay.finish(moved: moved, deadLetters: dead, interruptedBy: signal, into: "d") == .kept(moved, kept))
            #expect(FileManager.default.fileExists(atPath: moved))
        }
        #expect(DeadLetterReplay.finish(moved: moved, deadLetters: 0, interruptedBy: 0, into: "d") == .deleted(moved))
        #expect(!FileManager.default.fileExists(atPath: moved))
    }

    @Test("files kept by earlier replays are found beside the dead-letter file, oldest first, with their records")
    func kept() throws {
        let dir = Fixture.temporaryDirectory()
        for name in ["d.ndjson", "d.ndjson.replay-20260602T000000Z", "d.ndjson.replay-20260601T000000Z", "other.replay-1"] {
            _ = FileManager.default.createFile(atPath: dir + "/" + name, contents: Data("a\n\nb\n".utf8))
        }
        let kept = DeadLetterReplay.keptReplays(of: dir + "/d.ndjson")
        #expect(kept.map { ($0.path as NSString).lastPathComponent } == ["d.ndjson.replay-20260601T000000Z", "d.ndjson.replay-20260602T000000Z"])
        #expect(kept.first?.records == 2)
    }

    @Test("a moved dead-letter file gets its name back when the run never started, unless a new one has records")
    func putBack() throws {
        let dir = Fixture.temporaryDirectory()
        let dead = dir + "/d.ndjson"
        _ = FileManager.default.createFile(atPath: dead, contents: Data("r\n".utf8))
        let prepared = try OwnOutputGuard.prepare(inputs: [dead], deadLetter: dead, written: [])
        let moved = try #require(prepared.moved.first)
        #expect(prepared.inputs == [moved.aside])
        _ = FileManager.default.createFile(atPath: dead, contents: Data())  // what opening the pipeline makes
        #expect(OwnOutputGuard.putBack(moved) == "put the dead letters back in '\(dead)'")
        #expect(FileManager.default.contents(atPath: dead) == Data("r\n".utf8))
        #expect(!FileManager.default.fileExists(atPath: moved.aside))

        let again = try #require(try OwnOutputGuard.prepare(inputs: [dead], deadLetter: dead, written: []).moved.first)
        _ = FileManager.default.createFile(atPath: dead, contents: Data("new\n".utf8))
        #expect(OwnOutputGuard.putBack(again).hasPrefix("left the dead letters in '\(again.aside)'"))
        #expect(FileManager.default.fileExists(atPath: again.aside))
    }
}

@Suite("spool status")
struct SpoolStatusTests {
    func makeSpool(_ items: [String], receivedAt: Double) throws -> (dir: String, spool: String, state: String) {
        let dir = Fixture.temporaryDirectory()
        let state = dir + "/serve.sqlite"
        let spool = SQLiteSpoolStore.path(forState: state)
        let store = try SQLiteSpoolStore.open(path: spool)
        for (i, item) in items.enumerated() { _ = try store.append([Array(item.utf8)], receivedAt: receivedAt + Double(i)) }
        return (dir, spool, state)
    }

    @Test("depth, bytes and the oldest entry; with no state file every entry is pending")
    func noProgress() throws {
        let t = Timestamp.parse("2026-06-01T12:00:00Z")!
        let (_, spool, state) = try makeSpool(["aaaa", "bb", "c"], receivedAt: t)
        let s = try SpoolStatus.read(spoolPath: spool, statePath: state)
        #expect(s.exists)
        #expect(s.entries == 3 && s.bytes == 7)
        #expect(s.pending == 3 && s.done == 0 && s.doneThrough == nil)
        #expect(s.oldestSeq == 1 && s.oldestReceivedAt == t)
        #expect(s.oldestAge(now: t + 90) == 90)
        #expect(!FileManager.default.fileExists(atPath: state))
    }

    @Test("entries up to the state store's done_through are done, the rest pending")
    func progress() throws {
        let t = Timestamp.parse("2026-06-01T12:00:00Z")!
        let (_, spool, state) = try makeSpool(["a", "b", "c", "d"], receivedAt: t)
        let store = try StateStore.open(path: state)
        try store.write { db in
            try db.execute(sql: "CREATE TABLE IF NOT EXISTS lymph_spool_progress (id INTEGER PRIMARY KEY CHECK (id = 1), done_through INTEGER NOT NULL)")
            try db.execute(sql: "INSERT OR REPLACE INTO lymph_spool_progress (id, done_through) VALUES (1, 3)")
        }
        let s = try SpoolStatus.read(spoolPath: spool, statePath: state)
        #expect(s.doneThrough == 3)
        #expect(s.done == 3 && s.pending == 1)
        #expect(s.oldestPendingReceivedAt == t + 3)
        let json = try JSONSerialization.jsonObject(with: Data(s.json(now: t + 10).utf8)) as? [String: Any]
        #expect(json?["pending"] as? Int == 1 && json?["done"] as? Int == 3 && json?["entries"] as? Int == 4)
        #expect(json?["oldest_received_at"] as? String == "2026-06-01T12:00:00.000Z")
        #expect(json?["oldest_age_seconds"] as? Double == 10)
    }

    @Test("a state file without the progress table leaves every entry pending")
    func stateWithoutProgress() throws {
        let (_, spool, state) = try makeSpool(["a", "b"], receivedAt: 0)
        _ = try StateStore.open(path: state)
        let s = try SpoolStatus.read(spoolPath: spool, statePath: state)
        #expect(s.pending == 2 && s.done == 0 && s.doneThrough == nil)
    }

    @Test("a missing spool is reported as such and no file is created")
    func missing() throws {
        let dir = Fixture.temporaryDirectory()
        let s = try SpoolStatus.read(spoolPath: dir + "/x.spool.sqlite", statePath: dir + "/x.sqlite")
        #expect(!s.exists && s.entries == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    @Test("a store in memory takes no lock file: two at once in one process, and no ':memory:.lock' left in the working folder")
    func inMemoryStoreTakesNoLock() throws {
        let file = (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(":memory:.lock")
        let before = FileManager.default.fileExists(atPath: file)
        let first = try StoreLock.acquire(forState: ":memory:")
        let second = try StoreLock.acquire(forState: ":memory:")
        #expect(FileManager.default.fileExists(atPath: file) == before)
        withExtendedLifetime((first, second)) {}
    }

    @Test("reading works while a server holds the locks and a write transaction is open")
    func whileServing() throws {
        let (_, spool, state) = try makeSpool(["a", "b"], receivedAt: 0)
        let stateLock = try StoreLock.acquire(forState: state)
        let spoolLock = try StoreLock.acquire(forState: spool)
        let writer = try SQLiteSpoolStore.open(path: spool, durability: .full)
        let seen = try writer.write { db -> Int in
            try db.execute(sql: "INSERT INTO lymph_spool (received_at, item) VALUES (1, x'00')")
            // Not yet committed: the reader sees the last commit, without waiting.
            return (try? SpoolStatus.read(spoolPath: spool, statePath: state).entries) ?? -1
        }
        #expect(seen == 2)
        #expect(try SpoolStatus.read(spoolPath: spool, statePath: state).entries == 3)
        withExtendedLifetime((stateLock, spoolLock)) {}
    }

    @Test("a file that is not a SQLite store is an error naming it")
    func notAStore() throws {
        let dir = Fixture.temporaryDirectory()
        let path = dir + "/x.spool.sqlite"
        _ = FileManager.default.createFile(atPath: path, contents: Data(repeating: 0x41, count: 4096))
        #expect(throws: SpoolStatusError.self) { try SpoolStatus.read(spoolPath: path, statePath: nil) }
    }

    @Test(
        "the state file of a spool file",
        arguments: [
            ("a/serve.spool.sqlite", "a/serve.sqlite"), ("state.db.spool", "state.db"), ("other", nil),
        ] as [(String, String?)])
    func statePath(spool: String, state: String?) {
        #expect(SpoolStatus.statePath(forSpool: spool) == state)
        if let state { #expect(SQLiteSpoolStore.path(forState: state) == spool) }
    }
}
