import Foundation
import GRDB

/// How a commit reaches the disk. `normal` (WAL, the default) survives a crash of Lymph;
/// `full` also syncs the log on every commit, so it survives a power loss: what `lymph serve`
/// needs before it answers 202.
public enum StoreDurability: Sendable { case normal, full }

/// Opening one of Lymph's SQLite files: the state store and the spool store differ only in
/// their schema.
enum SQLiteFile {
    /// The writer's page cache, bounded and without mmap, so memory does not grow with the store.
    /// A full commit group of dedup keys is appended to a generation of its own
    /// (`DedupGenerations`), so a commit needs the interior pages and the right edge of the
    /// B-tree; leaves it does not find here come back from the operating system's page cache, a
    /// copy, not a disk read, since they were just written.
    static let writerCacheKiB = 1024
    /// A reader looks up a few keys per batch (the ones a filter may hold), and SQLite empties
    /// its cache whenever the writer commits, so a larger one holds little more for long.
    static let readerCacheKiB = 1024

    /// The database at `path` (created with its folder when missing; `:memory:` for one in
    /// memory), in WAL mode with `durability`, migrated by `migrator`.
    static func open(path: String, durability: StoreDurability, migrator: DatabaseMigrator) throws -> DatabaseQueue {
        var config = Configuration()
        config.busyMode = .timeout(5)
        let queue: DatabaseQueue
        if path == ":memory:" {
            queue = try DatabaseQueue(configuration: config)
        } else {
            let parent = PathParent.of(path)
            if !parent.isEmpty {
                try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
            }
            config.prepareDatabase { db in
                try db.execute(sql: durability == .full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
                try db.execute(sql: "PRAGMA cache_size = -\(writerCacheKiB)")
            }
            try refuseForeign(path: path)
            queue = try DatabaseQueue(path: path, configuration: config)
            try queue.writeWithoutTransaction { db in
                _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
            }
        }
        try migrator.migrate(queue)
        return queue
    }

    /// A database holding tables but none of Lymph's (nor GRDB's record of migrations) is
    /// another program's, named by mistake: opening it for writing would set its journal mode
    /// and migrating would write Lymph's tables into it. Looked at read-only, before either.
    static func refuseForeign(path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0, st.st_size > 0 else { return }
        var config = Configuration()
        config.readonly = true
        config.busyMode = .timeout(5)
        let tables = try DatabaseQueue(path: path, configuration: config).read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        }
        guard !tables.isEmpty, !tables.contains(where: { $0 == "grdb_migrations" || $0.hasPrefix("lymph_") }) else { return }
        throw ForeignDatabase(tables: tables)
    }

    /// See `refuseForeign`.
    struct ForeignDatabase: Error, CustomStringConvertible {
        let tables: [String]
        var description: String {
            let shown = tables.prefix(3).map { PrintableText.of($0, limit: 40) }.joined(separator: ", ") + (tables.count > 3 ? ", …" : "")
            return "it is not a Lymph store: it holds another program's tables (\(shown)) and none of Lymph's; nothing was written to it; name another file"
        }
    }

    /// The state store's database: at a path, a pool (one writer, up to two readers on WAL
    /// snapshots), so lookups never wait for the runner's transaction, which is written on its
    /// own thread while the pipeline goes on; `:memory:` is one connection.
    static func openPool(path: String, durability: StoreDurability, migrator: DatabaseMigrator) throws -> any DatabaseWriter {
        if path == ":memory:" { return try open(path: path, durability: durability, migrator: migrator) }
        var config = Configuration()
        config.busyMode = .timeout(5)
        config.maximumReaderCount = 2
        let parent = PathParent.of(path)
        if !parent.isEmpty {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        }
        config.prepareDatabase { db in
            if db.configuration.readonly {
                try db.execute(sql: "PRAGMA cache_size = -\(readerCacheKiB)")
            } else {
                try db.execute(sql: durability == .full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
                try db.execute(sql: "PRAGMA cache_size = -\(writerCacheKiB)")
            }
        }
        try refuseForeign(path: path)
        let pool = try DatabasePool(path: path, configuration: config)
        try migrator.migrate(pool)
        return pool
    }
}
