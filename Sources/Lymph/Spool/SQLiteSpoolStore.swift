import Foundation
import GRDB
import GRDBSQLite

/// The spool in a SQLite file of its own beside the state file (`x.sqlite` → `x.spool.sqlite`):
/// HTTP appends then never wait for the pipeline's commits to the state file, which may take a
/// while. Its schema is its own (`lymph_spool`, and `lymph_health` for `/healthz`'s probe).
///
/// Spool files made before the spool had a schema of its own were opened as state stores: they
/// also hold the state store's tables (empty) and migration ids. They open as they are: the
/// spool's migration creates only what is missing, and the rest is left alone.
public final class SQLiteSpoolStore: SpoolBackend {
    /// The database path.
    public let location: String
    let queue: DatabaseQueue

    /// Opens (creating) the spool file at `path`. `lymph serve`'s writer opens it `.full`: an
    /// entry must survive a power loss before its 202. Each connection is one `SQLiteSpoolStore`;
    /// the worker reads through one of its own, so its reads never wait behind an append.
    public static func open(path: String, durability: StoreDurability = .normal) throws(StoreError) -> SQLiteSpoolStore {
        do {
            let queue = try SQLiteFile.open(path: path, durability: durability, migrator: migrator)
            return SQLiteSpoolStore(location: path, queue: queue, fileIdentity: FileIdentity(path: path))
        } catch {
            throw StoreError(location: path, message: "cannot open the spool: \(error)" + FreeSpace.hint(forPath: path))
        }
    }

    private init(location: String, queue: DatabaseQueue, fileIdentity: FileIdentity?) {
        self.location = location
        self.queue = queue
        self.fileIdentity = fileIdentity
    }

    /// The file's device and inode when it was opened.
    let fileIdentity: FileIdentity?

    /// The file at the spool's path is not the one opened: what is appended would be in a file
    /// no later start reads, and what waits in it would be gone when this process ends.
    public func fileProblem() -> String? {
        guard let id = fileIdentity, FileIdentity(path: location) != id else { return nil }
        return
            "spool '\(location)' was deleted or replaced while lymph serve used it: new webhooks are refused; what it had accepted is processed, then the server stops (start it again for a new spool); leave the spool alone while lymph serves"
    }

    /// The spool file of the state file at `path`.
    public static func path(forState path: String) -> String {
        path.hasSuffix(".sqlite") ? String(path.dropLast(7)) + ".spool.sqlite" : path + ".spool"
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("spool-v1") { db in
            // Webhooks accepted by `lymph serve`, oldest first. AUTOINCREMENT: a sequence number
            // is never reused, so arrival order survives deletes and restarts. IF NOT EXISTS: an
            // older spool file has both tables already, with its entries.
            try db.execute(
                sql: """
                    CREATE TABLE IF NOT EXISTS lymph_spool (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        received_at REAL NOT NULL,
                        item BLOB NOT NULL
                    );
                    CREATE TABLE IF NOT EXISTS lymph_health (at REAL NOT NULL);
                    """)
        }
        return m
    }

