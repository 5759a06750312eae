import Foundation
import GRDB
import Testing
@testable import Lymph

@Suite("Dedup key filter")
struct DedupKeyFilterTests {
    static func keys(_ range: Range<Int>, prefix: String = "evt_") -> [[UInt8]] {
        range.map { Array("\(prefix)\($0)".utf8) }
    }

    @Test("no false negatives, across the layers it adds as it fills")
    func noFalseNegatives() {
        let filter = DedupKeyFilter(expectedKeys: 0, minimumCapacity: 1_000)
        let inserted = Self.keys(0..<10_000).map(DedupKeyFilter.fingerprint)
        filter.insert(inserted)
        #expect(filter.layerCount == 5)  // 1,000 + 1,500 + 2,250 + 3,375 + 5,062
        #expect(filter.mayContain(inserted).allSatisfy { $0 })
    }

    @Test("few false positives on keys never inserted")
    func falsePositiveRate() {
        let filter = DedupKeyFilter(expectedKeys: 0, minimumCapacity: 20_000)
        filter.insert(Self.keys(0..<20_000).map(DedupKeyFilter.fingerprint))
        let hits = filter.mayContain(Self.keys(0..<100_000, prefix: "new_").map(DedupKeyFilter.fingerprint)).filter { $0 }.count
        // 10 bits a key in 64-byte blocks: about 1%.
        #expect(hits < 3_000, "\(hits) false positives in 100,000")
    }

    static func stage(_ store: StateStore) throws -> DedupStage {
        try DedupStage(
            key: .path(try JSONPath(parsing: "id")), window: 7 * 86_400, scope: "dedup", stageIndex: 1, backing: .store(store),
            now: Timestamp.now())
    }

    @Test("a key the filter may hold but the store does not (a false positive) still passes")
    func falsePositivePasses() async throws {
        let store = try StateStore.open(path: ":memory:")
        let stage = try Self.stage(store)
        let generations = try #require(stage.generations)
        let fingerprint = generations.fingerprinter.fingerprint(Array("evt_fp".utf8))
        generations.all.insert([fingerprint])
        #expect(generations.all.mayContain([fingerprint]) == [true])
        let outcomes = try await stage.process([Fixture.event(id: "evt_fp"), Fixture.event(id: "evt_new")], context: Fixture.context(now: Timestamp.now()))
        #expect(outcomes.map(\.label) == ["claim", "claim"])
    }

