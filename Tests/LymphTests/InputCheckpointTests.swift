import Foundation
import GRDB
import Testing
@testable import Lymph

/// `lymph run` records how far it got in its input files with each commit, so a run over the
/// same files after a crash skips what was done, and an item that failed is a dead letter once.
@Suite("input checkpoint")
struct InputCheckpointTests {
    let dir = Fixture.temporaryDirectory()
    let store: StateStore

    init() throws {
        store = try StateStore.open(path: dir + "/state.sqlite")
    }

    /// `count` NDJSON lines `{"id":"e<first+i>"}`, written to `name` in the test folder.
    func file(_ name: String, first: Int = 0, count: Int, append: Bool = false) throws -> String {
        let path = dir + "/" + name
        let text = (first..<(first + count)).map { #"{"id":"e\#($0)"}"# + "\n" }.joined()
        if append, let handle = FileHandle(forWritingAtPath: path) {
            handle.seekToEndOfFile()
            handle.write(Data(text.utf8))
            handle.closeFile()
        } else {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        }
        return path
    }

    /// A reader with small blocks, so a file comes in many batches.
    func reader(_ paths: [String]) -> ItemReader {
        ItemReader(paths: paths, maxItemBytes: 4096, readSize: 64)
    }

    /// The runner's commit, reduced to the reader.
    func commit(_ reader: ItemReader) throws {
        let write = try reader.takePending()
        try store.write { db in try write?.write(db) }
        reader.pendingWritten()
    }

    static func ids(_ batch: InputBatch) -> [String] {
        batch.items.map { String(decoding: $0.bytes, as: UTF8.self) }
    }

    /// Reads every batch to the end.
    static func drain(_ reader: ItemReader) throws -> [RawItem] {
        var items: [RawItem] = []
        while let batch = try reader.nextBatch() { items += batch.items }
        return items
    }

    @Test("a run cut short records the items of its finished batches; the next run over the file starts after them")
    func continuesAfterCommittedItems() throws {
        let path = try file("events.ndjson", count: 100)
        let first = reader([path])
        #expect(try first.continueInterrupted(recordedIn: store, pipeline: "p") == .fresh)
        var handed = 0
        var finished = 0
        for n in 0..<4 {
            let batch = try #require(try first.nextBatch())
            handed += batch.items.count
            // Three batches leave the pipeline; the fourth is still in flight at the crash.
            if n < 3 {
                first.batchFinished()
                finished += batch.items.count
            }
        }
        try commit(first)
        #expect(handed > finished && finished > 0)
        // The process dies here: the fourth batch's work was never committed.

        let second = reader([path])
        #expect(try second.continueInterrupted(recordedIn: store, pipeline: "p") == .continuing(done: [finished]))
        let rest = try Self.drain(second)
        #expect(rest.first?.source.line == finished + 1)
        #expect(rest.count == 100 - finished)
        #expect(second.skippedDone == finished)
    }

    @Test("a run that reads every input to the end deletes the record: the next run reads from the start")
    func completeRunForgets() throws {
        let path = try file("events.ndjson", count: 30)
        let r = reader([path])
        _ = try r.continueInterrupted(recordedIn: store, pipeline: "p")
        while let batch = try r.nextBatch() {
            #expect(!batch.items.isEmpty)
            r.batchFinished()
        }
        try commit(r)
        #expect(try store.runInputs(pipeline: "p").isEmpty)
        let again = reader([path])
        #expect(try again.continueInterrupted(recordedIn: store, pipeline: "p") == .fresh)
        #expect(try Self.drain(again).count == 30)
    }

    /// Reads two batches, finishes them, commits: a crash after that.
    func crashAfterTwoBatches(_ paths: [String]) throws -> Int {
        let r = reader(paths)
        _ = try r.continueInterrupted(recordedIn: store, pipeline: "p")
        var done = 0
        for _ in 0..<2 {
            done += try #require(try r.nextBatch()).items.count
            r.batchFinished()
        }
        try commit(r)
        return done
    }

    @Test("a file that grew since is continued; one rewritten with other first bytes, or replaced, is read from the start")
    func identityOfTheFile() throws {
        let path = try file("events.ndjson", count: 50)
        let done = try crashAfterTwoBatches([path])
        _ = try file("events.ndjson", first: 50, count: 10, append: true)
        let grown = reader([path])
        #expect(try grown.continueInterrupted(recordedIn: store, pipeline: "p") == .continuing(done: [done]))
        #expect(try Self.drain(grown).count == 60 - done)

        // Same length, other bytes at the start, same inode (rewritten in place).
        _ = try crashAfterTwoBatches([path])
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.write(Data(#"{"id":"X0"}"#.utf8))
        handle.closeFile()
        let rewritten = reader([path])
        #expect(try rewritten.continueInterrupted(recordedIn: store, pipeline: "p") == .replaced(paths: [path]))
        #expect(try Self.drain(rewritten).count == 60)

        // Another file under the same name (another inode).
        _ = try crashAfterTwoBatches([path])
        try FileManager.default.removeItem(atPath: path)
        _ = try file("events.ndjson", count: 60)
        let replaced = reader([path])
        #expect(try replaced.continueInterrupted(recordedIn: store, pipeline: "p") == .replaced(paths: [path]))
        #expect(try Self.drain(replaced).count == 60)
    }

    /// A run over `path` cut short after `batches` finished batches; the items it did.
    func crash(_ path: String, after batches: Int) throws -> Int {
        let r = reader([path])
        _ = try r.continueInterrupted(recordedIn: store, pipeline: "p")
        var done = 0
        for _ in 0..<batches {
            done += try #require(try r.nextBatch()).items.count
            r.batchFinished()
        }
        try commit(r)
        return done
    }

    /// Rewrites `path` in place (same inode, as an editor saving over it does) with `lines`.
    func rewriteInPlace(_ path: String, _ lines: [String]) throws {
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.truncateFile(atOffset: 0)
        handle.write(Data(lines.map { $0 + "\n" }.joined().utf8))
        handle.closeFile()
    }

    @Test(
        "a line deleted or added in place past the first 4 KiB, before where the interrupted run stopped, or a file cut short: it is read from its start, no item lost or skipped wrongly",
        arguments: ["deleted", "added", "cut short"])
    func editedInPlace(_ edit: String) throws {
        // 1,000 lines of 12 to 14 bytes: line 500 is well past the first 4 KiB.
        let path = try file("events.ndjson", count: 1_000)
        let done = try crash(path, after: 200)
        #expect(done > 600 && done < 1_000)
        var lines = (0..<1_000).map { #"{"id":"e\#($0)"}"# }
        switch edit {
        case "deleted": lines.remove(at: 499)
        case "added": lines.insert(#"{"id":"new"}"#, at: 499)
        default: lines = Array(lines.prefix(done - 10))
        }
        try rewriteInPlace(path, lines)
        let again = reader([path])
        // The first bytes are the same: the record is continued, until the item where it stopped.
        #expect(try again.continueInterrupted(recordedIn: store, pipeline: "p") == .continuing(done: [done]))
        let items = try Self.drain(again).map { String(decoding: $0.bytes, as: UTF8.self) }
        #expect(items == lines)
        #expect(again.changedSinceInterrupted == [path] && again.skippedDone == 0)
        // What this run finished is recorded from the start of the file.
        again.batchFinished()
        try commit(again)
        let rows = try store.runInputs(pipeline: "p")
        #expect(rows.count == 1 && rows[0].done <= lines.count)
    }

    @Test("a done line changed in place without moving the others (same count of lines) is still continued where the run stopped")
    func doneLineChangedInPlace() throws {
        let path = try file("events.ndjson", count: 1_000)
        let done = try crash(path, after: 200)
        var lines = (0..<1_000).map { #"{"id":"e\#($0)"}"# }
        lines[499] = #"{"id":"fixed"}"#
        try rewriteInPlace(path, lines)
        let again = reader([path])
        #expect(try again.continueInterrupted(recordedIn: store, pipeline: "p") == .continuing(done: [done]))
        let items = try Self.drain(again).map { String(decoding: $0.bytes, as: UTF8.self) }
        #expect(items == Array(lines[done...]))
        #expect(again.changedSinceInterrupted.isEmpty && again.skippedDone == done)
    }

    @Test("a record without a last done item (an older version's) is continued by its count, as that version did")
    func recordWithoutResumePoint() throws {
        let path = try file("events.ndjson", count: 100)
        let done = try crashAfterTwoBatches([path])
        try store.write { db in try db.execute(sql: "UPDATE lymph_run_inputs SET last_line = NULL, last_fingerprint = NULL") }
        let again = reader([path])
        #expect(try again.continueInterrupted(recordedIn: store, pipeline: "p") == .continuing(done: [done]))
        #expect(try Self.drain(again).count == 100 - done)
        #expect(again.changedSinceInterrupted.isEmpty)
    }

    @Test("other inputs, or --from-start, read from the start and replace the record")
    func otherInputs() throws {
        let a = try file("a.ndjson", count: 40), b = try file("b.ndjson", count: 40)
        _ = try crashAfterTwoBatches([a])
        let other = reader([b])
        #expect(try other.continueInterrupted(recordedIn: store, pipeline: "p") == .replaced(paths: [a]))
        #expect(try Self.drain(other).count == 40)

        _ = try crashAfterTwoBatches([a])
        let both = reader([a, b])
        #expect(try both.continueInterrupted(recordedIn: store, pipeline: "p") == .replaced(paths: [a]))

        let done = try crashAfterTwoBatches([a])
        #expect(done > 0)
        let forced = reader([a])
        #expect(try forced.continueInterrupted(recordedIn: store, pipeline: "p", fromStart: true) == .replaced(paths: [a]))
        #expect(try Self.drain(forced).count == 40)
    }

    @Test("several files: those done are skipped whole, the one in progress from where it stopped")
    func severalFiles() throws {
        let a = try file("a.ndjson", count: 10), b = try file("b.ndjson", first: 10, count: 40)
        let r = reader([a, b])
        _ = try r.continueInterrupted(recordedIn: store, pipeline: "p")
        var done = 0
        // Through the end of a, and into b.
        while done <= 10 {
            done += try #require(try r.nextBatch()).items.count
            r.batchFinished()
        }
        try commit(r)
        let rows = try store.runInputs(pipeline: "p")
        #expect(rows.map(\.done) == [10, done - 10])

        let next = reader([a, b])
        #expect(try next.continueInterrupted(recordedIn: store, pipeline: "p") == .continuing(done: [10, done - 10]))
        let rest = try Self.drain(next)
        #expect(rest.count == 50 - done)
        #expect(rest.first.map { String(decoding: $0.bytes, as: UTF8.self) } == #"{"id":"e\#(done)"}"#)
    }

    @Test("stdin cannot be read twice: no record is kept")
    func stdinKeepsNothing() throws {
        let path = try file("a.ndjson", count: 5)
        #expect(try reader([path, "-"]).continueInterrupted(recordedIn: store, pipeline: "p") == .unavailable)
        #expect(try reader([]).continueInterrupted(recordedIn: store, pipeline: "p") == .unavailable)
        #expect(try store.runInputs(pipeline: "p").isEmpty)
    }

    @Test("each pipeline on a state file has its own record: another over the same file reads it all, and neither replaces the other's")
    func recordPerPipeline() throws {
        let path = try file("events.ndjson", count: 100)
        let a = reader([path])
        _ = try a.continueInterrupted(recordedIn: store, pipeline: "a")
        var done = 0
        while done < 30 {
            done += try #require(try a.nextBatch()).items.count
            a.batchFinished()
        }
        try commit(a)
        // Pipeline b, over the same file and over another: nothing of a's is skipped or replaced.
        let b = reader([path])
        #expect(try b.continueInterrupted(recordedIn: store, pipeline: "b") == .fresh)
        #expect(try Self.drain(b).count == 100)
        let other = try file("other.ndjson", count: 5)
        let c = reader([other])
        #expect(try c.continueInterrupted(recordedIn: store, pipeline: "c") == .fresh)
        _ = try c.nextBatch()
        c.batchFinished()
        try commit(c)
        #expect(try store.runInputs(pipeline: "c").map(\.done) == [5])
        // b read to the end: its commit clears its own record only.
        try commit(b)
        let again = reader([path])
        #expect(try again.continueInterrupted(recordedIn: store, pipeline: "a") == .continuing(done: [done]))
        #expect(try Self.drain(again).count == 100 - done)
    }
}
