import Foundation
import GRDB
import GRDBSQLite
import Testing
@testable import Lymph

/// The spool's SQLite file has a schema and migrations of its own, apart from the state store's.
@Suite("spool store")
struct SpoolStoreTests {
    static func tables(_ path: String) throws -> Set<String> {
        try DatabaseQueue(path: path).read { db in
            Set(try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'"))
        }
    }

    static func migrations(_ path: String) throws -> [String] {
        try DatabaseQueue(path: path).read { db in try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY identifier") }
    }

    @Test("a new spool file holds the spool's tables and migration only, none of the state store's")
    func ownSchema() throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/serve.spool.sqlite"
        let spool = try SQLiteSpoolStore.open(path: path)
        #expect(try spool.append([Array("a".utf8)], receivedAt: 1) == [1])
        #expect(try Self.tables(path) == ["grdb_migrations", "lymph_spool", "lymph_health", "sqlite_sequence"])
        #expect(try Self.migrations(path) == ["spool-v1"])
    }

    @Test("a new state file has no spool table")
    func stateWithoutSpool() throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/serve.sqlite"
        _ = try StateStore.open(path: path)
        let tables = try Self.tables(path)
        #expect(!tables.contains("lymph_spool"))
        #expect(tables.isSuperset(of: ["lymph_dedup", "lymph_tickets", "lymph_sensors", "lymph_spool_progress", "lymph_output_files", "lymph_run_inputs"]))
        #expect(!(try Self.migrations(path)).contains("v3-spool"))
    }

    @Test("a spool file made when the spool was opened as a state store opens with its entries, numbers on after its highest, and keeps everything else")
    func oldSpoolFile() throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/serve.spool.sqlite"
        try OldStoreFile.make(path)
        try DatabaseQueue(path: path).write { db in
            for i in 1...4 {
                try db.execute(sql: "INSERT INTO lymph_spool (received_at, item) VALUES (?, ?)", arguments: [Double(i), Data("entry \(i)".utf8)])
            }
            // Entry 1 was done and deleted: the high mark stays at 4.
            try db.execute(sql: "DELETE FROM lymph_spool WHERE seq = 1")
            try db.execute(sql: "CREATE TABLE lymph_health (at REAL NOT NULL); INSERT INTO lymph_health VALUES (7)")
            // Whatever else such a file holds is not the spool's to touch.
            try db.execute(sql: "INSERT INTO lymph_dedup_scope (id, name) VALUES (1, 'kept')")
        }
        let before = try Self.tables(path)

        let spool = try SQLiteSpoolStore.open(path: path, durability: .full)
        #expect(try spool.depth() == SpoolDepth(count: 3, oldestReceivedAt: 2))
        #expect(try spool.fetch(after: 0, limit: 10, maxBytes: 1 << 20).map(\.seq) == [2, 3, 4])
        #expect(try spool.fetch(after: 0, limit: 10, maxBytes: 1 << 20).map { String(decoding: $0.item, as: UTF8.self) } == ["entry 2", "entry 3", "entry 4"])
        #expect(try spool.highestSeq() == 4)
        #expect(try spool.append([Array("entry 5".utf8)], receivedAt: 5) == [5])
        try spool.probeWritable()

