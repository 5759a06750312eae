import Foundation
import GRDB
import Testing
@testable import Lymph

/// Output files are cut back, at start, to the length committed with the store; files Lymph
/// cannot be sure of are left alone.
@Suite("output ledger")
struct OutputLedgerTests {
    /// A folder with a state store; `out` is the output file's path in it.
    struct Place {
        let dir = Fixture.temporaryDirectory()
        let store: StateStore
        var out: String { dir + "/out.jsonl" }

        init() throws {
            store = try StateStore.open(path: dir + "/state.sqlite")
        }

        /// Opens `paths` (the output by default) as a pipeline would, and the ledger over them.
        func openSinks(_ paths: [String]? = nil) throws -> (sinks: SinkRegistry, ledger: OutputLedger) {
            let sinks = SinkRegistry()
            for path in paths ?? [out] { _ = try sinks.sink(for: path) }
            return (sinks, try OutputLedger.open(store: store, sinks: sinks.openFiles))
        }

        /// The runner's commit, reduced to the ledger.
        func commit(_ ledger: OutputLedger) throws {
            let write = try ledger.takePending()
            try store.write { db in try write?.write(db) }
            ledger.pendingWritten()
        }

        func record(_ path: String? = nil) throws -> StateStore.OutputFileRecord? {
            try store.outputFile(realPath: OutputLedger.realPath(path ?? out))
        }

        func size(_ path: String? = nil) -> Int {
            (try? FileManager.default.attributesOfItem(atPath: path ?? out)[.size] as? Int) ?? -1
        }

        func contents(_ path: String? = nil) -> [UInt8] {
            FileManager.default.contents(atPath: path ?? out).map { [UInt8]($0) } ?? []
        }

