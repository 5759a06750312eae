import Foundation
import GRDB
import Testing
@testable import Lymph

@Suite("Dedup fingerprints saved with the keys")
struct DedupFingerprintTests {
    static let day = 86_400.0

    static func stage(_ store: StateStore, now: Double = Timestamp.now()) throws -> DedupStage {
        try DedupStage(
            key: .path(try JSONPath(parsing: "id")), window: 7 * day, scope: "dedup", stageIndex: 1, backing: .store(store), now: now)
    }

    /// Claims, finishes and commits `ids` through `stage`, as a run does.
    static func commit(_ stage: DedupStage, _ store: StateStore, _ ids: [String]) async throws {
        let outcomes = try await stage.process(ids.map { Fixture.event(id: $0) }, context: Fixture.context(now: Timestamp.now()))
        let claims = outcomes.compactMap { outcome -> DedupClaim? in
            if case .claim(let claim) = outcome { return claim }
            return nil
        }
        #expect(claims.count == ids.count)
        try stage.batchDidFinish(FinishedBatch(completed: claims, failed: [], now: Timestamp.now()))
        let write = try stage.takePending()
        try store.write { db in try write?.write(db) }
        stage.pendingWritten()
    }

    static func labels(_ stage: DedupStage, _ ids: [String]) async throws -> [String] {
        try await stage.process(ids.map { Fixture.event(id: $0) }, context: Fixture.context(now: Timestamp.now())).map(\.label)
    }

    /// Keys written as a build of Lymph that saves no fingerprints writes them.
    static func insertWithoutFingerprints(_ store: StateStore, generation: Int64, _ ids: [String], at time: Double) throws {
        let scope = try store.dedupScope("dedup")
        try store.write { db in
            try StateStore.dedupInsert(db, scope: scope, generation: generation, keys: ids.map { Array($0.utf8) }, fingerprints: nil, at: time)
        }
    }

    static func savedRows(_ store: StateStore) throws -> Int {
        try store.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM lymph_dedup_fingerprints") ?? 0 }
    }

