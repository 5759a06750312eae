import Foundation
import GRDB

/// How a commit reaches the disk. `normal` (WAL, the default) survives a crash of Lymph;
/// `full` also syncs the log on every commit, so it survives a power loss: what `lymph serve`
/// needs before it answers 202.
public enum StoreDurability: Sendable { case normal, full }

/// Opening one of Lymph's SQLite files: the state store and the spool store differ only in
/// their schema.
enum SQLiteFile {
    /// The database at `path` (created with its folder when missing; `:memory:` for one in
    /// memory), in WAL mode with `durability`, migrated by `migrator`.
    static func open(path: String, durability: StoreDurability, migrator: DatabaseMigrator) throws -> DatabaseQueue {
        var config = Configuration()
        config.busyMode = .timeout(5)
        let queue: DatabaseQueue
        if path == ":memory:" {
            queue = try DatabaseQueue(configuration: config)
        } else {
            let parent = (path as NSString).deletingLastPathComponent
            if !parent.isEmpty {
                try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
            }
            config.prepareDatabase { db in
                try db.execute(sql: durability == .full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
                // Dedup keys arrive in random order, so the B-tree is touched everywhere:
                // a 32 MiB page cache keeps most of it in memory. Bounded, and no mmap, so
                // memory does not grow with the size of the store.
                try db.execute(sql: "PRAGMA cache_size = -32768")
            }
            queue = try DatabaseQueue(path: path, configuration: config)
            try queue.writeWithoutTransaction { db in
                _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
            }
        }
        try migrator.migrate(queue)
        return queue
    }

    /// The state store's database: at a path, a pool (one writer, up to two readers on WAL
    /// snapshots), so lookups never wait for the runner's transaction, which is written on its
    /// own thread while the pipeline goes on; `:memory:` is one connection.
    static func openPool(path: String, durability: StoreDurability, migrator: DatabaseMigrator) throws -> any DatabaseWriter {
        if path == ":memory:" { return try open(path: path, durability: durability, migrator: migrator) }
        var config = Configuration()
        config.busyMode = .timeout(5)
        config.maximumReaderCount = 2
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        }
        config.prepareDatabase { db in
            if db.configuration.readonly {
                // A reader looks up a few keys per batch: a small cache of its own.
                try db.execute(sql: "PRAGMA cache_size = -4096")
            } else {
                try db.execute(sql: durability == .full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
                // As in `open`: the writer's bounded 32 MiB cache, no mmap.
                try db.execute(sql: "PRAGMA cache_size = -32768")
            }
        }
        let pool = try DatabasePool(path: path, configuration: config)
        try migrator.migrate(pool)
        return pool
    }
}