    /// Appends `items` in one `BEGIN IMMEDIATE` transaction, after deleting through
    /// `deleteThrough`; durable on return when the store was opened `.full`.
    public func append(_ items: [[UInt8]], receivedAt: Double, deleteThrough: Int64? = nil) throws(StoreError) -> [Int64] {
        // Raw SQLite calls on cached statements: every 202 waits on this, so it skips GRDB's
        // per-call argument and transaction wrappers.
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
                do { try item.withUnsafeBytes { try SQLiteBinding.blob(s, 2, $0, db) } } catch {
                    sqlite3_reset(s)
                    throw error
                }
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
            throw SQLiteBinding.failure(rc, db)
        }
    }

    /// Up to `limit` entries after `seq` (and about `maxBytes`), oldest first, in one statement.
    public func fetch(after seq: Int64, limit: Int, maxBytes: Int) throws(StoreError) -> [SpoolEntry] {
        try readOneStatement { db in
            var out: [SpoolEntry] = []
            var bytes = 0
            let rows = try Row.fetchCursor(
                db.cachedStatement(sql: "SELECT seq, received_at, item FROM lymph_spool WHERE seq > ? ORDER BY seq LIMIT ?"), arguments: [seq, limit])
            while let row = try rows.next() {
                let item: [UInt8] = (try row.decode(Data?.self, atIndex: 2)).map { [UInt8]($0) } ?? []
                out.append(SpoolEntry(seq: try row.decode(atIndex: 0), receivedAt: try row.decode(atIndex: 1), item: item))
                bytes += item.count
                if bytes >= maxBytes { break }
            }
            return out
        }
    }

    /// The number of entries and the oldest one's arrival, from one snapshot.
    public func depth() throws(StoreError) -> SpoolDepth {
        try read { db in
            let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM lymph_spool") ?? 0
            let oldest = try Double.fetchOne(db, sql: "SELECT received_at FROM lymph_spool ORDER BY seq LIMIT 1")
            return SpoolDepth(count: count, oldestReceivedAt: oldest)
        }
    }

    /// Deletes entries through `seq` in a transaction of its own; returns how many there were.
    @discardableResult
    public func delete(through seq: Int64) throws(StoreError) -> Int {
        try write { db in
            try db.execute(sql: "DELETE FROM lymph_spool WHERE seq <= ?", arguments: [seq])
            return db.changesCount
        }
    }

    /// 5 ms: under load the writer commits a group every millisecond or two, and a worker that
    /// took each as it came spent nearly twice the CPU per webhook, on the cores the answers
    /// need. Processing lags 5 ms more behind; the 202s do not wait for it.
    public var gatherFor: Duration? { .milliseconds(5) }

    /// The oldest entry's number, from the table's key alone (no item read).
    public func oldestSeq() throws(StoreError) -> Int64? {
        try read { db in try Int64.fetchOne(db, sql: "SELECT min(seq) FROM lymph_spool") }
    }

    /// AUTOINCREMENT keeps the high mark in `sqlite_sequence`, deletes or not.
    public func highestSeq() throws(StoreError) -> Int64 {
        try read { db in try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'lymph_spool'") ?? 0 }
    }

    /// Rewrites the one-row `lymph_health`.
    public func probeWritable() throws(StoreError) {
        try write { db in
            try db.execute(sql: "DELETE FROM lymph_health")
            try db.execute(sql: "INSERT INTO lymph_health (at) VALUES (?)", arguments: [Timestamp.now()])
        }
    }

    /// Makes this connection, the spool's only writer, checkpoint its write-ahead log after
    /// any commit that leaves more than `pages` pages in it (SQLite's PASSIVE auto-checkpoint).
    /// With one writer nothing is appended during the checkpoint, so it copies everything and
    /// the next commit starts the log over: the file stays about `pages` pages long and appends
    /// overwrite it in place. A checkpoint from another connection could never catch up with a
    /// writer still appending: the log grew without bound, and each growing append cost
    /// `fdatasync` a metadata write (docs/architecture.md).
    public func checkpointEvery(pages: Int) throws(StoreError) {
        do {
            try queue.writeWithoutTransaction { db in
                _ = try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint = \(pages)")
                // After a burst (a reader holding the log open), the file is cut back to this size.
                _ = try Int.fetchOne(db, sql: "PRAGMA journal_size_limit = 4194304")
                // Debian's SQLite zeroes deleted content by default (secure_delete on), which
                // writes every page a delete frees to the log: the done entries' pages, inside
                // appends the 202s wait for. FAST zeroes only what costs no extra write; a freed
                // page keeps its bytes until an append reuses it (the spool reuses them at once).
                _ = try Int.fetchOne(db, sql: "PRAGMA secure_delete = FAST")
            }
        } catch {
            throw StoreError(location: location, message: "cannot configure the spool: \(error)")
        }
    }

    // MARK: - Transactions

    func write<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try queue.write(body)
        } catch {
            throw StoreError(location: location, writeFailure: error)
        }
    }

    func read<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try queue.read(body)
        } catch {
            throw StoreError(location: location, message: "read failed: \(error)")
        }
    }

    /// `write` for the per-commit path: `BEGIN IMMEDIATE` and `COMMIT` are prepared once and
    /// reused, where GRDB's transaction parses its SQL text each time.
    func writeInTransaction<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try queue.writeWithoutTransaction { db in
                try db.cachedStatement(sql: "BEGIN IMMEDIATE").execute()
                do {
                    let result = try body(db)
                    try db.cachedStatement(sql: "COMMIT").execute()
                    return result
                } catch {
                    if db.isInsideTransaction { try? db.execute(sql: "ROLLBACK") }
                    throw error
                }
            }
        } catch {
            throw StoreError(location: location, writeFailure: error)
        }
    }

    /// One statement's read, outside a transaction: a single statement sees a consistent
    /// snapshot by itself. Spares the four statements `read` wraps around it (read-only mode on
    /// and off, begin, commit) on a call the worker makes for every batch.
    func readOneStatement<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try queue.unsafeRead(body)
        } catch {
            throw StoreError(location: location, message: "read failed: \(error)")
        }
    }
}
