import Foundation
import Testing
@testable import Lymph

/// `lymph serve`'s spool: progress recorded in the state file's commit lets a restart skip
/// entries whose work committed before their deletion did.
@Suite("spool progress")
struct SpoolProgressTests {
    @Test("entries recorded done in the state file are skipped and deleted at start")
    func skipsDone() async throws {
        let dir = Fixture.temporaryDirectory()
        let state = try StateStore.open(path: dir + "/state.sqlite")
        let spool = try SQLiteSpoolStore.open(path: dir + "/state.spool.sqlite")
        let seqs = try spool.append((1...5).map { Array(#"{"id":"evt_\#($0)"}"#.utf8) }, receivedAt: 0)
        // The worker finished the first three and committed, then died before the spool delete.
        let first = SpoolSource(backend: spool, deleter: spool, doorbell: Doorbell(), maxItemBytes: 1 << 20)
        first.batchLimit = 3
        _ = try await first.nextBatch(control: RunControl())
        first.batchFinished()
        let write = try first.takePending()
        try state.write { db in try write?.write(db) }
        #expect(try state.spoolDoneThrough() == seqs[2])
        let second = SpoolSource(backend: spool, deleter: spool, doorbell: Doorbell(), maxItemBytes: 1 << 20)
        #expect(try second.skipDone(recordedIn: state) == .skipped(3))
        #expect(try spool.depth().count == 2)
        let batch = try await second.nextBatch(control: RunControl())
        #expect(batch?.items.map(\.source.line) == seqs[3...].map { Int($0) })
    }

    @Test("a record past anything this spool gave (the spool file was replaced) is dropped, not trusted")
    func replacedSpool() async throws {
        let dir = Fixture.temporaryDirectory()
        let state = try StateStore.open(path: dir + "/state.sqlite")
        try state.write { db in try StateStore.recordSpoolProgress(db, doneThrough: 500) }
        let spool = try SQLiteSpoolStore.open(path: dir + "/state.spool.sqlite")
        _ = try spool.append([Array(#"{"id":"evt_1"}"#.utf8)], receivedAt: 0)
        let source = SpoolSource(backend: spool, deleter: spool, doorbell: Doorbell(), maxItemBytes: 1 << 20)
        #expect(try source.skipDone(recordedIn: state) == .recordDropped(doneThrough: 500))
        #expect(try state.spoolDoneThrough() == nil)
        #expect(try await source.nextBatch(control: RunControl())?.items.count == 1)
    }
}