        /// Appends through a descriptor of its own: another program.
        func appendAsAnotherProgram(_ text: String, to path: String? = nil) {
            let fd = Glibc.open(path ?? out, O_WRONLY | O_APPEND)
            _ = Array(text.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
    }

    static func lines(_ from: Int, _ to: Int) -> [UInt8] {
        Array((from..<to).map { #"{"id":"evt_\#($0)"}"# + "\n" }.joined().utf8)
    }

    @Test("a commit records the file's length, device and inode")
    func commitRecordsLength() throws {
        let p = try Place()
        let (sinks, ledger) = try p.openSinks()
        defer { sinks.closeAll() }
        #expect(ledger.reconciled.map(\.outcome) == [.new])
        #expect(try p.record()?.length == 0)
        let sink = try sinks.sink(for: p.out)
        try sink.write(Self.lines(0, 10))
        try p.commit(ledger)
        var st = stat()
        #expect(stat(p.out, &st) == 0)
        let record = try #require(try p.record())
        #expect(record.length == Int64(st.st_size))
        #expect(record.device == UInt64(st.st_dev) && record.inode == UInt64(st.st_ino))
        #expect(record.path == p.out)
        #expect(!record.shared)
        #expect(record.fingerprintLength == 64)
    }

    @Test("what was written after the last commit is cut off at the next start, and only that")
    func cutBackOnReopen() throws {
        let p = try Place()
        var (sinks, ledger) = try p.openSinks()
        try sinks.sink(for: p.out).write(Self.lines(0, 10))
        try p.commit(ledger)
        let committed = p.contents()
        try sinks.sink(for: p.out).write(Self.lines(10, 15))
        sinks.closeAll()  // killed before the next commit
        (sinks, ledger) = try p.openSinks()
        #expect(ledger.reconciled.map(\.outcome) == [.cut(bytes: Int64(Self.lines(10, 15).count))])
        #expect(p.contents() == committed)
        // The events are processed again and written after what was committed.
        try sinks.sink(for: p.out).write(Self.lines(10, 15))
        try p.commit(ledger)
        sinks.closeAll()
        (sinks, ledger) = try p.openSinks()
        defer { sinks.closeAll() }
        #expect(ledger.reconciled.map(\.outcome) == [.unchanged])
        #expect(p.contents() == Self.lines(0, 15))
    }

    @Test("only the commit right after closing() is marked closed: a run that goes on with the same pipeline (a server's worker) and crashes is cut back")
    func closingOnce() throws {
        let p = try Place()
        var (sinks, ledger) = try p.openSinks()
        try sinks.sink(for: p.out).write(Self.lines(0, 10))
        ledger.closing()
        try p.commit(ledger)
        #expect(try p.record()?.closed == true)
        try sinks.sink(for: p.out).write(Self.lines(10, 12))
        try p.commit(ledger)
        #expect(try p.record()?.closed == false)
        try sinks.sink(for: p.out).write(Self.lines(12, 15))
        sinks.closeAll()  // killed before the next commit
        (sinks, ledger) = try p.openSinks()
        defer { sinks.closeAll() }
        #expect(ledger.reconciled.map(\.outcome) == [.cut(bytes: Int64(Self.lines(12, 15).count))])
        #expect(p.contents() == Self.lines(0, 12))
    }

    @Test("a crash before the first commit cuts back to where the run started")
    func cutBeforeFirstCommit() throws {
        let p = try Place()
        _ = FileManager.default.createFile(atPath: p.out, contents: Data(Self.lines(0, 3)))
        var (sinks, _) = try p.openSinks()
        try sinks.sink(for: p.out).write(Self.lines(3, 6))
        sinks.closeAll()
        let ledger: OutputLedger
        (sinks, ledger) = try p.openSinks()
        defer { sinks.closeAll() }
        #expect(ledger.reconciled.map(\.outcome) == [.cut(bytes: Int64(Self.lines(3, 6).count))])
        #expect(p.contents() == Self.lines(0, 3))
    }

    @Test("a file deleted while written to stops the commit: the lines since the last commit are in no file, so their work must be done again")
    func deletedFileStopsTheCommit() throws {
        let p = try Place()
        let (sinks, ledger) = try p.openSinks()
        defer { sinks.closeAll() }
        try sinks.sink(for: p.out).write(Self.lines(0, 3))
        try p.commit(ledger)
        try sinks.sink(for: p.out).write(Self.lines(3, 5))
        try FileManager.default.removeItem(atPath: p.out)
        #expect {
            _ = try ledger.takePending()
        } throws: { error in
            (error as? OutputError)?.message.hasPrefix("was deleted while lymph wrote to it") == true
        }
        // What the store holds is still the last commit's.
        #expect(try p.record()?.length == Int64(Self.lines(0, 3).count))
    }

    @Test("a rotated file (another inode at the path) is not cut")
    func rotatedNotCut() throws {
        let p = try Place()
        var (sinks, ledger) = try p.openSinks()
        try sinks.sink(for: p.out).write(Self.lines(0, 10))
        try p.commit(ledger)
        try sinks.sink(for: p.out).write(Self.lines(10, 12))
        sinks.closeAll()
        try FileManager.default.moveItem(atPath: p.out, toPath: p.out + ".1")
        _ = FileManager.default.createFile(atPath: p.out, contents: Data(Self.lines(100, 101)))
        (sinks, ledger) = try p.openSinks()
        #expect(ledger.reconciled.map(\.outcome) == [.replaced])
        #expect(p.contents() == Self.lines(100, 101))
        #expect(p.contents(p.out + ".1") == Self.lines(0, 12))
        // The new file is the baseline from now on.
        #expect(try p.record()?.length == Int64(Self.lines(100, 101).count))
        sinks.closeAll()
        // Moved away with nothing new in its place: a fresh, empty file.
        try FileManager.default.moveItem(atPath: p.out, toPath: p.out + ".2")
        (sinks, ledger) = try p.openSinks()
        defer { sinks.closeAll() }
        #expect(ledger.reconciled.map(\.outcome) == [.recreated])
    }

    @Test("a file shorter than its committed length (truncated by someone) is left alone")
    func truncatedNotCut() throws {
        let p = try Place()
        var (sinks, ledger) = try p.openSinks()
        try sinks.sink(for: p.out).write(Self.lines(0, 10))
        try p.commit(ledger)
        sinks.closeAll()
        #expect(truncate(p.out, 40) == 0)
        (sinks, ledger) = try p.openSinks()
        defer { sinks.closeAll() }
        #expect(ledger.reconciled.map(\.outcome) == [.shorter(by: Int64(Self.lines(0, 10).count - 40))])
        #expect(p.size() == 40)
        #expect(try p.record()?.length == 40)
    }

    @Test("a file truncated between commits (copytruncate) starts a new baseline at the next commit")
    func truncatedWhileRunning() throws {
        let p = try Place()
        var (sinks, ledger) = try p.openSinks()
        let sink = try sinks.sink(for: p.out)
        try sink.write(Self.lines(0, 10))
        try p.commit(ledger)
        #expect(truncate(p.out, 0) == 0)
        try sink.write(Self.lines(10, 12))
        try p.commit(ledger)
        let record = try #require(try p.record())
        #expect(record.length == Int64(Self.lines(10, 12).count) && !record.shared)
        // When it was cut is unknown, so none of its bytes are known; those Lymph writes next are.
        #expect(record.fingerprintLength == 0)
        try sink.write(Self.lines(12, 13))
        try p.commit(ledger)
        #expect(try p.record()?.fingerprintLength == Self.lines(12, 13).count)
        try sink.write(Self.lines(13, 14))
        sinks.closeAll()
        (sinks, ledger) = try p.openSinks()
        defer { sinks.closeAll() }
        #expect(ledger.reconciled.map(\.outcome) == [.cut(bytes: Int64(Self.lines(13, 14).count))])
        #expect(p.contents() == Self.lines(10, 13))
    }

    @Test("a file another program appends to is marked shared at the next commit and never cut")
    func sharedNotCut() throws {
        let p = try Place()
        var (sinks, ledger) = try p.openSinks()
        let sink = try sinks.sink(for: p.out)
        try sink.write(Self.lines(0, 5))
        try p.commit(ledger)
        p.appendAsAnotherProgram("someone else\n")
        try sink.write(Self.lines(5, 10))
        try p.commit(ledger)
        #expect(try p.record()?.shared == true)
        try sink.write(Self.lines(10, 12))
        sinks.closeAll()
        let before = p.contents()
        (sinks, ledger) = try p.openSinks()
        defer { sinks.closeAll() }
        #expect(ledger.reconciled.map(\.outcome) == [.shared])
        #expect(p.contents() == before)
        #expect(try p.record()?.shared == true)
    }

    @Test("another program's appends while Lymph writes nothing are caught too")
    func sharedWhileIdle() throws {
        let p = try Place()
        let (sinks, ledger) = try p.openSinks()
        defer { sinks.closeAll() }
        try sinks.sink(for: p.out).write(Self.lines(0, 5))
        try p.commit(ledger)
        p.appendAsAnotherProgram("someone else\n")
        try p.commit(ledger)
        #expect(try p.record()?.shared == true)
    }

    @Test("bytes changed before the committed length (fingerprint differs): not cut")
    func changedNotCut() throws {
        let p = try Place()
        var (sinks, ledger) = try p.openSinks()
        try sinks.sink(for: p.out).write(Self.lines(0, 10))
        try p.commit(ledger)
        let committed = Self.lines(0, 10).count
        try sinks.sink(for: p.out).write(Self.lines(10, 12))
        sinks.closeAll()
        let fd = open(p.out, O_WRONLY)
        _ = Array("XXXX".utf8).withUnsafeBytes { pwrite(fd, $0.baseAddress, 4, off_t(committed - 10)) }
        close(fd)
        let before = p.contents()
        (sinks, ledger) = try p.openSinks()
        defer { sinks.closeAll() }
        #expect(ledger.reconciled.map(\.outcome) == [.changed])
        #expect(p.contents() == before)
        #expect(try p.record()?.length == Int64(before.count))
    }

    @Test("stdout, stderr and FIFOs are not tracked: nothing recorded, nothing cut")
    func fifoAndStdoutUntouched() throws {
        let p = try Place()
        let fifo = p.dir + "/fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        // A reader, so opening the FIFO for writing does not wait.
        let reader = open(fifo, O_RDONLY | O_NONBLOCK)
        defer { close(reader) }
        let (sinks, ledger) = try p.openSinks([fifo, "-", "stderr"])
        defer { sinks.closeAll() }
        #expect(ledger.reconciled.isEmpty)
        try sinks.sink(for: fifo).write(Array("x\n".utf8))
        try p.commit(ledger)
        #expect(try p.store.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM lymph_output_files") } == 0)
    }

    @Test("two paths naming one file share one sink and one record")
    func oneFileTwoNames() throws {
        let p = try Place()
        let (sinks, ledger) = try p.openSinks([p.out, p.dir + "/./out.jsonl"])
        defer { sinks.closeAll() }
        #expect(sinks.openFiles.count == 1)
        try sinks.sink(for: p.out).write(Self.lines(0, 2))
        try sinks.sink(for: p.dir + "/./out.jsonl").write(Self.lines(2, 4))
        try p.commit(ledger)
        #expect(try p.record()?.shared == false)
        #expect(try p.record()?.length == Int64(Self.lines(0, 4).count))
    }

    @Test("a rolled-back commit changes nothing: the next one records from the last baseline")
    func rolledBack() throws {
        let p = try Place()
        let (sinks, ledger) = try p.openSinks()
        defer { sinks.closeAll() }
        try sinks.sink(for: p.out).write(Self.lines(0, 3))
        struct Boom: Error {}
        let write = try ledger.takePending()
        #expect(throws: StoreError.self) {
            try p.store.write { db in
                try write?.write(db)
                throw Boom()
            }
        }
        ledger.pendingNotWritten()
        #expect(try p.record()?.length == 0)
        try p.commit(ledger)
        #expect(try p.record()?.length == Int64(Self.lines(0, 3).count))
        #expect(try p.record()?.shared == false)
    }
}
