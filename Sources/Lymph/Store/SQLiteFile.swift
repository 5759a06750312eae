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
        let pool = try DatabasePool(path: path, configuration: config)
        try migrator.migrate(pool)
        return pool
    }
}
