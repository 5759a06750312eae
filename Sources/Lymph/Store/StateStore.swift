import Foundation
import GRDB
import Synchronization

/// The embedded store (SQLite through GRDB): dedup keys, tickets, sensors, replays, output
/// files' committed lengths, input checkpoints and how far `lymph serve`'s spool is done. The
/// spool itself is another file (`SQLiteSpoolStore`).
///
/// WAL mode with `synchronous = NORMAL`: a committed transaction survives a crash of Lymph;
/// after a power loss the last transactions may roll back, never half-apply.
public final class StateStore: Sendable {
    /// The database path, or `:memory:`.
    public let location: String
    /// A pool for a file (lookups read WAL snapshots while the runner's transaction is written);
    /// one connection for `:memory:`.
    let queue: any DatabaseWriter
    /// Each dedup scope's generations and key filters, built on first use and shared by every
    /// stage of that scope over this store (a reloaded pipeline's stage and the one it replaces).
    let dedupIndexes = Mutex<[Int64: DedupGenerations]>([:])

    /// Opens (creating it and its folder) and migrates the store at `path`, or an in-memory one for
    /// `:memory:`; throws when it cannot.
    /// `concurrentReads`: a pool whose readers never wait for a commit (`lymph run`, whose
    /// commits run beside the pipeline); else one connection (`lymph serve`, which waits for each
    /// commit and has no reads to overlap with it).
    public static func open(path: String, durability: StoreDurability = .normal, concurrentReads: Bool = true) throws(StoreError) -> StateStore {
        do {
            let db: any DatabaseWriter =
                concurrentReads
                ? try SQLiteFile.openPool(path: path, durability: durability, migrator: migrator)
                : try SQLiteFile.open(path: path, durability: durability, migrator: migrator)
            var st = stat()
            let identity = path != ":memory:" && stat(path, &st) == 0 ? (UInt64(st.st_dev), UInt64(st.st_ino)) : nil
            return StateStore(location: path, queue: db, fileIdentity: identity)
        } catch {
            throw StoreError(location: path, message: "cannot open the store: \(error)" + FreeSpace.hint(forPath: path))
        }
    }

    /// The store file's device and inode when it was opened (nil in memory or on PostgreSQL).
    let fileIdentity: (device: UInt64, inode: UInt64)?

    /// Throws when the file at the store's path is no longer the one this process opened: it was
    /// deleted, or replaced by another. What a commit writes would go to a file no later run
    /// reads, and that run would do the same work again; checked before each commit.
    func checkFileIsOurs() throws(StoreError) {
        guard let id = fileIdentity else { return }
        var st = stat()
        if stat(location, &st) != 0 || UInt64(st.st_dev) != id.device || UInt64(st.st_ino) != id.inode {
            throw StoreError(
                location: location,
                message:
                    "was deleted or replaced while this process used it: its work is not committed (a later run does it again); leave the store alone while lymph runs"
            )
        }
    }

    /// Opens the store at `path` to read it (`lymph tickets`, `lymph sensors`): nothing is
    /// created, migrated or written, so a store the user may only read can be read, and a file
    /// that is not a store stays as it was. A store an older lymph wrote is brought up to date
    /// (`open`) when it can be written; else it is refused, saying so.
    ///
    /// Without a write-ahead log beside it (no process has the store open), it is opened
    /// immutable: a read-only connection in WAL mode would otherwise create the log's index
    /// (`-shm`), which fails in a folder the reader may not write, and elsewhere leaves a file
    /// owned by the reader that the store's owner then cannot write. With a log, the files of
    /// the process using the store are read.
    public static func openForReading(path: String) throws(StoreError) -> StateStore {
        let queue: DatabaseQueue
        let (isStore, current): (Bool, Bool)
        do {
            var config = Configuration()
            config.readonly = true
            config.label = "lymph-state-reader"
            // A reader waits only while SQLite recovers a log left by a crash.
            config.busyMode = .timeout(5)
            func reader(_ target: String) throws -> (DatabaseQueue, Bool, Bool) {
                let queue = try DatabaseQueue(path: target, configuration: config)
                let (isStore, current) = try queue.read { db in
                    (try db.tableExists("lymph_dedup_scope"), try migrator.hasCompletedMigrations(db))
                }
                return (queue, isStore, current)
            }
            // A SQLite built without URI filenames takes the URI for a file's name, which does
            // not exist: then the store is opened as usual.
            if access(path + "-wal", F_OK) != 0, let opened = try? reader(Self.immutableURI(path)) {
                (queue, isStore, current) = opened
            } else {
                (queue, isStore, current) = try reader(path)
            }
        } catch {
            throw StoreError(location: path, message: "cannot read the store: \(error)")
        }
        if !isStore { throw StoreError(location: path, message: "is not a Lymph store (it has none of Lymph's tables)") }
        if current { return StateStore(location: path, queue: queue) }
        try? queue.close()
        guard access(path, W_OK) == 0 else {
            throw StoreError(
                location: path, message: "was written by an older lymph and cannot be brought up to date here (it is read-only): run its pipeline once")
        }
        return try open(path: path, concurrentReads: false)
    }

