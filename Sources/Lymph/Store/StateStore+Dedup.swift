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

    /// For each key, whether it was recorded at or after `since`.
    func dedupSeen(scope: Int64, keys: [[UInt8]], since: Double) throws(StoreError) -> [Bool] {
        if keys.isEmpty { return [] }
        return try readInDeferredTransaction { db in
            let statement = try db.cachedStatement(sql: "SELECT seen_at FROM lymph_dedup WHERE scope = ?1 AND key = ?2")
            let s = statement.sqliteStatement
            sqlite3_reset(s)
            sqlite3_bind_int64(s, 1, scope)
            var seen: [Bool] = []
            seen.reserveCapacity(keys.count)
            for key in keys {
                sqlite3_reset(s)
                key.withUnsafeBytes { _ = sqlite3_bind_blob(s, 2, $0.baseAddress, Int32($0.count), SQLITE_TRANSIENT_VALUE) }
                let rc = sqlite3_step(s)
                if rc == SQLITE_ROW {
                    seen.append(sqlite3_column_double(s, 0) >= since)
                } else if rc == SQLITE_DONE {
                    seen.append(false)
                } else {
                    throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
                }
            }
            sqlite3_reset(s)
            return seen
        }
    }

    /// The scope's key filter, built from the keys the store holds on first use.
    func dedupFilter(scope: Int64) throws(StoreError) -> DedupKeyFilter {
        if let filter = dedupFilters.withLock({ $0[scope] }) { return filter }
        let filter = try readInDeferredTransaction { db in
            let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM lymph_dedup WHERE scope = ?", arguments: [scope]) ?? 0
            let statement = try db.cachedStatement(sql: "SELECT key FROM lymph_dedup WHERE scope = ?1")
            let s = statement.sqliteStatement
            sqlite3_reset(s)
            defer { sqlite3_reset(s) }
            sqlite3_bind_int64(s, 1, scope)
            return try DedupKeyFilter.built(count: count) {
                let rc = sqlite3_step(s)
                if rc == SQLITE_DONE { return nil }
                guard rc == SQLITE_ROW else {
                    throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
                }
                return DedupKeyFilter.fingerprint(bytes: UnsafeRawBufferPointer(start: sqlite3_column_blob(s, 0), count: Int(sqlite3_column_bytes(s, 0))))
            }
        }
        return dedupFilters.withLock { filters in
            if let built = filters[scope] { return built }
            filters[scope] = filter
            return filter
        }
    }

    /// Records `keys` as seen at `time`, in one transaction.
    func dedupCommit(scope: Int64, keys: [[UInt8]], at time: Double) throws(StoreError) {
        if keys.isEmpty { return }
        try write { db in try Self.dedupInsert(db, scope: scope, keys: keys, at: time) }
    }

    /// The insert itself, for callers that need it inside a larger transaction.
    static func dedupInsert(_ db: Database, scope: Int64, keys: [[UInt8]], at time: Double) throws {
        // In key order (SQLite compares blobs as memcmp, the shorter first on a tie), so each
        // B-tree page is reached once per group rather than once per key.
        let keys = keys.sorted(by: Self.blobOrder)
        let statement = try db.cachedStatement(sql: "INSERT OR REPLACE INTO lymph_dedup (scope, key, seen_at) VALUES (?1, ?2, ?3)")
        let s = statement.sqliteStatement
        sqlite3_reset(s)
        sqlite3_bind_int64(s, 1, scope)
        sqlite3_bind_double(s, 3, time)
        for key in keys {
            sqlite3_reset(s)
            key.withUnsafeBytes { _ = sqlite3_bind_blob(s, 2, $0.baseAddress, Int32($0.count), SQLITE_TRANSIENT_VALUE) }
            let rc = sqlite3_step(s)
            guard rc == SQLITE_DONE else {
                throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
            }
        }
        sqlite3_reset(s)
    }

    /// Forgets keys recorded before `before`; returns how many.
    @discardableResult
    func dedupPurge(scope: Int64, before: Double) throws(StoreError) -> Int {
        try write { db in
            try db.execute(sql: "DELETE FROM lymph_dedup WHERE scope = ? AND seen_at < ?", arguments: [scope, before])
            return db.changesCount
        }
    }

    /// How many keys the scope has recorded.
    func dedupCount(scope: Int64) throws(StoreError) -> Int {
        try read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM lymph_dedup WHERE scope = ?", arguments: [scope]) ?? 0 }
    }
}

extension StateStore {
    /// SQLite's order of blobs: memcmp over the common length, then the shorter first.
    static func blobOrder(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        let common = min(a.count, b.count)
        let order =
            common == 0 ? 0 : a.withUnsafeBytes { a in b.withUnsafeBytes { b in memcmp(a.baseAddress!, b.baseAddress!, common) } }
        return order != 0 ? order < 0 : a.count < b.count
    }
}

/// SQLite's SQLITE_TRANSIENT (copy the bound bytes), which Swift cannot import as a macro.
let SQLITE_TRANSIENT_VALUE = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
