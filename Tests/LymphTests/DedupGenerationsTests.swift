import Foundation
import GRDB
import Testing
@testable import Lymph

@Suite("Dedup key generations")
struct DedupGenerationsTests {
    static let day = 86_400.0

    static func stage(_ store: StateStore, now: Double = Timestamp.now()) throws -> DedupStage {
        try DedupStage(
            key: .path(try JSONPath(parsing: "id")), window: 7 * day, scope: "dedup", stageIndex: 1, backing: .store(store), now: now)
    }

    static func insert(_ store: StateStore, generation: Int64, _ ids: [String], at time: Double) throws {
        let scope = try store.dedupScope("dedup")
        try store.write { db in
            try StateStore.dedupInsert(db, scope: scope, generation: generation, keys: ids.map { Array($0.utf8) }, fingerprints: nil, at: time)
        }
    }

    static func labels(_ stage: DedupStage, _ ids: [String]) async throws -> [String] {
        try await stage.process(ids.map { Fixture.event(id: $0) }, context: Fixture.context(now: Timestamp.now())).map(\.label)
    }

    @Test("a key every filter may hold but the store does not (a false positive in both) is looked up and passes")
    func falsePositiveInTheGenerationPasses() async throws {
        let store = try StateStore.open(path: ":memory:")
        let stage = try Self.stage(store)
        let generations = try #require(stage.generations)
        let fingerprint = generations.fingerprinter.fingerprint(Array("evt_fp".utf8))
        let generation = generations.assign([fingerprint], at: Timestamp.now())
        #expect(generations.candidates([fingerprint]) == [[generation]])
        #expect(try await Self.labels(stage, ["evt_fp", "evt_new"]) == ["claim", "claim"])
    }