        #expect(try Self.tables(path) == before)
        #expect(try Self.migrations(path) == (OldStoreFile.migrations + ["spool-v1"]).sorted())
        let kept = try DatabaseQueue(path: path).read { db in try String.fetchAll(db, sql: "SELECT name FROM lymph_dedup_scope") }
        #expect(kept == ["kept"])
        // Opened again: nothing runs twice, nothing is lost.
        #expect(try SQLiteSpoolStore.open(path: path).depth().count == 4)
        // `lymph spool` reads it as before.
        #expect(try SpoolStatus.read(spoolPath: path, statePath: nil).entries == 4)
    }

    @Test("a state file from before keeps its empty spool table and opens as it was")
    func oldStateFile() throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/serve.sqlite"
        try OldStoreFile.make(path)
        let before = try Self.tables(path)
        let state = try StateStore.open(path: path)
        try state.write { db in try StateStore.recordSpoolProgress(db, doneThrough: 9) }
        #expect(try state.spoolDoneThrough() == 9)
        // The only changes are the state store's own later migrations: dedup keys in
        // generations, the count of tickets closed, tickets' source events in lists, dedup
        // keys' saved fingerprints, tickets' count of source events (a column and a trigger), and
        // interrupted runs' inputs by pipeline, the pipeline each dedup scope belongs to, and whether an output file's
        // last commit was its process's last.
        #expect(
            try Self.tables(path)
                == before.subtracting(["lymph_ticket_sources"]).union([
                    "lymph_dedup_generation", "lymph_ticket_closes", "lymph_ticket_source_lists", "lymph_dedup_fingerprint_key",
                    "lymph_dedup_fingerprints",
                ]))
        #expect(
            try Self.migrations(path)
                == (OldStoreFile.migrations + [
                    "v7-dedup-generations", "v8-ticket-closes", "v9-ticket-source-lists", "v10-dedup-fingerprints",
                    "v11-ticket-source-count", "v12-ticket-source-count-trigger", "v13-run-inputs-by-pipeline", "v14-ticket-source-chains",
                    "v15-run-inputs-resume-point", "v16-dedup-scope-pipeline", "v17-output-files-closed",
                ]).sorted())
    }

    @Test("an entry SQLite refuses to bind fails its append, saying it is too big, and nothing of the append is stored")
    func refusedEntry() throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let spool = try SQLiteSpoolStore.open(path: dir + "/spool.sqlite")
        // A small length limit on the spool's one connection stands in for SQLite's 1 GB one.
        spool.queue.writeWithoutTransaction { db in _ = sqlite3_limit(db.sqliteConnection, SQLITE_LIMIT_LENGTH, 64) }
        let error = #expect(throws: StoreError.self) { try spool.append([Array("first".utf8), [UInt8](repeating: 0x78, count: 100)], receivedAt: 1) }
        #expect(error?.message.contains("too big") == true)
        #expect(try spool.fetch(after: 0, limit: 10, maxBytes: 1 << 20).isEmpty)
        #expect(try spool.append([Array("next".utf8), []], receivedAt: 2).count == 2)
        #expect(try spool.fetch(after: 0, limit: 10, maxBytes: 1 << 20).map { String(decoding: $0.item, as: UTF8.self) } == ["next", ""])
    }
}

/// A store file as the state store's migrations made it while they included the spool's table
/// ("v3-spool"): what every state file, and every spool file, was before the spool had a schema
/// of its own. The statements are those migrations' own.
enum OldStoreFile {
    static let migrations = ["v1-dedup", "v2-maintenance", "v3-spool", "v4-replays", "v5-exactly-once", "v6-run-inputs"]

    static func make(_ path: String) throws {
        try DatabaseQueue(path: path).write { db in
            try db.execute(
                sql: """
                    CREATE TABLE lymph_dedup_scope (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
                    CREATE TABLE lymph_dedup (scope INTEGER NOT NULL, key BLOB NOT NULL, seen_at REAL NOT NULL, PRIMARY KEY (scope, key)) WITHOUT ROWID;
                    CREATE TABLE lymph_tickets (ticket_id TEXT PRIMARY KEY, equipment_id TEXT NOT NULL, action TEXT NOT NULL, priority TEXT NOT NULL,
                        due_by REAL NOT NULL, status TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL, note TEXT);
                    CREATE UNIQUE INDEX lymph_tickets_open ON lymph_tickets (equipment_id, action) WHERE status = 'open';
                    CREATE INDEX lymph_tickets_due ON lymph_tickets (status, due_by);
                    CREATE TABLE lymph_ticket_sources (event_id TEXT NOT NULL UNIQUE, ticket_id TEXT NOT NULL);
                    CREATE INDEX lymph_ticket_sources_ticket ON lymph_ticket_sources (ticket_id);
                    CREATE TABLE lymph_sensors (sensor_id TEXT PRIMARY KEY, equipment_id TEXT, status TEXT NOT NULL, since REAL NOT NULL,
                        last_event_id TEXT NOT NULL, last_event_at REAL NOT NULL);
                    CREATE TABLE lymph_spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, received_at REAL NOT NULL, item BLOB NOT NULL);
                    CREATE TABLE lymph_replayed (key BLOB PRIMARY KEY, replayed_at REAL NOT NULL) WITHOUT ROWID;
                    CREATE TABLE lymph_output_files (real_path TEXT PRIMARY KEY, path TEXT NOT NULL, device INTEGER NOT NULL, inode INTEGER NOT NULL,
                        length INTEGER NOT NULL, fingerprint INTEGER NOT NULL, fingerprint_length INTEGER NOT NULL, shared INTEGER NOT NULL DEFAULT 0,
                        committed_at REAL NOT NULL);
                    CREATE TABLE IF NOT EXISTS lymph_spool_progress (id INTEGER PRIMARY KEY CHECK (id = 1), done_through INTEGER NOT NULL);
                    CREATE TABLE lymph_run_inputs (position INTEGER PRIMARY KEY, path TEXT NOT NULL, device INTEGER NOT NULL, inode INTEGER NOT NULL,
                        head_length INTEGER NOT NULL, head_fingerprint INTEGER NOT NULL, done INTEGER NOT NULL);
                    CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
                    """)
            for id in migrations { try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES (?)", arguments: [id]) }
        }
        _ = try DatabaseQueue(path: path).writeWithoutTransaction { db in try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL") }
    }
}
