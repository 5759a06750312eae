import Foundation
import GRDB
import GRDBSQLite

/// Dedup memory: which keys each dedup stage (the scope) has seen, and when.
///
/// Uses prepared statements through the raw SQLite API: this is on the per-event path.
extension StateStore {
    /// The number standing for a dedup scope (a dedup stage's name) in this store.
    func dedupScope(_ name: String) throws(StoreError) -> Int64 {
        try write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO lymph_dedup_scope (name) VALUES (?)", arguments: [name])
            return try Int64.fetchOne(db, sql: "SELECT id FROM lymph_dedup_scope WHERE name = ?", arguments: [name])!
        }
    }

    /// Claims every scope of `names` for `pipeline`, in one transaction, or none: the index of
    /// the first that another pipeline's is, with that pipeline's name (nil when all are this
    /// pipeline's, or were no pipeline's until now).
    func claimDedupScopes(_ names: [String], pipeline: String) throws(StoreError) -> (index: Int, owner: String)? {
        try write { db in
            for (n, name) in names.enumerated() {
                if let owner = try String.fetchOne(db, sql: "SELECT pipeline FROM lymph_dedup_scope WHERE name = ?", arguments: [name]),
                    owner != pipeline
                {
                    return (n, owner)
                }
            }
            for name in names {
                try db.execute(sql: "INSERT OR IGNORE INTO lymph_dedup_scope (name, pipeline) VALUES (?, ?)", arguments: [name, pipeline])
                try db.execute(sql: "UPDATE lymph_dedup_scope SET pipeline = ? WHERE name = ? AND pipeline IS NULL", arguments: [pipeline, name])
            }
            return nil
        }
    }

    /// For each key, whether it was recorded at or after `since`, asking only the generations
    /// given for it (newest first; see `DedupGenerations`).
    func dedupSeen<Generations: Sequence<Int64>>(scope: Int64, keys: [[UInt8]], generations: [Generations], since: Double) throws(StoreError) -> [Bool] {
        if keys.isEmpty { return [] }
        return try readInDeferredTransaction { db in try Self.dedupLookup(db, scope: scope, keys: keys, generations: generations, since: since) }
    }

    /// `dedupSeen` in a transaction of the caller's.
    static func dedupLookup<Generations: Sequence<Int64>>(
        _ db: Database, scope: Int64, keys: [[UInt8]], generations: [Generations], since: Double
    ) throws -> [Bool] {
        let statement = try db.cachedStatement(sql: "SELECT seen_at FROM lymph_dedup WHERE scope = ?1 AND generation = ?2 AND key = ?3")
        let s = statement.sqliteStatement
        sqlite3_reset(s)
        defer { sqlite3_reset(s) }
        sqlite3_bind_int64(s, 1, scope)
        var seen = [Bool](repeating: false, count: keys.count)
        for (n, key) in keys.enumerated() {
            for generation in generations[n] {
                sqlite3_reset(s)
                sqlite3_bind_int64(s, 2, generation)
                try key.withUnsafeBytes { try SQLiteBinding.blob(s, 3, $0, db) }
                let rc = sqlite3_step(s)
                if rc == SQLITE_ROW {
                    // The newest generation holding the key has its latest time.
                    seen[n] = sqlite3_column_double(s, 0) >= since
                    break
                } else if rc != SQLITE_DONE {
                    throw SQLiteBinding.failure(rc, db)
                }
            }
        }
        return seen
    }

    /// The scope's generations and key filters, built from the keys the store holds on first use.
    func dedupGenerations(scope: Int64) throws(StoreError) -> DedupGenerations {
        if let built = dedupIndexes.withLock({ $0[scope] }) { return built }
        let generations = try buildDedupGenerations(scope: scope)
        return dedupIndexes.withLock { indexes in
            if let built = indexes[scope] { return built }
            indexes[scope] = generations
            return generations
        }
    }

    /// The scope's generations and filters as the store holds them now, loaded from the saved
    /// fingerprints in `parts` at once (see `DedupGenerations.built`), after the fingerprints of
    /// any generation they do not account for are made again from its keys. The parts read in
    /// transactions of their own, not one snapshot: this process holds the store's lock, and a
    /// scope's keys are only written by its own commits, which come after its filters are built.
    ///
    /// Then `sampledKeys` keys of each generation (the first and last in key order) are looked for in the
    /// filters, as a lookup would: saved fingerprints of the right number that are not the keys'
    /// (the store changed by hand: rows zeroed, cut short, the scope's key changed) would let
    /// duplicates through. Each generation with a key not found has its fingerprints made again
    /// from its keys, and the filters are built once more.
    func buildDedupGenerations(scope: Int64, parts: Int? = nil) throws(StoreError) -> DedupGenerations {
        let built = try loadDedupGenerations(scope: scope, parts: parts)
        let unfound = try generationsWithUnfoundKeys(scope: scope, built.generations, built.scanned)
        if unfound.isEmpty { return built.generations }
        try write { db in
            for generation in unfound {
                try db.execute(sql: "DELETE FROM lymph_dedup_fingerprints WHERE scope = ? AND generation = ?", arguments: [scope, generation])
            }
        }
        let again = try loadDedupGenerations(scope: scope, parts: parts)
        if let generation = try generationsWithUnfoundKeys(scope: scope, again.generations, again.scanned).first {
            throw StoreError(
                location: location,
                message:
                    "keys of dedup generation \(generation) are not found by their fingerprints made again from them: the store was changed by something other than Lymph"
            )
        }
        return again.generations
    }

    /// Keys of each generation looked for in its loaded filters (see `buildDedupGenerations`).
    static let sampledKeys = 64

    /// The generations of which one of the sampled keys is not found in `generations`.
    func generationsWithUnfoundKeys(scope: Int64, _ generations: DedupGenerations, _ scanned: [DedupGenerations.Scanned]) throws(StoreError) -> [Int64] {
        try read { db in
            // Both ends of the generation in key order: ids that grow with time (sequences, ULIDs)
            // put its first and its last commits' keys there, so rows cut short are found.
            let first = try db.cachedStatement(sql: "SELECT key FROM lymph_dedup WHERE scope = ? AND generation = ? ORDER BY key LIMIT ?")
            let last = try db.cachedStatement(sql: "SELECT key FROM lymph_dedup WHERE scope = ? AND generation = ? ORDER BY key DESC LIMIT ?")
            var unfound: [Int64] = []
            for g in scanned {
                let keys =
                    try Data.fetchAll(first, arguments: [scope, g.generation, Self.sampledKeys / 2])
                    + Data.fetchAll(last, arguments: [scope, g.generation, Self.sampledKeys / 2])
                let found = keys.allSatisfy { key in
                    generations.mayHold(key.withUnsafeBytes { generations.fingerprinter.fingerprint(bytes: $0) }, in: g.generation)
                }
                if !found { unfound.append(g.generation) }
            }
            return unfound
        }
    }

    /// The filters as the saved fingerprints give them, after those of generations they do not
    /// account for are made again (see `buildDedupGenerations`).
    func loadDedupGenerations(scope: Int64, parts: Int?) throws(StoreError) -> (generations: DedupGenerations, scanned: [DedupGenerations.Scanned]) {
        let fingerprinter = try dedupFingerprinter(scope: scope)
        try refreshDedupFingerprints(scope: scope, fingerprinter: fingerprinter)
        let scanned = try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT g.generation, g.keys, g.oldest,
                        (SELECT SUM(length(f.fingerprints)) FROM lymph_dedup_fingerprints f WHERE f.scope = g.scope AND f.generation = g.generation)
                    FROM lymph_dedup_generation g WHERE g.scope = ? ORDER BY g.generation
                    """, arguments: [scope]
            ).map { row in
                DedupGenerations.Scanned(
                    generation: try row.decode(atIndex: 0), count: min(max(try row.decode(Int.self, atIndex: 1), 0), DedupGenerations.largestCount),
                    oldest: try row.decode(atIndex: 2), saved: (try row.decode(Int?.self, atIndex: 3) ?? 0) / 8)
            }
        }
        let location = self.location
        if let last = scanned.last, last.generation >= DedupGenerations.largestGeneration {
            throw StoreError(
                location: location,
                message: "dedup generation \(last.generation) is out of Lymph's range: the store was changed by something other than Lymph")
        }
        let generations = try DedupGenerations.built(generations: scanned, fingerprinter: fingerprinter, parts: parts) { range, body throws(StoreError) in
            var damaged: Int64?
            try self.readInDeferredTransaction { db in
                let statement = try db.cachedStatement(
                    sql: "SELECT generation, fingerprints FROM lymph_dedup_fingerprints WHERE scope = ?1 AND generation BETWEEN ?2 AND ?3 ORDER BY generation")
                let s = statement.sqliteStatement
                sqlite3_reset(s)
                defer { sqlite3_reset(s) }
                sqlite3_bind_int64(s, 1, scope)
                sqlite3_bind_int64(s, 2, range.lowerBound)
                sqlite3_bind_int64(s, 3, range.upperBound)
                while true {
                    let rc = sqlite3_step(s)
                    if rc == SQLITE_DONE { return }
                    guard rc == SQLITE_ROW else {
                        throw SQLiteBinding.failure(rc, db)
                    }
                    let generation = sqlite3_column_int64(s, 0)
                    let bytes = UnsafeRawBufferPointer(start: sqlite3_column_blob(s, 1), count: Int(sqlite3_column_bytes(s, 1)))
                    guard bytes.count % 8 == 0 else {
                        damaged = generation
                        return
                    }
                    try body(generation, bytes)
                }
            }
            if let damaged {
                throw StoreError(
                    location: location,
                    message:
                        "the saved key fingerprints of dedup generation \(damaged) changed while they were read (something other than Lymph writes to the store); run again to make them again from the keys"
                )
            }
        }
        return (generations, scanned)
    }

    /// The key of the scope's fingerprints, made the first time. Fingerprints saved under no
    /// key, another, or by another version of the function (`DedupFingerprinter.version`) are
    /// of no use: they go, to be made again from the keys.
    func dedupFingerprinter(scope: Int64) throws(StoreError) -> DedupFingerprinter {
        try write { db in
            // A row that is not Lymph's (values of another type: changed by hand) is made again
            // like one of another version.
            if let row = try Row.fetchOne(db, sql: "SELECT k0, k1, version FROM lymph_dedup_fingerprint_key WHERE scope = ?", arguments: [scope]),
                let version = try? row.decode(Int64.self, atIndex: 2), version == DedupFingerprinter.version,
                let k0 = try? row.decode(Int64.self, atIndex: 0), let k1 = try? row.decode(Int64.self, atIndex: 1)
            {
                return DedupFingerprinter(k0: UInt64(bitPattern: k0), k1: UInt64(bitPattern: k1))
            }
            let made = DedupFingerprinter.random()
            try db.execute(sql: "DELETE FROM lymph_dedup_fingerprints WHERE scope = ?", arguments: [scope])
            try db.execute(
                sql: "INSERT OR REPLACE INTO lymph_dedup_fingerprint_key (scope, k0, k1, version) VALUES (?, ?, ?, ?)",
                arguments: [scope, Int64(bitPattern: made.k0), Int64(bitPattern: made.k1), DedupFingerprinter.version])
            return made
        }
    }

    /// Fingerprints saved per commit group at most, when they are made again from a generation's keys.
    static let fingerprintsPerRow = 1 << 16
    /// A generation saved in more rows than this (many small commits: `lymph serve` on a quiet
    /// day commits every few keys) is saved again in one or two when the filters are next
    /// built, so a start reads a few rows per generation, not one per commit.
    static let fingerprintRowsPerGeneration = 64

    /// Makes again, from its keys, the saved fingerprints of each generation whose rows do not
    /// account for its every key (the count and first time of `lymph_dedup_generation`): keys
    /// kept before fingerprints were saved, or written by a build of Lymph that did not save
    /// them; of a generation with a row that is not a whole number of fingerprints (the
    /// store changed by hand); and of one in more than `fingerprintRowsPerGeneration` rows. Rows of generations the store no longer has go. One
    /// transaction per generation.
    /// Returns how many generations it made again.
    @discardableResult
    func refreshDedupFingerprints(scope: Int64, fingerprinter: DedupFingerprinter) throws(StoreError) -> Int {
        let stale = try write { db -> [(generation: Int64, keys: Int64, oldest: Double)] in
            try db.execute(
                sql: """
                    DELETE FROM lymph_dedup_fingerprints WHERE scope = ?1
                        AND generation NOT IN (SELECT generation FROM lymph_dedup_generation WHERE scope = ?1)
                    """, arguments: [scope])
            return try Row.fetchAll(
                db,
                sql: """
                    SELECT g.generation, g.keys, g.oldest FROM lymph_dedup_generation g
                    LEFT JOIN (
                        SELECT generation, SUM(keys) AS keys, MIN(first_at) AS first_at,
                            MAX(typeof(fingerprints) != 'blob' OR length(fingerprints) % 8 != 0) AS damaged, COUNT(*) AS rows
                        FROM lymph_dedup_fingerprints WHERE scope = ?1 GROUP BY generation
                    ) f ON f.generation = g.generation
                    WHERE g.scope = ?1 AND (f.keys IS NOT g.keys OR f.first_at IS NOT g.oldest OR f.damaged OR f.rows > ?2)
                    ORDER BY g.generation
                    """, arguments: [scope, Self.fingerprintRowsPerGeneration]
            ).map { (try $0.decode(atIndex: 0), try $0.decode(atIndex: 1), try $0.decode(atIndex: 2)) }
        }
        for g in stale {
            try write { db in
                try db.execute(sql: "DELETE FROM lymph_dedup_fingerprints WHERE scope = ? AND generation = ?", arguments: [scope, g.generation])
                let statement = try db.cachedStatement(sql: "SELECT key FROM lymph_dedup WHERE scope = ?1 AND generation = ?2")
                let s = statement.sqliteStatement
                sqlite3_reset(s)
                defer { sqlite3_reset(s) }
                sqlite3_bind_int64(s, 1, scope)
                sqlite3_bind_int64(s, 2, g.generation)
                var chunk: [UInt64] = []
                while true {
                    let rc = sqlite3_step(s)
                    if rc == SQLITE_DONE { break }
                    guard rc == SQLITE_ROW else {
                        throw SQLiteBinding.failure(rc, db)
                    }
                    chunk.append(
                        fingerprinter.fingerprint(bytes: UnsafeRawBufferPointer(start: sqlite3_column_blob(s, 0), count: Int(sqlite3_column_bytes(s, 0)))))
                    if chunk.count == Self.fingerprintsPerRow {
                        // The generation's count goes with its last row.
                        try Self.saveFingerprints(db, scope: scope, generation: g.generation, chunk, counting: 0, firstAt: g.oldest)
                        chunk.removeAll(keepingCapacity: true)
                    }
                }
                try Self.saveFingerprints(db, scope: scope, generation: g.generation, chunk, counting: g.keys, firstAt: g.oldest)
            }
        }
        return stale.count
    }

    /// Saves fingerprints of a generation's keys: a row that accounts for `counting` of the
    /// keys `lymph_dedup_generation` counts, the first written at `firstAt`.
    static func saveFingerprints(_ db: Database, scope: Int64, generation: Int64, _ fingerprints: [UInt64], counting: Int64, firstAt: Double) throws {
        let insert = try RawStatement(
            db, sql: "INSERT INTO lymph_dedup_fingerprints (scope, generation, keys, first_at, fingerprints) VALUES (?1, ?2, ?3, ?4, ?5)")
        try insert.bind(1, scope)
        try insert.bind(2, generation)
        try insert.bind(3, counting)
        try insert.bind(4, firstAt)
        #if _endian(big)
            let fingerprints = fingerprints.map(\.littleEndian)
        #endif
        try fingerprints.withUnsafeBytes { try insert.bind(5, blob: $0) }
        try insert.run()
    }

    /// Records `keys` as seen at `time` in generation `generation`, inside the caller's
    /// transaction (the runner's), with their fingerprints (`DedupGenerations.fingerprinter`'s)
    /// when given: keys written without them have theirs made again when the filters are next
    /// built (`refreshDedupFingerprints`).
    static func dedupInsert(_ db: Database, scope: Int64, generation: Int64, keys: [[UInt8]], fingerprints: [UInt64]?, at time: Double) throws {
        if keys.isEmpty { return }
        if let fingerprints {
            try saveFingerprints(db, scope: scope, generation: generation, fingerprints, counting: Int64(keys.count), firstAt: time)
        }
        // In key order (SQLite compares blobs as memcmp, the shorter first on a tie), so each
        // B-tree page of the generation is reached once per group rather than once per key.
        let sorted = SortedKeys(keys)
        // `keysPerInsert` rows a statement, so a step's own work (its transaction check, opening
        // and closing the cursor, resetting) is done once for them; the rest one at a time. Each
        // key is bound without a copy (`SQLiteBinding.borrowedBlob`) while `sorted` holds it,
        // and the bindings are cleared before it goes.
        try sorted.bytes.withUnsafeBytes { all in
            var next = 0
            for (rows, sql) in [(Self.keysPerInsert, Self.manyKeysInsertSQL), (1, Self.oneKeyInsertSQL)] where keys.count - next >= rows {
                let statement = try db.cachedStatement(sql: sql)
                let s = statement.sqliteStatement
                sqlite3_reset(s)
                sqlite3_bind_int64(s, 1, scope)
                sqlite3_bind_int64(s, 2, generation)
                sqlite3_bind_double(s, 3, time)
                defer {
                    sqlite3_reset(s)
                    sqlite3_clear_bindings(s)
                }
                while keys.count - next >= rows {
                    sqlite3_reset(s)
                    for row in 0..<rows {
                        try SQLiteBinding.borrowedBlob(s, Int32(4 + row), sorted.key(sorted: next + row, in: all), db)
                    }
                    let rc = sqlite3_step(s)
                    guard rc == SQLITE_DONE else {
                        throw SQLiteBinding.failure(rc, db)
                    }
                    next += rows
                }
            }
        }
        try db.cachedStatement(
            sql: """
                INSERT INTO lymph_dedup_generation (scope, generation, keys, oldest, newest) VALUES (?1, ?2, ?3, ?4, ?4)
                ON CONFLICT (scope, generation) DO UPDATE SET keys = keys + excluded.keys,
                    oldest = min(oldest, excluded.oldest), newest = max(newest, excluded.newest)
                """
        ).execute(arguments: [scope, generation, keys.count, time])
    }

    /// Keys a statement of `dedupInsert` writes at most. A statement of several rows keeps, until
    /// it ends, the pages it changes as they were (its statement journal: it may stop half-way,
    /// on a NULL), and SQLite moves that journal from memory to a temporary file past 64 KiB:
    /// 12 keys change at most about 15 pages of 4 KiB (their leaves, a few interior pages).
    static let keysPerInsert = 12
    static let manyKeysInsertSQL = dedupInsertSQL(rows: keysPerInsert)
    static let oneKeyInsertSQL = dedupInsertSQL(rows: 1)

    /// `INSERT OR REPLACE` of `rows` keys of one scope (?1) and generation (?2), seen at ?3: the
    /// keys are ?4 on, in the order given.
    static func dedupInsertSQL(rows: Int) -> String {
        "INSERT OR REPLACE INTO lymph_dedup (scope, generation, key, seen_at) VALUES "
            + (0..<rows).map { "(?1, ?2, ?\($0 + 4), ?3)" }.joined(separator: ", ")
    }

    /// The insert into the scope's newest generation, for a caller without the scope's
    /// `DedupGenerations` (keys written this way join its filters when it is next built).
    static func dedupInsert(_ db: Database, scope: Int64, keys: [[UInt8]], at time: Double) throws {
        let newest = try Int64.fetchOne(db, sql: "SELECT MAX(generation) FROM lymph_dedup_generation WHERE scope = ?", arguments: [scope])
        try dedupInsert(db, scope: scope, generation: newest ?? 0, keys: keys, fingerprints: nil, at: time)
    }

    /// Forgets the generations whose every key was recorded before `before` (a range of the
    /// B-tree each); returns how many keys went.
    @discardableResult
    func dedupPurge(scope: Int64, before: Double) throws(StoreError) -> Int {
        let (purged, count) = try write { db in try Self.dedupPurge(db, scope: scope, before: before, below: .max) }
        dedupIndexes.withLock { $0[scope] }?.forget(generations: purged)
        return count
    }

    /// Deletes, in the caller's transaction, the generations numbered below `below` whose every
    /// key was recorded before `before`; returns them and how many keys went. The caller
    /// forgets their filters once it commits (`DedupGenerations.forget`).
    static func dedupPurge(_ db: Database, scope: Int64, before: Double, below: Int64) throws -> (generations: Set<Int64>, keys: Int) {
        let old = try Int64.fetchAll(
            db, sql: "SELECT generation FROM lymph_dedup_generation WHERE scope = ? AND newest < ? AND generation < ?", arguments: [scope, before, below])
        var count = 0
        for generation in old {
            try db.execute(sql: "DELETE FROM lymph_dedup WHERE scope = ? AND generation = ?", arguments: [scope, generation])
            count += db.changesCount
            try db.execute(sql: "DELETE FROM lymph_dedup_generation WHERE scope = ? AND generation = ?", arguments: [scope, generation])
            try db.execute(sql: "DELETE FROM lymph_dedup_fingerprints WHERE scope = ? AND generation = ?", arguments: [scope, generation])
        }
        return (Set(old), count)
    }

    /// How many keys the scope has recorded.
    func dedupCount(scope: Int64) throws(StoreError) -> Int {
        try read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM lymph_dedup WHERE scope = ?", arguments: [scope]) ?? 0 }
    }
}

extension StateStore {
    /// The indices of `keys` in SQLite's order of blobs (`blobOrder`; see `SortedKeys`).
    static func blobOrderIndices(_ keys: [[UInt8]]) -> [Int] { SortedKeys(keys).order }

    /// SQLite's order of blobs: memcmp over the common length, then the shorter first.
    static func blobOrder(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.withUnsafeBytes { a in b.withUnsafeBytes { b in blobOrder(a, b) } }
    }

    /// `blobOrder` of two buffers.
    static func blobOrder(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        let common = min(a.count, b.count)
        let order = common == 0 ? 0 : memcmp(a.baseAddress!, b.baseAddress!, common)
        return order != 0 ? order < 0 : a.count < b.count
    }
}

/// SQLite's SQLITE_TRANSIENT (copy the bound bytes), which Swift cannot import as a macro.
let SQLITE_TRANSIENT_VALUE = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