    @Test("SipHash-2-4 gives the published vectors (key 00..0f, messages 00.. of 0, 1, 8 and 15 bytes), and SipHash-1-3, the fingerprints', gives its own")
    func sipHashVectors() {
        let k0 = UInt64(littleEndian: 0x0706_0504_0302_0100)
        let k1 = UInt64(littleEndian: 0x0f0e_0d0c_0b0a_0908)
        func sip24(_ length: Int) -> UInt64 {
            let message = (0..<length).map { UInt8($0) }
            return message.withUnsafeBytes { DedupFingerprinter.sipHash($0, k0: k0, k1: k1, compressionRounds: 2, finalizationRounds: 4) }
        }
        #expect(sip24(0) == 0x726f_db47_dd0e_0e31)
        #expect(sip24(1) == 0x74f8_39c5_93dc_67fd)
        #expect(sip24(8) == 0x93f5_f579_9a93_2462)
        #expect(sip24(15) == 0xa129_ca61_49be_45e5)
        // SipHash-1-3, the fingerprints' function, pinned: fingerprints a store holds were made by
        // it, and a change must raise `DedupFingerprinter.version`.
        #expect(
            [UInt8]().withUnsafeBytes { DedupFingerprinter.sipHash($0, k0: k0, k1: k1, compressionRounds: 1, finalizationRounds: 3) } == 0xabac_0158_050f_c4dc)
        #expect(DedupFingerprinter(k0: k0, k1: k1).fingerprint((0..<15).map { UInt8($0) }) == 0xd320_d86d_2a51_9956)
        #expect(DedupFingerprinter(k0: 1, k1: 2).fingerprint("evt_1") == 0xb69a_c428_8824_8135)
        #expect(DedupFingerprinter.version == 1)
        // The same key gives the same fingerprints; another key others.
        let a = DedupFingerprinter(k0: 1, k1: 2)
        #expect(a.fingerprint("evt_1") == DedupFingerprinter(k0: 1, k1: 2).fingerprint(Array("evt_1".utf8)))
        #expect(a.fingerprint("evt_1") != DedupFingerprinter(k0: 1, k1: 3).fingerprint("evt_1"))
        #expect(a.fingerprint("evt_1") != a.fingerprint("evt_2"))
    }

    @Test("a run's commits save their keys' fingerprints: the next run loads them under the same key without reading a key, and drops their duplicates")
    func savedFingerprintsAreLoaded() async throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/state.sqlite"
        let ids = (0..<3_000).map { "evt_\($0)" }
        let first: DedupFingerprinter
        do {
            let store = try StateStore.open(path: path)
            let stage = try Self.stage(store)
            first = try #require(stage.generations).fingerprinter
            try await Self.commit(stage, store, Array(ids[..<1_000]))
            try await Self.commit(stage, store, Array(ids[1_000...]))
            #expect(try Self.savedRows(store) == 2)
        }
        let store = try StateStore.open(path: path)
        let scope = try store.dedupScope("dedup")
        #expect(try store.dedupFingerprinter(scope: scope) == first)
        // Every generation's keys are accounted for: nothing to make again.
        #expect(try store.refreshDedupFingerprints(scope: scope, fingerprinter: first) == 0)
        let stage = try Self.stage(store)
        let generations = try #require(stage.generations)
        #expect(generations.all.mayContain(ids.map(first.fingerprint)).allSatisfy { $0 })
        #expect(try await Self.labels(stage, ["evt_0", "evt_new", "evt_2999"]) == ["drop(duplicate)", "claim", "drop(duplicate)"])
    }

    @Test("keys written without their fingerprints into a generation that has some are found: the generation's fingerprints are made again from its keys")
    func keysWithoutFingerprintsAreNotMissed() async throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/state.sqlite"
        do {
            let store = try StateStore.open(path: path)
            try await Self.commit(try Self.stage(store), store, ["evt_a", "evt_b"])
            // Another build of Lymph adds keys to the same generation and saves no fingerprints.
            try Self.insertWithoutFingerprints(store, generation: 0, ["evt_c", "evt_d"], at: Timestamp.now())
        }
        let store = try StateStore.open(path: path)
        let stage = try Self.stage(store)
        #expect(try await Self.labels(stage, ["evt_a", "evt_c", "evt_d", "evt_new"]) == ["drop(duplicate)", "drop(duplicate)", "drop(duplicate)", "claim"])
        // Made again once: the next build finds every key accounted for.
        let scope = try store.dedupScope("dedup")
        #expect(try store.refreshDedupFingerprints(scope: scope, fingerprinter: try #require(stage.generations).fingerprinter) == 0)
        #expect(try store.read { db in try Int.fetchOne(db, sql: "SELECT SUM(keys) FROM lymph_dedup_fingerprints") } == 4)
    }

    @Test(
        "a generation number used again for other keys (purged by a build that left its fingerprints), with as many keys, is made again: its first time differs"
    )
    func reusedGenerationNumberIsMadeAgain() async throws {
        let store = try StateStore.open(path: ":memory:")
        let scope = try store.dedupScope("dedup")
        let fingerprinter = try store.dedupFingerprinter(scope: scope)
        let then = Timestamp.now() - 3 * Self.day
        try store.write { db in
            try StateStore.dedupInsert(
                db, scope: scope, generation: 0, keys: [Array("evt_old".utf8)], fingerprints: [fingerprinter.fingerprint("evt_old")], at: then)
            // Purged by a build that knew nothing of fingerprints: the keys and the generation go, the fingerprints stay.
            try db.execute(sql: "DELETE FROM lymph_dedup")
            try db.execute(sql: "DELETE FROM lymph_dedup_generation")
        }
        try Self.insertWithoutFingerprints(store, generation: 0, ["evt_now"], at: Timestamp.now())
        #expect(try store.refreshDedupFingerprints(scope: scope, fingerprinter: fingerprinter) == 1)
        let stage = try Self.stage(store)
        #expect(try await Self.labels(stage, ["evt_now"]) == ["drop(duplicate)"])
    }

    @Test("fingerprints of generations the store no longer has, and of a purged one, go")
    func orphanAndPurgedFingerprintsGo() async throws {
        let store = try StateStore.open(path: ":memory:")
        let scope = try store.dedupScope("dedup")
        let fingerprinter = try store.dedupFingerprinter(scope: scope)
        let now = Timestamp.now()
        try store.write { db in
            try StateStore.dedupInsert(
                db, scope: scope, generation: 0, keys: [Array("evt_1".utf8)], fingerprints: [fingerprinter.fingerprint("evt_1")], at: now - 10 * Self.day)
            try StateStore.dedupInsert(
                db, scope: scope, generation: 1, keys: [Array("evt_2".utf8)], fingerprints: [fingerprinter.fingerprint("evt_2")], at: now)
            try StateStore.saveFingerprints(db, scope: scope, generation: 9, [1, 2, 3], counting: 3, firstAt: now)
        }
        let generations = { try store.read { db in try Int64.fetchAll(db, sql: "SELECT generation FROM lymph_dedup_fingerprints ORDER BY generation") } }
        #expect(try store.dedupPurge(scope: scope, before: now - 7 * Self.day) == 1)
        // The purge takes its generation's rows with it; the next build, the rows of a generation never there.
        #expect(try generations() == [1, 9])
        #expect(try store.refreshDedupFingerprints(scope: scope, fingerprinter: fingerprinter) == 0)
        #expect(try generations() == [1])
    }

    @Test("a generation of more keys than a row holds is saved again in several rows, its count once")
    func largeGenerationIsSavedInRows() async throws {
        let store = try StateStore.open(path: ":memory:")
        let ids = (0..<(StateStore.fingerprintsPerRow + 100)).map { "evt_\($0)" }
        try Self.insertWithoutFingerprints(store, generation: 0, ids, at: Timestamp.now())
        let stage = try Self.stage(store)
        let rows = try store.read { db in try Row.fetchAll(db, sql: "SELECT keys, length(fingerprints) / 8 FROM lymph_dedup_fingerprints ORDER BY rowid") }
        #expect(rows.map { $0[0] as Int } == [0, ids.count])
        #expect(rows.map { $0[1] as Int } == [StateStore.fingerprintsPerRow, 100])
        let generations = try #require(stage.generations)
        #expect(generations.all.mayContain(ids.map(generations.fingerprinter.fingerprint)).allSatisfy { $0 })
        #expect(try await Self.labels(stage, ["evt_0", "evt_\(ids.count - 1)", "evt_new"]) == ["drop(duplicate)", "drop(duplicate)", "claim"])
    }

    @Test("a generation saved by many small commits is saved again in one row when the filters are next built")
    func manySmallCommitsAreMerged() async throws {
        let store = try StateStore.open(path: ":memory:")
        let scope = try store.dedupScope("dedup")
        let commits = StateStore.fingerprintRowsPerGeneration + 6
        do {
            let stage = try Self.stage(store)
            for n in 0..<commits { try await Self.commit(stage, store, ["evt_\(n)"]) }
        }
        #expect(try Self.savedRows(store) == commits)
        let fingerprinter = try store.dedupFingerprinter(scope: scope)
        #expect(try store.refreshDedupFingerprints(scope: scope, fingerprinter: fingerprinter) == 1)
        #expect(try Self.savedRows(store) == 1)
        #expect(try store.refreshDedupFingerprints(scope: scope, fingerprinter: fingerprinter) == 0)
        let generations = try store.buildDedupGenerations(scope: scope)
        #expect((0..<commits).allSatisfy { generations.candidates(fingerprinter.fingerprint("evt_\($0)")) == [0] })
    }

    @Test("without the key they were made with, saved fingerprints are of no use: a new key, and every generation made again")
    func lostKeyMakesEveryGenerationAgain() async throws {
        let store = try StateStore.open(path: ":memory:")
        let scope = try store.dedupScope("dedup")
        try await Self.commit(try Self.stage(store), store, ["evt_a"])
        let before = try store.dedupFingerprinter(scope: scope)
        try store.write { db in try db.execute(sql: "DELETE FROM lymph_dedup_fingerprint_key") }
        let generations = try store.buildDedupGenerations(scope: scope)
        #expect(generations.fingerprinter != before)
        #expect(generations.candidates(generations.fingerprinter.fingerprint("evt_a")) == [0])
    }

    @Test("saved fingerprints that are not a whole number of fingerprints (a store changed by hand) are made again from the keys")
    func damagedFingerprintsAreMadeAgain() async throws {
        let store = try StateStore.open(path: ":memory:")
        let scope = try store.dedupScope("dedup")
        try await Self.commit(try Self.stage(store), store, ["evt_a", "evt_b"])
        try store.write { db in try db.execute(sql: "UPDATE lymph_dedup_fingerprints SET fingerprints = substr(fingerprints, 1, 11)") }
        let generations = try store.buildDedupGenerations(scope: scope)
        #expect(generations.candidates(generations.fingerprinter.fingerprint("evt_a")) == [0])
        #expect(generations.candidates(generations.fingerprinter.fingerprint("evt_b")) == [0])
        #expect(try store.read { db in try Int.fetchOne(db, sql: "SELECT length(fingerprints) FROM lymph_dedup_fingerprints") } == 16)
    }

    @Test("fingerprints saved by another version of the function are made again under a new key")
    func otherVersionIsMadeAgain() async throws {
        let store = try StateStore.open(path: ":memory:")
        let scope = try store.dedupScope("dedup")
        try await Self.commit(try Self.stage(store), store, ["evt_a"])
        let before = try store.dedupFingerprinter(scope: scope)
        try store.write { db in try db.execute(sql: "UPDATE lymph_dedup_fingerprint_key SET version = version + 1") }
        let generations = try store.buildDedupGenerations(scope: scope)
        #expect(generations.fingerprinter != before)
        #expect(generations.candidates(generations.fingerprinter.fingerprint("evt_a")) == [0])
        #expect(try store.read { db in try Int64.fetchOne(db, sql: "SELECT version FROM lymph_dedup_fingerprint_key") } == DedupFingerprinter.version)
    }

    @Test("the ticket book's commits save its source events' fingerprints too: reopened, nothing is made again")
    func ticketBookSavesFingerprints() throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/state.sqlite"
        do {
            let store = try StateStore.open(path: path)
            let book = TicketBook(store: store)
            for n in 0..<3 {
                _ = try book.apply(
                    TicketRequest(
                        equipmentID: "pump_\(n)", action: "Replace bearing", priority: .high, dueBy: 1_800_000_000, sourceEventID: "evt_\(n)",
                        at: 1_790_000_000))
            }
            let write = try #require(book.takePending())
            try store.write { db in try write.write(db) }
            book.pendingWritten()
        }
        let store = try StateStore.open(path: path)
        let scope = try store.dedupScope(TicketBook.sourceScope)
        #expect(try store.read { db in try Int.fetchOne(db, sql: "SELECT SUM(keys) FROM lymph_dedup_fingerprints WHERE scope = ?", arguments: [scope]) } == 3)
        #expect(try store.refreshDedupFingerprints(scope: scope, fingerprinter: store.dedupFingerprinter(scope: scope)) == 0)
    }

    @Test(
        "values that are not of their column's type in the dedup tables (a store changed by hand) stop the filters' build with the store's error, not the process"
    )
    func valuesOfAnotherTypeAreAnError() async throws {
        for change in ["UPDATE lymph_dedup_generation SET keys = 'abc'", "UPDATE lymph_dedup_generation SET oldest = 'x'"] {
            let store = try StateStore.open(path: ":memory:")
            let scope = try store.dedupScope("dedup")
            try await Self.commit(try Self.stage(store), store, ["evt_a"])
            try store.write { db in try db.execute(sql: change) }
            #expect(throws: StoreError.self, "\(change)") { try store.buildDedupGenerations(scope: scope) }
        }
        // The scope's key row is made again, with its fingerprints, like one of another version.
        let store = try StateStore.open(path: ":memory:")
        let scope = try store.dedupScope("dedup")
        try await Self.commit(try Self.stage(store), store, ["evt_a"])
        try store.write { db in try db.execute(sql: "UPDATE lymph_dedup_fingerprint_key SET k0 = 'x'") }
        let generations = try store.buildDedupGenerations(scope: scope)
        #expect(generations.candidates(generations.fingerprinter.fingerprint("evt_a")) == [0])
    }

    @Test("a generation's count that is not Lymph's (changed by hand) sizes no filter: they are sized by the fingerprints saved, and the keys are still found")
    func impossibleCountSizesNoFilter() async throws {
        for count in ["1000000000000000", "9223372036854775807", "-5"] {
            let store = try StateStore.open(path: ":memory:")
            let scope = try store.dedupScope("dedup")
            try await Self.commit(try Self.stage(store), store, ["evt_a", "evt_b"])
            try store.write { db in try db.execute(sql: "UPDATE lymph_dedup_generation SET keys = \(count)") }
            let generations = try store.buildDedupGenerations(scope: scope)
            #expect(generations.all.byteCount <= 2 << 20, "\(count)")
            #expect(generations.generationFilterBytes <= 2 << 20, "\(count)")
            #expect(generations.candidates(generations.fingerprinter.fingerprint("evt_b")) == [0], "\(count)")
            // Keys go on being assigned without overflowing the count.
            #expect(generations.assign([generations.fingerprinter.fingerprint("evt_c")], at: Timestamp.now()) >= 0)
        }
    }

    @Test("a generation number out of Lymph's range (changed by hand) stops the build with the store's error: counting on from it would overflow")
    func generationOutOfRangeIsAnError() async throws {
        let store = try StateStore.open(path: ":memory:")
        let scope = try store.dedupScope("dedup")
        try await Self.commit(try Self.stage(store), store, ["evt_a"])
        try store.write { db in
            for table in ["lymph_dedup_generation", "lymph_dedup", "lymph_dedup_fingerprints"] {
                try db.execute(sql: "UPDATE \(table) SET generation = 9223372036854775807")
            }
        }
        let error = try #require(throws: StoreError.self) { try store.buildDedupGenerations(scope: scope) }
        #expect(error.description.contains("changed by something other than Lymph"))
    }

    @Test("a closed generation's filter is the size of its keys, the open one's a full generation's: a long window of quiet days costs memory by its keys")
    func closedGenerationsAreSizedByTheirKeys() throws {
        let store = try StateStore.open(path: ":memory:")
        let scope = try store.dedupScope("dedup")
        let fingerprinter = try store.dedupFingerprinter(scope: scope)
        // The last of the days a minute ago, so its generation is still open.
        let start = Timestamp.now() - 29 * Self.day - 60
        // Two keys a day for 30 days, a generation each, as a quiet stream writes them.
        try store.write { db in
            for day in 0..<30 {
                let keys = ["evt_\(day)_a", "evt_\(day)_b"]
                try StateStore.dedupInsert(
                    db, scope: scope, generation: Int64(day), keys: keys.map { Array($0.utf8) }, fingerprints: keys.map { fingerprinter.fingerprint($0) },
                    at: start + Double(day) * Self.day)
            }
        }
        let generations = try store.buildDedupGenerations(scope: scope)
        // 29 closed generations of at least smallestFilter keys, and the open one of a full generation's.
        let smallest = DedupGenerations.smallestFilter * DedupKeyFilter.bitsPerKey / 8
        let full = DedupGenerations.keysPerGeneration * DedupKeyFilter.bitsPerKey / 8
        #expect(generations.generationFilterBytes <= 29 * smallest + full + 64 * 30)
        #expect(generations.candidates(fingerprinter.fingerprint("evt_3_b")) == [3])
        #expect(generations.candidates(fingerprinter.fingerprint("evt_29_a")) == [29])
        // The open generation still takes a full generation's keys without a layer more.
        let more = (0..<(DedupGenerations.keysPerGeneration - 2)).map { fingerprinter.fingerprint("evt_more_\($0)") }
        #expect(generations.assign(more, at: Timestamp.now()) == 29)
        #expect(generations.candidates(more[more.count - 1]) == [29])
    }

    @Test(
        "saved fingerprints of the right number that are not the keys' (zeroed, cut short, the scope's key changed: a store changed by hand) are found by the sample of each generation's keys and made again"
    )
    func wrongFingerprintsAreMadeAgain() async throws {
        let ids = (0..<1_000).map { "evt_\($0)" }
        for change in [
            "UPDATE lymph_dedup_fingerprints SET fingerprints = zeroblob(length(fingerprints))",
            "UPDATE lymph_dedup_fingerprints SET fingerprints = substr(fingerprints, 1, 4000)",
            "UPDATE lymph_dedup_fingerprint_key SET k0 = k0 / 2 + 1",
        ] {
            let dir = Fixture.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let path = dir + "/state.sqlite"
            do {
                let store = try StateStore.open(path: path)
                try await Self.commit(try Self.stage(store), store, ids)
                try store.write { db in try db.execute(sql: change) }
            }
            let store = try StateStore.open(path: path)
            let labels = try await Self.labels(try Self.stage(store), ids)
            #expect(labels.filter { $0 == "drop(duplicate)" }.count == ids.count, "\(change)")
        }
    }

    @Test(
        "a stage that runs for longer than the purge interval (lymph serve) purges keys older than its window in a commit, not only at start, and forgets their generation's filter"
    )
    func longRunningStagePurges() async throws {
        let store = try StateStore.open(path: ":memory:")
        let scope = try store.dedupScope("dedup")
        let fingerprinter = try store.dedupFingerprinter(scope: scope)
        let now = Timestamp.now()
        // Keys an hour older than a day's window now, but within it when the stage started two hours ago.
        let old = (0..<10).map { "evt_old_\($0)" }
        try store.write { db in
            try StateStore.dedupInsert(
                db, scope: scope, generation: 0, keys: old.map { Array($0.utf8) }, fingerprints: old.map { fingerprinter.fingerprint($0) },
                at: now - Self.day - 3_600)
        }
        let stage = try DedupStage(
            key: .path(try JSONPath(parsing: "id")), window: Self.day, scope: "dedup", stageIndex: 1, backing: .store(store), now: now - 7_200)
        let generations = try #require(stage.generations)
        #expect(generations.candidates(fingerprinter.fingerprint("evt_old_3")) == [0])
        try await Self.commit(stage, store, ["evt_new_1"])
        #expect(try store.dedupCount(scope: scope) == 1)
        #expect(generations.candidates(fingerprinter.fingerprint("evt_old_3")) == [])
        #expect(generations.candidates(fingerprinter.fingerprint("evt_new_1")) == [1])
        // The next purge is an interval (GenerationPurgeSchedule.interval) later: keys that age out meanwhile stay until then.
        try store.write { db in
            try StateStore.dedupInsert(db, scope: scope, generation: 0, keys: [Array("evt_old_again".utf8)], fingerprints: nil, at: now - 2 * Self.day)
        }
        try await Self.commit(stage, store, ["evt_new_2"])
        #expect(try store.dedupCount(scope: scope) == 3)
    }
}
