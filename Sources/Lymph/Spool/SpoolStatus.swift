import Foundation
import GRDB

/// What `lymph serve`'s spool holds, for `lymph spool`: read-only, safe while the server runs.
///
/// Both files are opened with SQLite's read-only flag and no lock of Lymph's own
/// (`StoreLock`), so a running server is never blocked: in WAL mode a reader sees the last
/// commit and the writer goes on. Nothing is created: a missing spool file is `exists == false`.
/// (SQLite itself may create the `-wal` and `-shm` files of a database that has none, as any
/// reader does.)
public struct SpoolStatus: Sendable {
    /// The spool file read.
    public let path: String
    public let exists: Bool
    /// Entries in the spool (its depth), and the bytes of their items.
    public var entries = 0
    public var bytes: Int64 = 0
    /// The spool file and its write-ahead log on disk.
    public var fileBytes: Int64 = 0
    /// Entries the worker has not committed yet, and those it has committed to the state store
    /// (`seq <= done_through`) but not yet deleted from the spool.
    public var pending = 0
    public var done = 0
    /// From the state store's `lymph_spool_progress`; nil when it has none (then all are pending).
    public var doneThrough: Int64?
    /// The oldest entry: its sequence number and arrival (seconds since the epoch).
    public var oldestSeq: Int64?
    public var oldestReceivedAt: Double?
    /// The oldest entry still pending.
    public var oldestPendingReceivedAt: Double?

    /// Reads the spool at `spoolPath` and the progress recorded in the state store at
    /// `statePath` (skipped when nil or missing). Throws `SpoolStatusError` when a file is not
    /// a readable SQLite database.
    public static func read(spoolPath: String, statePath: String?) throws(SpoolStatusError) -> SpoolStatus {
        var st = stat()
        guard stat(spoolPath, &st) == 0 else {
            if errno == ENOENT { return SpoolStatus(path: spoolPath, exists: false) }
            throw SpoolStatusError(path: spoolPath, message: "cannot read: \(String(cString: strerror(errno)))")
        }
        // SQLite would wait on a FIFO for a writer that never comes (and read a device forever).
        for path in [spoolPath] + (statePath.map { [$0] } ?? []) {
            var info = stat()
            if stat(path, &info) == 0, (info.st_mode & S_IFMT) != S_IFREG {
                throw SpoolStatusError(path: path, message: "is not a regular file (a FIFO, a device or a folder), so not a SQLite store")
            }
        }
        var status = SpoolStatus(path: spoolPath, exists: true)
        status.fileBytes = Int64(st.st_size)
        if stat(spoolPath + "-wal", &st) == 0 { status.fileBytes += Int64(st.st_size) }

        var doneThrough: Int64?
        if let statePath, FileManager.default.fileExists(atPath: statePath) {
            doneThrough = try readOnly(statePath) { db in
                guard try tableExists(db, "lymph_spool_progress") else { return nil }
                return try Int64.fetchOne(db, sql: "SELECT done_through FROM lymph_spool_progress WHERE id = 1")
            }
        }
        status.doneThrough = doneThrough
        try readOnly(spoolPath) { db in
            guard try tableExists(db, "lymph_spool") else { return }
            if let row = try Row.fetchOne(db, sql: "SELECT COUNT(*), COALESCE(SUM(length(item)), 0) FROM lymph_spool") {
                status.entries = try row.decode(atIndex: 0)
                status.bytes = try row.decode(atIndex: 1)
            }
            if let row = try Row.fetchOne(db, sql: "SELECT seq, received_at FROM lymph_spool ORDER BY seq LIMIT 1") {
                status.oldestSeq = try row.decode(atIndex: 0)
                status.oldestReceivedAt = try row.decode(atIndex: 1)
            }
            let after = doneThrough ?? Int64.min
            status.pending = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM lymph_spool WHERE seq > ?", arguments: [after]) ?? 0
            status.oldestPendingReceivedAt = try Double.fetchOne(
                db, sql: "SELECT received_at FROM lymph_spool WHERE seq > ? ORDER BY seq LIMIT 1", arguments: [after])
            status.done = status.entries - status.pending
        }
        return status
    }

    /// Runs `body` in one read transaction (one snapshot) on a read-only connection.
    static func readOnly<T>(_ path: String, _ body: (Database) throws -> T) throws(SpoolStatusError) -> T {
        do {
            var config = Configuration()
            config.readonly = true
            config.label = "lymph-spool-status"
            // A reader waits only while SQLite recovers a log left by a crash.
            config.busyMode = .timeout(5)
            let queue = try DatabaseQueue(path: path, configuration: config)
            defer { try? queue.close() }
            return try queue.read(body)
        } catch {
            throw SpoolStatusError(path: path, message: "cannot read it as a SQLite store: \(error)")
        }
    }

    static func tableExists(_ db: Database, _ name: String) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?", arguments: [name]) ?? false
    }

    /// The state file that a spool file belongs to: the inverse of `SQLiteSpoolStore.path(forState:)`.
    public static func statePath(forSpool path: String) -> String? {
        if path.hasSuffix(".spool.sqlite") { return String(path.dropLast(13)) + ".sqlite" }
        if path.hasSuffix(".spool") { return String(path.dropLast(6)) }
        return nil
    }

    /// Seconds since the oldest entry arrived, at `now`.
    public func oldestAge(now: Double = Timestamp.now()) -> Double? { oldestReceivedAt.map { max(0, now - $0) } }

    /// One JSON object: `spool`, `exists`, `entries`, `bytes`, `file_bytes`, `pending`, `done`,
    /// `done_through`, `oldest_seq`, `oldest_received_at`, `oldest_age_seconds`,
    /// `oldest_pending_received_at` (times as UTC text; absent values null).
    public func json(now: Double = Timestamp.now()) -> String {
        let object: [String: Any] = [
            "spool": path, "exists": exists, "entries": entries, "bytes": bytes, "file_bytes": fileBytes,
            "pending": pending, "done": done, "done_through": doneThrough ?? NSNull(), "oldest_seq": oldestSeq ?? NSNull(),
            "oldest_received_at": oldestReceivedAt.map { Timestamp.format($0) } ?? NSNull(),
            "oldest_age_seconds": oldestAge(now: now).map { ($0 * 1000).rounded() / 1000 } ?? NSNull(),
            "oldest_pending_received_at": oldestPendingReceivedAt.map { Timestamp.format($0) } ?? NSNull(),
        ]
        return ReportJSON.string(object)
    }
}

/// A spool or state file that is there but cannot be read as a store (exit 3 in the CLI).
public struct SpoolStatusError: Error, Sendable, CustomStringConvertible {
    public let path: String
    public let message: String
    public var description: String { "'\(path)': \(message)" }
}