    @Test("keys in older generations are found, newest generation first, past a false positive in a newer one")
    func keysAcrossGenerations() async throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/state.sqlite"
        let now = Timestamp.now()
        do {
            let store = try StateStore.open(path: path)
            try Self.insert(store, generation: 0, ["evt_a", "evt_b"], at: now - 2 * Self.day)
            try Self.insert(store, generation: 1, ["evt_c"], at: now - Self.day)
        }
        let store = try StateStore.open(path: path)
        let stage = try Self.stage(store)
        let generations = try #require(stage.generations)
        #expect(generations.generationCount == 2)
        // Generation 1 is more than a day old: the next commit opens generation 2. Its filter
        // claims evt_a, which only generation 0 holds.
        #expect(generations.assign([generations.fingerprinter.fingerprint(Array("evt_a".utf8))], at: now) == 2)
        #expect(generations.candidates([generations.fingerprinter.fingerprint(Array("evt_a".utf8))]) == [[2, 0]])
        #expect(try await Self.labels(stage, ["evt_a", "evt_c", "evt_new"]) == ["drop(duplicate)", "drop(duplicate)", "claim"])
    }

    @Test("a key seen again after its window sits in a newer generation, whose time counts")
    func newestGenerationHasTheLatestTime() async throws {
        let store = try StateStore.open(path: ":memory:")
        try Self.insert(store, generation: 0, ["evt_old", "evt_again"], at: Timestamp.now() - 6.5 * Self.day)
        try Self.insert(store, generation: 1, ["evt_again"], at: Timestamp.now() - 60)
        // The stage's window starts a week ago; a day from now evt_old is out of it, evt_again not.
        let stage = try Self.stage(store, now: Timestamp.now())
        let later = try await stage.process(
            [Fixture.event(id: "evt_old"), Fixture.event(id: "evt_again")], context: Fixture.context(now: Timestamp.now() + Self.day))
        #expect(later.map(\.label) == ["claim", "drop(duplicate)"])
    }

    @Test("a purge drops the generations whose every key is older than the window, and only those")
    func purgeDropsWholeGenerations() async throws {
        let store = try StateStore.open(path: ":memory:")
        let now = Timestamp.now()
        try Self.insert(store, generation: 0, ["evt_1", "evt_2", "evt_3"], at: now - 10 * Self.day)
        try Self.insert(store, generation: 1, ["evt_4"], at: now - 9 * Self.day)
        try Self.insert(store, generation: 1, ["evt_5"], at: now - 2 * Self.day)
        let scope = try store.dedupScope("dedup")
        #expect(try store.dedupPurge(scope: scope, before: now - 7 * Self.day) == 3)
        #expect(try store.dedupCount(scope: scope) == 2)
        let stage = try Self.stage(store, now: now)
        // evt_4 is out of the window but kept with its generation: it still counts as new.
        #expect(try await Self.labels(stage, ["evt_1", "evt_4", "evt_5"]) == ["claim", "claim", "drop(duplicate)"])
    }

    @Test("saved fingerprints loaded in several parts at once, each on its own connection, give the filters one load gives")
    func partsReadAtOnceBuildTheSameFilters() throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try StateStore.open(path: dir + "/state.sqlite")
        let now = Timestamp.now()
        // Five generations of different sizes, numbered with a gap (a purged one), each saved
        // by three commits with their fingerprints, but for one written without (made again).
        let sizes: [(Int64, Int)] = [(0, 3_000), (1, 500), (3, 4_000), (4, 1_200), (5, 2_000)]
        var keys: [(generation: Int64, id: String)] = []
        let scope = try store.dedupScope("dedup")
        let fingerprinter = try store.dedupFingerprinter(scope: scope)
        for (generation, count) in sizes {
            let ids = (0..<count).map { "evt_\(generation)_\($0)" }
            if generation == 3 {
                try Self.insert(store, generation: generation, ids, at: now)
            } else {
                for part in 0..<3 {
                    let commit = ids[(part * count / 3)..<((part + 1) * count / 3)].map { Array($0.utf8) }
                    try store.write { db in
                        try StateStore.dedupInsert(
                            db, scope: scope, generation: generation, keys: commit, fingerprints: commit.map(fingerprinter.fingerprint), at: now)
                    }
                }
            }
            keys += ids.map { (generation, $0) }
        }
        #expect(try store.refreshDedupFingerprints(scope: scope, fingerprinter: fingerprinter) == 1)
        let whole = try store.buildDedupGenerations(scope: scope, parts: 1)
        for parts in [2, 3, 5] {
            let split = try store.buildDedupGenerations(scope: scope, parts: parts)
            #expect(split.generationCount == sizes.count)
            #expect(split.filterByteCount == whole.filterByteCount)
            #expect(split.all.byteCount == whole.all.byteCount)
            // No key is missed, each is found in its own generation, and every answer (for stored
            // keys and for keys never stored, false positives included) is the one-read filters'.
            for (generation, id) in keys {
                let candidates = split.candidates(split.fingerprinter.fingerprint(id))
                #expect(candidates.contains(generation), "\(id) not a candidate of generation \(generation) with \(parts) parts")
                #expect(candidates == whole.candidates(whole.fingerprinter.fingerprint(id)))
            }
            let fresh = (0..<20_000).map { whole.fingerprinter.fingerprint("new_\($0)") }
            #expect(split.all.mayContain(fresh) == whole.all.mayContain(fresh))
            #expect(split.candidates(fresh) == whole.candidates(fresh))
            // The next commit group goes where the one-read filters would put it.
            #expect(split.assign([1], at: now) == whole.assign([1], at: now))
        }
    }

    @Test("the parts of a scan cover every generation number once, with about as many keys each")
    func partRangesCoverEveryGeneration() {
        let generations = (0..<10).map { DedupGenerations.Scanned(generation: Int64($0 * 2), count: 100, oldest: nil, saved: 100) }
        #expect(DedupGenerations.partRanges(generations, parts: 1) == [Int64.min...Int64.max])
        #expect(DedupGenerations.partRanges([generations[0]], parts: 4) == [Int64.min...Int64.max])
        let two = DedupGenerations.partRanges(generations, parts: 2)
        #expect(two == [Int64.min...8, 9...Int64.max])
        for parts in 2...12 {
            let ranges = DedupGenerations.partRanges(generations, parts: parts)
            #expect(ranges.count == min(parts, generations.count))
            #expect(ranges.first?.lowerBound == Int64.min && ranges.last?.upperBound == Int64.max)
            for (a, b) in zip(ranges, ranges.dropFirst()) { #expect(a.upperBound + 1 == b.lowerBound) }
            for range in ranges { #expect(generations.contains { range.contains($0.generation) }) }
        }
    }

    @Test("each full commit group goes to a generation of its own, smaller ones share, and a closed generation's filter is the size of its keys")
    func fullCommitGroupsGetTheirOwnGeneration() throws {
        let generations = try DedupGenerations.built(generations: [], fingerprinter: .random()) { _, _ in }
        let now = Timestamp.now()
        var next: UInt64 = 0
        func keys(_ count: Int) -> [UInt64] {
            (0..<count).map { _ in
                next += 1
                return next &* 0x9E37_79B9_7F4A_7C15
            }
        }
        let first = keys(PipelineRunner.commitEvery)
        #expect(generations.assign(first, at: now) == 0)
        #expect(generations.assign(keys(PipelineRunner.commitEvery), at: now) == 1)
        #expect(generations.assign(keys(100), at: now) == 1)
        #expect(generations.assign(keys(PipelineRunner.commitEvery), at: now) == 2)
        // Closed, each has a filter of its own size, as a start loads it; the open one's takes
        // a full generation. Every key is still found in its own.
        func bytes(_ keys: Int) -> Int { DedupKeyFilter(expectedKeys: 0, minimumCapacity: keys).byteCount }
        let expected = bytes(PipelineRunner.commitEvery) + bytes(PipelineRunner.commitEvery + 100) + bytes(DedupGenerations.keysPerGeneration)
        #expect(generations.generationFilterBytes == expected)
        #expect(first.allSatisfy { generations.mayHold($0, in: 0) })
    }

    @Test(
        "a key the scope's filter may hold is looked for only in the generations of the layers that may hold it, newest first, and always in its own"
    )
    func candidatesComeFromTheLayersThatMayHoldTheKey() throws {
        let generations = try DedupGenerations.built(generations: [], fingerprinter: .random()) { _, _ in }
        let now = Timestamp.now()
        var next: UInt64 = 0
        var held: [(generation: Int64, key: UInt64)] = []
        // 1.2 million keys in full commit groups: two layers of the scope's filter (its first
        // takes a million), 60 generations.
        for _ in 0..<60 {
            let keys = (0..<PipelineRunner.commitEvery).map { _ in
                next += 1
                return next &* 0x9E37_79B9_7F4A_7C15
            }
            let generation = generations.assign(keys, at: now)
            held += stride(from: 0, to: keys.count, by: 997).map { (generation, keys[$0]) }
        }
        #expect(generations.all.layerCount == 2)
        #expect(generations.generationCount == 60)
        for (generation, key) in held {
            let ranges = generations.all.mayContainIn(key)
            let candidates = generations.candidates(key)
            #expect(candidates.contains(generation))
            #expect(candidates == candidates.sorted(by: >))
            #expect(candidates.allSatisfy { g in ranges.contains { $0.contains(g) } })
            // What the check of a start asks of a sampled key: the same, one generation at a time.
            #expect(generations.mayHold(key, in: generation))
            for other in [generation - 1, generation + 1, 59 - generation] {
                #expect(generations.mayHold(key, in: other) == candidates.contains(other))
            }
        }
        // A key of the first layer's generations is not looked for in the second's, and the
        // other way round, unless both layers may hold it (a false positive in one).
        let first = held.first!, last = held.last!
        let firstRanges = generations.all.mayContainIn(first.key)
        let lastRanges = generations.all.mayContainIn(last.key)
        #expect(firstRanges.count == 1 || firstRanges.count == 2)
        if firstRanges.count == 1 { #expect(!firstRanges[0].contains(last.generation)) }
        if lastRanges.count == 1 { #expect(!lastRanges[0].contains(first.generation)) }
        // New keys: none is certainly held, and the few the filter may hold have few candidates.
        let fresh = (0..<20_000).map { UInt64($0) &* 0x2545_F491_4F6C_DD1D &+ 7 }
        let lazy = generations.lazyCandidates(fresh)
        #expect(lazy.filter { !$0.isCertainlyNew }.count < 1_000)
        #expect(fresh.map { generations.candidates($0).count }.reduce(0, +) < 1_000)
    }

    @Test("a full generation is closed: the next commit group goes to a new one")
    func fullGenerationCloses() throws {
        let generations = try DedupGenerations.built(generations: [], fingerprinter: .random()) { _, _ in }
        let now = Timestamp.now()
        let full = (0..<UInt64(DedupGenerations.keysPerGeneration)).map { $0 &* 0x9E37_79B9_7F4A_7C15 }
        #expect(generations.assign(full, at: now) == 0)
        #expect(generations.assign([42], at: now) == 1)
        #expect(generations.assign([43], at: now) == 1)
        #expect(generations.generationCount == 2)
    }

    @Test(
        "a scope that runs for weeks (lymph serve) keeps the keys of its window in its filters, not every key it saw: a layer of the scope's filter goes once its generations are purged"
    )
    func scopeFilterForgetsPurgedGenerations() throws {
        let generations = try DedupGenerations.built(generations: [], fingerprinter: .random()) { _, _ in }
        let start = 1_800_000_000.0
        let perDay = 200_000
        let window = 2.0 * Self.day
        var next: UInt64 = 0
        var held: [Int64: [UInt64]] = [:]
        var lastAt: [Int64: Double] = [:]
        for day in 0..<15 {
            // A day's keys in commit groups over the day, each followed by the purge of the
            // generations whose every key left the window, as the store's purge picks them.
            for group in 0..<10 {
                let keys = (0..<perDay / 10).map { _ in
                    next += 1
                    return next &* 0x9E37_79B9_7F4A_7C15
                }
                let at = start + Double(day) * Self.day + Double(group) * Self.day / 10
                let generation = generations.assign(keys, at: at)
                held[generation, default: []] += keys
                lastAt[generation] = at
                let purged = Set(lastAt.filter { $0.value < at - window && $0.key != generation }.keys)
                generations.forget(generations: purged)
                for g in purged {
                    held[g] = nil
                    lastAt[g] = nil
                }
            }
        }
        // Fifteen days of 200,000 keys a day: every key kept would take three layers, room for
        // 4.75 million keys (5.9 MiB); two days' window holds under half a million, which the
        // smallest layer (a million) takes, so two layers at most.
        #expect(generations.all.layerCount <= 2)
        #expect(generations.all.byteCount <= 3 << 20, "\(generations.all.byteCount) bytes")
        // No key of a generation still held is lost (a sample of each).
        for (generation, keys) in held {
            #expect(stride(from: 0, to: keys.count, by: 101).allSatisfy { generations.candidates(keys[$0]).contains(generation) }, "generation \(generation)")
        }
    }

    @Test("a group that would take the generation past its size starts the next one, so no filter grows a layer")
    func overflowingGroupStartsNext() throws {
        let generations = try DedupGenerations.built(generations: [], fingerprinter: .random()) { _, _ in }
        let now = Timestamp.now()
        let keys = (0..<UInt64(DedupGenerations.keysPerGeneration + 20)).map { $0 &* 0x9E37_79B9_7F4A_7C15 }
        let most = Array(keys[..<(DedupGenerations.keysPerGeneration - 10)])
        #expect(generations.assign(most, at: now) == 0)
        let bytesBefore = generations.filterByteCount
        #expect(generations.assign(Array(keys[most.count..<(most.count + 30)]), at: now) == 1)
        // The new generation's filter is the only memory added: one full-generation filter.
        #expect(generations.filterByteCount - bytesBefore == DedupKeyFilter(expectedKeys: 0, minimumCapacity: DedupGenerations.keysPerGeneration).byteCount)
        #expect(generations.candidates(keys[0]).contains(0))
        #expect(generations.candidates(keys[most.count]).contains(1))
    }

    @Test("keys kept before generations existed become generation 0 and still drop their duplicates")
    func migratedKeys() async throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/state.sqlite"
        do {
            let queue = try DatabaseQueue(path: path)
            try StateStore.migrator.migrate(queue, upTo: "v6-run-inputs")
            try await queue.write { db in
                try db.execute(sql: "INSERT INTO lymph_dedup_scope (id, name) VALUES (1, 'dedup')")
                for id in ["evt_x", "evt_y"] {
                    try db.execute(
                        sql: "INSERT INTO lymph_dedup (scope, key, seen_at) VALUES (1, ?, ?)", arguments: [Data(id.utf8), Timestamp.now() - 60])
                }
            }
        }
        let store = try StateStore.open(path: path)
        #expect(try store.dedupCount(scope: store.dedupScope("dedup")) == 2)
        let stage = try Self.stage(store)
        #expect(try await Self.labels(stage, ["evt_x", "evt_new", "evt_y"]) == ["drop(duplicate)", "claim", "drop(duplicate)"])
        // New keys go on in the migrated generation until it is full or a day old.
        let generations = try #require(stage.generations)
        #expect(generations.assign([7], at: Timestamp.now()) == 0)
    }
}

@Suite("Generation purge schedule")
struct GenerationPurgeScheduleTests {
    @Test("a purge is due once an interval has passed, and again at once after its transaction rolled back")
    func dueAfterIntervalAndAfterRollback() {
        let schedule = GenerationPurgeSchedule(lastPurge: 1_000)
        #expect(!schedule.due(at: 1_000 + GenerationPurgeSchedule.interval - 1))
        #expect(schedule.due(at: 1_000 + GenerationPurgeSchedule.interval))
        // Noted: the next is an interval after this one.
        #expect(!schedule.due(at: 1_000 + GenerationPurgeSchedule.interval + 1))
        schedule.rolledBack()
        #expect(schedule.due(at: 1_000 + GenerationPurgeSchedule.interval + 2))
        #expect(GenerationPurgeSchedule().due(at: 0))
    }

    @Test("the filters of the generations a purge deleted go only when its transaction commits, and not after a rollback")
    func filtersForgottenOnCommitOnly() throws {
        let store = try StateStore.open(path: ":memory:")
        let scope = try store.dedupScope("dedup")
        let fingerprinter = try store.dedupFingerprinter(scope: scope)
        try store.write { db in
            for (generation, id) in [(Int64(0), "evt_a"), (1, "evt_b")] {
                try StateStore.dedupInsert(
                    db, scope: scope, generation: generation, keys: [Array(id.utf8)], fingerprints: [fingerprinter.fingerprint(id)], at: 10)
            }
        }
        let generations = try store.dedupGenerations(scope: scope)
        let schedule = GenerationPurgeSchedule()
        schedule.deleted([0])
        schedule.rolledBack()
        schedule.committed(forgettingIn: generations)
        #expect(generations.candidates(fingerprinter.fingerprint("evt_a")) == [0])
        schedule.deleted([0])
        schedule.committed(forgettingIn: generations)
        #expect(generations.candidates(fingerprinter.fingerprint("evt_a")) == [])
        #expect(generations.candidates(fingerprinter.fingerprint("evt_b")) == [1])
        // Handed over once: a later commit forgets nothing more.
        schedule.committed(forgettingIn: generations)
        #expect(generations.candidates(fingerprinter.fingerprint("evt_b")) == [1])
    }
}