    /// `file:PATH?immutable=1`, the path made absolute and percent-encoded.
    static func immutableURI(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "?#%")
        return "file:" + (absolute.addingPercentEncoding(withAllowedCharacters: allowed) ?? absolute) + "?immutable=1"
    }

    private init(location: String, queue: any DatabaseWriter, postgres: PostgresState? = nil, fileIdentity: (UInt64, UInt64)? = nil) {
        self.location = location
        self.fileIdentity = fileIdentity.map { (device: $0.0, inode: $0.1) }
        self.queue = queue
        self.postgres = postgres
    }

    /// With `state: {postgres: ...}`: the state is there, and this store's SQLite side is never
    /// used (its reads and writes throw, so a part not made for PostgreSQL fails loudly instead of
    /// keeping state nowhere).
    public let postgres: PostgresState?

    /// A store over a PostgreSQL state.
    public static func postgres(_ state: PostgresState) throws(StoreError) -> StateStore {
        do {
            return StateStore(location: state.location, queue: try DatabaseQueue(), postgres: state)
        } catch {
            throw StoreError(location: state.location, message: "\(error)")
        }
    }

    private func refuseOnPostgres() throws(StoreError) {
        if postgres != nil { throw StoreError(location: location, message: "this operation is not available on a PostgreSQL state") }
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1-dedup") { db in
            // Scopes are numbered so the per-key B-tree compares an integer, not a name.
            try db.execute(
                sql: """
                    CREATE TABLE lymph_dedup_scope (
                        id INTEGER PRIMARY KEY,
                        name TEXT NOT NULL UNIQUE
                    );
                    CREATE TABLE lymph_dedup (
                        scope INTEGER NOT NULL,
                        key BLOB NOT NULL,
                        seen_at REAL NOT NULL,
                        PRIMARY KEY (scope, key)
                    ) WITHOUT ROWID
                    """)
        }
        m.registerMigration("v2-maintenance") { db in
            // One open ticket per job: the partial unique index enforces it in the store itself.
            try db.execute(
                sql: """
                    CREATE TABLE lymph_tickets (
                        ticket_id TEXT PRIMARY KEY,
                        equipment_id TEXT NOT NULL,
                        action TEXT NOT NULL,
                        priority TEXT NOT NULL,
                        due_by REAL NOT NULL,
                        status TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        updated_at REAL NOT NULL,
                        note TEXT
                    );
                    CREATE UNIQUE INDEX lymph_tickets_open ON lymph_tickets (equipment_id, action) WHERE status = 'open';
                    CREATE INDEX lymph_tickets_due ON lymph_tickets (status, due_by);
                    -- Every event that contributed to a ticket, in the order they came (rowid): kept
                    -- here rather than as a list in the ticket row, which every merge would rewrite.
                    CREATE TABLE lymph_ticket_sources (
                        event_id TEXT NOT NULL UNIQUE,
                        ticket_id TEXT NOT NULL
                    );
                    CREATE INDEX lymph_ticket_sources_ticket ON lymph_ticket_sources (ticket_id);
                    CREATE TABLE lymph_sensors (
                        sensor_id TEXT PRIMARY KEY,
                        equipment_id TEXT,
                        status TEXT NOT NULL,
                        since REAL NOT NULL,
                        last_event_id TEXT NOT NULL,
                        last_event_at REAL NOT NULL
                    );
                    """)
        }
        // "v3-spool" made `lymph_spool` here; the spool has a file and a schema of its own
        // (`SQLiteSpoolStore`). State files made before keep that table, empty.
        m.registerMigration("v4-replays") { db in
            // Resume points whose replay completed (see `ReplayLedger`): a record replayed twice
            // does its work once.
            try db.execute(
                sql: """
                    CREATE TABLE lymph_replayed (
                        key BLOB PRIMARY KEY,
                        replayed_at REAL NOT NULL
                    ) WITHOUT ROWID
                    """)
        }
        m.registerMigration("v5-exactly-once") { db in
            // Each output file's length as of the last commit, committed with the work that wrote
            // it (OutputLedger), and how far `lymph serve`'s spool is done (SpoolSource): both are
            // written in the runner's transaction, so they always match the committed work.
            try db.execute(
                sql: """
                    CREATE TABLE lymph_output_files (
                        real_path TEXT PRIMARY KEY,
                        path TEXT NOT NULL,
                        device INTEGER NOT NULL,
                        inode INTEGER NOT NULL,
                        length INTEGER NOT NULL,
                        fingerprint INTEGER NOT NULL,
                        fingerprint_length INTEGER NOT NULL,
                        shared INTEGER NOT NULL DEFAULT 0,
                        committed_at REAL NOT NULL
                    );
                    CREATE TABLE IF NOT EXISTS lymph_spool_progress (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        done_through INTEGER NOT NULL
                    );
                    """)
        }
        m.registerMigration("v6-run-inputs") { db in
            // How far an interrupted `lymph run` got in its input files (InputCheckpoint),
            // committed with the work of the items it counts.
            try db.execute(
                sql: """
                    CREATE TABLE lymph_run_inputs (
                        position INTEGER PRIMARY KEY,
                        path TEXT NOT NULL,
                        device INTEGER NOT NULL,
                        inode INTEGER NOT NULL,
                        head_length INTEGER NOT NULL,
                        head_fingerprint INTEGER NOT NULL,
                        done INTEGER NOT NULL
                    )
                    """)
        }
        m.registerMigration("v7-dedup-generations") { db in
            // Keys by generation, then key (see `DedupGenerations`): a commit's inserts stay in the
            // newest generation's pages, and a purge drops whole generations. Keys already held
            // become generation 0.
            try db.execute(
                sql: """
                    ALTER TABLE lymph_dedup RENAME TO lymph_dedup_before_generations;
                    CREATE TABLE lymph_dedup (
                        scope INTEGER NOT NULL,
                        generation INTEGER NOT NULL,
                        key BLOB NOT NULL,
                        seen_at REAL NOT NULL,
                        PRIMARY KEY (scope, generation, key)
                    ) WITHOUT ROWID;
                    CREATE TABLE lymph_dedup_generation (
                        scope INTEGER NOT NULL,
                        generation INTEGER NOT NULL,
                        keys INTEGER NOT NULL,
                        oldest REAL NOT NULL,
                        newest REAL NOT NULL,
                        PRIMARY KEY (scope, generation)
                    ) WITHOUT ROWID;
                    INSERT INTO lymph_dedup (scope, generation, key, seen_at)
                        SELECT scope, 0, key, seen_at FROM lymph_dedup_before_generations;
                    INSERT INTO lymph_dedup_generation (scope, generation, keys, oldest, newest)
                        SELECT scope, 0, COUNT(*), MIN(seen_at), MAX(seen_at) FROM lymph_dedup_before_generations GROUP BY scope;
                    DROP TABLE lymph_dedup_before_generations;
                    """)
        }
        m.registerMigration("v8-ticket-closes") { db in
            // How many tickets `lymph tickets close` closed: a running pipeline keeps the open
            // tickets in memory and loads them again when the count moves.
            try db.execute(
                sql: """
                    CREATE TABLE lymph_ticket_closes (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        count INTEGER NOT NULL
                    )
                    """)
        }
        m.registerMigration("v9-ticket-source-lists") { db in
            // A ticket's source events as one row per ticket per commit, appended in commit
            // order (`TicketBook`), and the set of applied events as a dedup scope of its own
            // (the name `TicketBook.sourceScope`), in generations like dedup keys: a commit no
            // longer inserts into two indexes all over their B-trees.
            try db.execute(
                sql: """
                    CREATE TABLE lymph_ticket_source_lists (
                        ticket_id TEXT NOT NULL,
                        event_ids TEXT NOT NULL
                    );
                    CREATE INDEX lymph_ticket_source_lists_ticket ON lymph_ticket_source_lists (ticket_id);
                    INSERT INTO lymph_ticket_source_lists (ticket_id, event_ids)
                        SELECT ticket_id, json_group_array(event_id)
                        FROM (SELECT ticket_id, event_id FROM lymph_ticket_sources ORDER BY ticket_id, rowid) GROUP BY ticket_id;
                    """)
            try db.execute(sql: "INSERT OR IGNORE INTO lymph_dedup_scope (name) VALUES (?)", arguments: [TicketBook.sourceScope])
            let scope = try Int64.fetchOne(db, sql: "SELECT id FROM lymph_dedup_scope WHERE name = ?", arguments: [TicketBook.sourceScope])!
            try db.execute(
                sql: """
                    INSERT INTO lymph_dedup (scope, generation, key, seen_at)
                        SELECT ?1, 0, CAST(s.event_id AS BLOB), COALESCE(t.updated_at, 0)
                        FROM lymph_ticket_sources s LEFT JOIN lymph_tickets t ON t.ticket_id = s.ticket_id
                    """, arguments: [scope])
            try db.execute(
                sql: """
                    INSERT INTO lymph_dedup_generation (scope, generation, keys, oldest, newest)
                        SELECT scope, 0, COUNT(*), MIN(seen_at), MAX(seen_at) FROM lymph_dedup WHERE scope = ?1 GROUP BY scope
                    """, arguments: [scope])
            try db.execute(sql: "DROP TABLE lymph_ticket_sources")
        }
        m.registerMigration("v10-dedup-fingerprints") { db in
            // Each commit group's key fingerprints, saved with its keys (see `DedupGenerations`):
            // a run loads them into its filters instead of reading and hashing every key. A
            // generation's rows count its keys and its first time, so rows that do not account
            // for every key of the generation (keys written without them) are found and made
            // again from the keys. The key of each scope's fingerprints (`DedupFingerprinter`), and
            // the version of the function that made them.
            try db.execute(
                sql: """
                    CREATE TABLE lymph_dedup_fingerprint_key (
                        scope INTEGER PRIMARY KEY,
                        k0 INTEGER NOT NULL,
                        k1 INTEGER NOT NULL,
                        version INTEGER NOT NULL
                    );
                    CREATE TABLE lymph_dedup_fingerprints (
                        scope INTEGER NOT NULL,
                        generation INTEGER NOT NULL,
                        keys INTEGER NOT NULL,
                        first_at REAL NOT NULL,
                        fingerprints BLOB NOT NULL
                    );
                    CREATE INDEX lymph_dedup_fingerprints_generation ON lymph_dedup_fingerprints (scope, generation);
                    """)
        }
        m.registerMigration("v11-ticket-source-count") { db in
            // How many source events each ticket has (kept by a trigger from v12): a change
            // reports the count with the latest events (`TicketBook`), reading the end of its
            // lists only.
            try db.execute(
                sql: """
                    ALTER TABLE lymph_tickets ADD COLUMN source_count INTEGER NOT NULL DEFAULT 0;
                    UPDATE lymph_tickets SET source_count = (
                        SELECT COALESCE(SUM(json_array_length(l.event_ids)), 0) FROM lymph_ticket_source_lists l
                        WHERE l.ticket_id = lymph_tickets.ticket_id);
                    """)
        }
        m.registerMigration("v12-ticket-source-count-trigger") { db in
            // The count kept by the store itself, as each commit's row of a ticket's new events
            // goes in: an older version that opens the store (it runs the migrations it knows and
            // goes on) writes those rows without counting them. Counted again from the lists,
            // for any such commit before.
            try db.execute(
                sql: """
                    CREATE TRIGGER lymph_count_ticket_sources AFTER INSERT ON lymph_ticket_source_lists BEGIN
                        UPDATE lymph_tickets SET source_count = source_count + json_array_length(NEW.event_ids) WHERE ticket_id = NEW.ticket_id;
                    END;
                    UPDATE lymph_tickets SET source_count = (
                        SELECT COALESCE(SUM(json_array_length(l.event_ids)), 0) FROM lymph_ticket_source_lists l
                        WHERE l.ticket_id = lymph_tickets.ticket_id);
                    """)
        }
        m.registerMigration("v13-run-inputs-by-pipeline") { db in
            // A record per pipeline (`InputCheckpoint`): with one per store, a second pipeline on
            // the same state file and inputs skipped the items the first had committed, and one
            // over other inputs deleted the first's record. A record from before names no
            // pipeline and is not continued: that run's inputs are read again from the start
            // (dedup drops what was done), which loses nothing.
            try db.execute(
                sql: """
                    DROP TABLE lymph_run_inputs;
                    CREATE TABLE lymph_run_inputs (
                        pipeline TEXT NOT NULL,
                        position INTEGER NOT NULL,
                        path TEXT NOT NULL,
                        device INTEGER NOT NULL,
                        inode INTEGER NOT NULL,
                        head_length INTEGER NOT NULL,
                        head_fingerprint INTEGER NOT NULL,
                        done INTEGER NOT NULL,
                        PRIMARY KEY (pipeline, position)
                    ) WITHOUT ROWID;
                    """)
        }
        m.registerMigration("v14-ticket-source-chains") { db in
            // Each row of a ticket's events names the ticket's row before it (`prev`), and the
            // ticket its latest (`last_list`): a ticket's lists are read back from its latest
            // by id, and a commit appends its rows without an index by ticket, whose entries
            // went in all over its B-tree (every leaf written again each commit). The ids are an
            // INTEGER PRIMARY KEY, which VACUUM keeps: it renumbers a table's implicit rowids
            // when some were deleted, and the links would point at other rows. The new version
            // links and counts its rows in the statements that write them (`linked` 1); the
            // trigger does it for a row an older version writes (`linked` 0), whose reads by
            // ticket still work, by scanning the table.
            try db.execute(
                sql: """
                    CREATE TABLE lymph_ticket_source_chains (
                        id INTEGER PRIMARY KEY,
                        ticket_id TEXT NOT NULL,
                        event_ids TEXT NOT NULL,
                        prev INTEGER,
                        linked INTEGER NOT NULL DEFAULT 0
                    );
                    INSERT INTO lymph_ticket_source_chains (id, ticket_id, event_ids, prev, linked)
                        SELECT l.rowid, l.ticket_id, l.event_ids, (
                            SELECT MAX(p.rowid) FROM lymph_ticket_source_lists p WHERE p.ticket_id = l.ticket_id AND p.rowid < l.rowid), 1
                        FROM lymph_ticket_source_lists l;
                    ALTER TABLE lymph_tickets ADD COLUMN last_list INTEGER;
                    UPDATE lymph_tickets SET last_list = (
                        SELECT MAX(l.rowid) FROM lymph_ticket_source_lists l WHERE l.ticket_id = lymph_tickets.ticket_id);
                    DROP TRIGGER lymph_count_ticket_sources;
                    DROP TABLE lymph_ticket_source_lists;
                    ALTER TABLE lymph_ticket_source_chains RENAME TO lymph_ticket_source_lists;
                    CREATE TRIGGER lymph_link_ticket_sources AFTER INSERT ON lymph_ticket_source_lists WHEN NEW.linked = 0 BEGIN
                        UPDATE lymph_ticket_source_lists SET linked = 1,
                            prev = (SELECT last_list FROM lymph_tickets WHERE ticket_id = NEW.ticket_id) WHERE id = NEW.id;
                        UPDATE lymph_tickets SET source_count = source_count + json_array_length(NEW.event_ids), last_list = NEW.id
                            WHERE ticket_id = NEW.ticket_id;
                    END;
                    """)
        }
        m.registerMigration("v15-run-inputs-resume-point") { db in
            // Each input's last done item (`InputCheckpoint.ResumePoint`), so a file edited in
            // place past its first 4 KiB is not continued at the wrong item. A record an older
            // version writes leaves them NULL, and is continued as that version would.
            try db.execute(
                sql: """
                    ALTER TABLE lymph_run_inputs ADD COLUMN last_line INTEGER;
                    ALTER TABLE lymph_run_inputs ADD COLUMN last_fingerprint INTEGER;
                    """)
        }
        m.registerMigration("v17-output-files-closed") { db in
            // The process that wrote the row ended cleanly after committing everything it wrote
            // (`OutputLedger.closing`): bytes past the length at the next start are another
            // program's, not this one's uncommitted work.
            try db.execute(sql: "ALTER TABLE lymph_output_files ADD COLUMN closed INTEGER NOT NULL DEFAULT 0")
        }
        m.registerMigration("v16-dedup-scope-pipeline") { db in
            // The pipeline whose unnamed dedup stage files its keys under a scope
            // (`DedupScopeTaken`). NULL until one claims it: a scope made before this column
            // goes to the first pipeline that opens it.
            try db.execute(sql: "ALTER TABLE lymph_dedup_scope ADD COLUMN pipeline TEXT")
        }
        return m
    }

    /// Runs `body` in one write transaction; everything in it commits together or not at all.
    public func write<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        try refuseOnPostgres()
        do {
            return try queue.write(body)
        } catch {
            throw StoreError(location: location, writeFailure: error)
        }
    }

    /// Several statements' read in one deferred transaction (one snapshot, one read lock),
    /// without `read`'s read-only mode switch. `body` must not write.
    func readInDeferredTransaction<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        try refuseOnPostgres()
        do {
            return try queue.unsafeRead { db in
                var result: T?
                try db.inTransaction(.deferred) {
                    result = try body(db)
                    return .commit
                }
                return result!
            }
        } catch {
            throw StoreError(location: location, message: "read failed: \(error)")
        }
    }

    /// Runs `body` in a read-only transaction: one consistent snapshot, whatever commits meanwhile.
    public func read<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        try refuseOnPostgres()
        do {
            return try queue.read(body)
        } catch {
            throw StoreError(location: location, message: "read failed: \(error)")
        }
    }
}