    @Test("keys committed in an earlier run are in the filter the next run builds, and their events are dropped")
    func builtFromTheStore() async throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/state.sqlite"
        do {
            let store = try StateStore.open(path: path)
            let keys = Self.keys(0..<5_000)
            let scope = try store.dedupScope("dedup")
            try store.write { db in try StateStore.dedupInsert(db, scope: scope, keys: keys, at: Timestamp.now()) }
        }
        let store = try StateStore.open(path: path)
        let stage = try Self.stage(store)
        let generations = try #require(stage.generations)
        #expect(generations.all.mayContain(Self.keys(0..<5_000).map(generations.fingerprinter.fingerprint)).allSatisfy { $0 })
        let outcomes = try await stage.process(
            [Fixture.event(id: "evt_17"), Fixture.event(id: "evt_new"), Fixture.event(id: "evt_4999")], context: Fixture.context(now: Timestamp.now()))
        #expect(outcomes.map(\.label) == ["drop(duplicate)", "claim", "drop(duplicate)"])
    }

    @Test("a key committed by this run goes into the filter with its commit, so a later duplicate is dropped")
    func committedKeysJoinTheFilter() async throws {
        let store = try StateStore.open(path: ":memory:")
        let stage = try Self.stage(store)
        let context = Fixture.context(now: Timestamp.now())
        let first = try await stage.process([Fixture.event(id: "evt_a")], context: context)
        guard case .claim(let claim) = first[0] else {
            Issue.record("expected a claim, got \(first[0].label)")
            return
        }
        try stage.batchDidFinish(FinishedBatch(completed: [claim], failed: [], now: Timestamp.now()))
        let write = try stage.takePending()
        try store.write { db in try write?.write(db) }
        stage.pendingWritten()
        let generations = try #require(stage.generations)
        #expect(generations.all.mayContain([generations.fingerprinter.fingerprint(Array("evt_a".utf8))]) == [true])
        let again = try await stage.process([Fixture.event(id: "evt_a")], context: context)
        #expect(again.map(\.label) == ["drop(duplicate)"])
    }

    @Test("commit groups are sorted in SQLite's own order of blobs, by whole keys and by their first 16 bytes first")
    func blobOrderIsSQLites() throws {
        var generator = SystemRandomNumberGenerator()
        let short: [[UInt8]] = (0..<300).map { _ in
            (0..<Int.random(in: 0...6, using: &generator)).map { _ in UInt8.random(in: 0...3, using: &generator) }
        }
        // Around the 16 bytes the sort compares as integers: equal that far and then not,
        // ending inside them or going on with zeros.
        let long: [[UInt8]] = (0..<300).map { _ in
            let head = [UInt8](repeating: 7, count: Int.random(in: 12...16, using: &generator))
            let tail: [UInt8] = (0..<Int.random(in: 0...6, using: &generator)).map { _ in UInt8.random(in: 0...2, using: &generator) }
            return head + tail
        }
        let edges: [[UInt8]] = [
            [], [0], [0, 0], [255], [1, 2, 3], [1, 2],
            [UInt8](repeating: 7, count: 16), [UInt8](repeating: 7, count: 16) + [0], [UInt8](repeating: 7, count: 15) + [0, 0, 0],
        ]
        let keys = edges + short + long
        let queue = try DatabaseQueue()
        let sqliteOrder = try queue.write { db in
            try db.execute(sql: "CREATE TABLE k (n INTEGER, b BLOB NOT NULL)")
            for (n, key) in keys.enumerated() { try db.execute(sql: "INSERT INTO k VALUES (?, ?)", arguments: [n, Data(key)]) }
            return try Data.fetchAll(db, sql: "SELECT b FROM k ORDER BY b").map { [UInt8]($0) }
        }
        #expect(keys.sorted(by: StateStore.blobOrder) == sqliteOrder)
        #expect(StateStore.blobOrderIndices(keys).map { keys[$0] } == sqliteOrder)
    }

    static func request(_ source: String, equipment: String = "pump_001") -> TicketRequest {
        TicketRequest(
            equipmentID: equipment, action: "Replace bearing", priority: .high, dueBy: 1_800_000_000, sourceEventID: source, at: 1_790_000_000)
    }

    @Test("ticket book: a source event the filter may know but the store does not (a false positive) still applies")
    func ticketSourceFalsePositive() throws {
        let store = try StateStore.open(path: ":memory:")
        let book = TicketBook(store: store)
        guard case .opened = try book.apply(Self.request("evt_1")) else {
            Issue.record("the first request did not open a ticket")
            return
        }
        // The filter exists now (built on the first apply): make it claim a source never applied.
        let generations = try #require(book.sourceGenerationsForTests)
        let fingerprint = generations.fingerprinter.fingerprint(Array("evt_fp".utf8))
        generations.all.insert([fingerprint])
        #expect(generations.all.mayContain(fingerprint))
        guard case .merged = try book.apply(Self.request("evt_fp")) else {
            Issue.record("a false positive was taken for an applied source")
            return
        }
    }

    @Test("ticket book: a source committed before, in an earlier run, applies once")
    func ticketSourceCommitted() throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/state.sqlite"
        do {
            let store = try StateStore.open(path: path)
            let book = TicketBook(store: store)
            _ = try book.apply(Self.request("evt_1"))
            let write = book.takePending()
            try store.write { db in try write?.write(db) }
            book.pendingWritten()
            #expect(try book.apply(Self.request("evt_1")) == .alreadyApplied)
        }
        let book = TicketBook(store: try StateStore.open(path: path))
        #expect(try book.apply(Self.request("evt_1")) == .alreadyApplied)
        guard case .merged = try book.apply(Self.request("evt_2")) else {
            Issue.record("a new source did not merge into the open ticket")
            return
        }
    }
}
