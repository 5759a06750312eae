import Foundation
import GRDB
import GRDBSQLite

/// The durable queue between `lymph serve`'s HTTP handlers and its pipeline worker.
///
/// An entry is a delivery line (`{"headers": {...}, "body": "...", "received_at": ...}`), the
/// same form `lymph run` reads, so the worker parses it with the parse stage it already has.
extension StateStore {
    /// The spool's own file beside the state file (`x.sqlite` → `x.spool.sqlite`): HTTP appends
    /// then never wait for the pipeline's commits to the state file, which may take a while.
    public static func spoolPath(forState path: String) -> String {
        path.hasSuffix(".sqlite") ? String(path.dropLast(7)) + ".spool.sqlite" : path + ".spool"
    }

    public struct SpoolEntry: Sendable {
        public let seq: Int64
        public let receivedAt: Double
        public let item: [UInt8]
    }

    /// Appends `items` in one transaction (a group commit) and returns their sequence numbers.
    /// `lymph serve` appends only through its `SpoolWriter`, which offers what committed to the
    /// worker's `SpoolHandoff`; the worker still reads the file whenever it waited in vain.
    /// Entries up to `deleteThrough` are removed in the same transaction (no commit of their own).
    public func spoolAppend(_ items: [[UInt8]], receivedAt: Double, deleteThrough: Int64? = nil) throws(StoreError) -> [Int64] {
        // Raw SQLite calls on cached statements: this runs for every group commit, and GRDB's
        // argument and transaction wrappers were a sixth of the spool writer's time in profiles.
        try writeInTransaction { db in
            if let deleteThrough {
                let s = try db.cachedStatement(sql: "DELETE FROM lymph_spool WHERE seq <= ?1").sqliteStatement
                sqlite3_reset(s)
                sqlite3_bind_int64(s, 1, deleteThrough)
                try Self.step(s, db)
            }
            var seqs: [Int64] = []
            seqs.reserveCapacity(items.count)
            let s = try db.cachedStatement(sql: "INSERT INTO lymph_spool (received_at, item) VALUES (?1, ?2)").sqliteStatement
            sqlite3_reset(s)
            sqlite3_bind_double(s, 1, receivedAt)
            for item in items {
                sqlite3_reset(s)
                item.withUnsafeBytes { _ = sqlite3_bind_blob(s, 2, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32($0.count), SQLITE_TRANSIENT_VALUE) }
                try Self.step(s, db)
                seqs.append(sqlite3_last_insert_rowid(db.sqliteConnection))
            }
            sqlite3_reset(s)
            return seqs
        }
    }

    /// Runs a statement that returns no rows to its end.
    private static func step(_ s: SQLiteStatement, _ db: Database) throws {
        let rc = sqlite3_step(s)
        guard rc == SQLITE_DONE else {
            sqlite3_reset(s)
            throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
        }
    }

    /// Up to `limit` entries (and about `maxBytes`) after `seq`, oldest first.
    public func spoolFetch(after seq: Int64, limit: Int, maxBytes: Int) throws(StoreError) -> [SpoolEntry] {
        try readOneStatement { db in
            var out: [SpoolEntry] = []
            var bytes = 0
            let rows = try Row.fetchCursor(db.cachedStatement(sql: "SELECT seq, received_at, item FROM lymph_spool WHERE seq > ? ORDER BY seq LIMIT ?"), arguments: [seq, limit])
            while let row = try rows.next() {
                let item: [UInt8] = (row[2] as Data?).map { [UInt8]($0) } ?? []
                out.append(SpoolEntry(seq: row[0], receivedAt: row[1], item: item))
                bytes += item.count
                if bytes >= maxBytes { break }
            }
            return out
        }
    }

    /// Entries waiting, and when the oldest arrived (seconds since the epoch).
    public func spoolDepth() throws(StoreError) -> (count: Int, oldest: Double?) {
        try read { db in
            let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM lymph_spool") ?? 0
            let oldest = try Double.fetchOne(db, sql: "SELECT received_at FROM lymph_spool ORDER BY seq LIMIT 1")
            return (count, oldest)
        }
    }

    /// Removes entries up to `seq`; returns how many there were.
    @discardableResult
    public func spoolDelete(through seq: Int64) throws(StoreError) -> Int {
        try write { db in
            try db.execute(sql: "DELETE FROM lymph_spool WHERE seq <= ?", arguments: [seq])
            return db.changesCount
        }
    }

    /// The newest sequence number this spool file ever gave (0 for none): sequence numbers
    /// are never reused, even after deletes (AUTOINCREMENT keeps the high mark).
    public func spoolHighestSeq() throws(StoreError) -> Int64 {
        try read { db in try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'lymph_spool'") ?? 0 }
    }

    /// Makes this connection, the spool's only writer, checkpoint its write-ahead log after
    /// any commit that leaves more than `pages` pages in it (SQLite's PASSIVE auto-checkpoint).
    /// With one writer nothing is appended during the checkpoint, so it copies everything and
    /// the next commit starts the log over: the file stays about `pages` pages long and appends
    /// overwrite it in place. A checkpoint from another connection could never catch up with a
    /// writer still appending: the log grew to 64 MiB (each growing append costs `fdatasync` a
    /// metadata write, and the final copy stalls every waiting request), and p99 was about twice
    /// as high (docs/architecture.md).
    public func checkpointEvery(pages: Int) throws(StoreError) {
        do {
            try queue.writeWithoutTransaction { db in
                _ = try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint = \(pages)")
                // After a burst (a reader holding the log open), the file is cut back to this size.
                _ = try Int.fetchOne(db, sql: "PRAGMA journal_size_limit = 4194304")
            }
        } catch {
            throw StoreError(location: location, message: "cannot configure the store: \(error)")
        }
    }

    /// A real write to this file (for health checks): a one-row table, rewritten.
    public func probeWritable() throws(StoreError) {
        try write { db in
            try db.execute(sql: "CREATE TABLE IF NOT EXISTS lymph_health (at REAL NOT NULL); DELETE FROM lymph_health")
            try db.execute(sql: "INSERT INTO lymph_health (at) VALUES (?)", arguments: [Timestamp.now()])
        }
    }
}