/// The store cannot be used: the run cannot continue (exit 3).
public struct StoreError: Error, Sendable, CustomStringConvertible {
    /// The store's path, or `:memory:`.
    public let location: String
    /// What failed, with SQLite's reason.
    public let message: String
    /// SQLite could not write for lack of space (or an I/O error writing, which is how a full
    /// disk often shows): worth waiting out in a server, fatal in a run.
    public var isDiskFull = false
    /// A database server cannot be reached now (PostgreSQL down, restarting or out of
    /// connections): worth waiting out in a server, like a full disk.
    public var isUnavailable = false
    /// This process's lease on a shared database ran out: others may have taken its work, and
    /// it must start again as a new process.
    public var isLeaseLost = false
    /// `store 'PATH': message`.
    public var description: String { "store '\(location)': \(message)" }

    /// A failure of the store at `location`; `isDiskFull` when a write failed for lack of space.
    public init(location: String, message: String, isDiskFull: Bool = false, isUnavailable: Bool = false) {
        self.location = location
        self.message = message
        self.isDiskFull = isDiskFull
        self.isUnavailable = isUnavailable
    }

    /// A failed write, keeping whether it was for lack of space.
    init(location: String, writeFailure error: any Error) {
        var full = false
        if let e = error as? DatabaseError {
            full = e.resultCode.primaryResultCode == .SQLITE_FULL || e.resultCode.primaryResultCode == .SQLITE_IOERR
        }
        self.init(location: location, message: "write failed: \(error)", isDiskFull: full)
    }
}
