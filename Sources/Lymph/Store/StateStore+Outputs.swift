import GRDB

/// Output files as of the last commit (`lymph_output_files`), for `OutputLedger`: a restart
/// after a crash cuts each back to what its committed work wrote.
extension StateStore {
    /// A row of `lymph_output_files`: an output file as of the last commit.
    struct OutputFileRecord: Sendable, Equatable {
        /// `realpath(3)` of the file: the row's key.
        var realPath: String
        /// The path as the pipeline opened it.
        var path: String
        var device: UInt64
        var inode: UInt64
        /// Bytes of the file that belong to committed work.
        var length: Int64
        /// FNV-1a of the `fingerprintLength` (at most 64) bytes before `length`.
        var fingerprint: UInt64
        var fingerprintLength: Int
        /// Another program appends to the file too: it is never cut back.
        var shared: Bool
        /// Written by the last commit of a process that ended cleanly: nothing it wrote is
        /// uncommitted.
        var closed = false
    }

    /// The row for `realPath`, if any.
    func outputFile(realPath: String) throws(StoreError) -> OutputFileRecord? {
        try read { db in
            try Row.fetchOne(
                db,
                sql: """
                    SELECT real_path, path, device, inode, length, fingerprint, fingerprint_length, shared, closed
                    FROM lymph_output_files WHERE real_path = ?
                    """, arguments: [realPath]
            ).map { row in
                OutputFileRecord(
                    realPath: try row.decode(atIndex: 0), path: try row.decode(atIndex: 1), device: UInt64(bitPattern: try row.decode(atIndex: 2)),
                    inode: UInt64(bitPattern: try row.decode(atIndex: 3)), length: try row.decode(atIndex: 4),
                    fingerprint: UInt64(bitPattern: try row.decode(atIndex: 5)), fingerprintLength: try row.decode(atIndex: 6),
                    shared: try row.decode(atIndex: 7), closed: try row.decode(atIndex: 8))
            }
        }
    }

    /// The row for `realPath` in this store (this instance's, on PostgreSQL), if any.
    func outputFileRecord(realPath: String) throws(StoreError) -> OutputFileRecord? {
        guard let postgres else { return try outputFile(realPath: realPath) }
        return try Self.storeErrors(location) { try postgres.blocking { try await postgres.outputFile(realPath: realPath) } }
    }

    /// Inserts or replaces the rows of `records`, in one transaction of their own.
    func recordOutputFiles(_ records: [OutputFileRecord], at now: Double) throws(StoreError) {
        guard let postgres else {
            try write { db in for record in records { try Self.recordOutputFile(db, record, at: now) } }
            return
        }
        try Self.storeErrors(location) {
            try postgres.blocking {
                try await postgres.database.perform("cannot record output files") { client in
                    try await client.withTransaction(logger: postgres.database.logger) { conn in
                        try await postgres.recordOutputFiles(records, at: now, on: conn)
                    }
                }
            }
        }
    }

    /// Inserts or replaces `record`'s row (inside the caller's transaction).
    static func recordOutputFile(_ db: Database, _ record: OutputFileRecord, at now: Double) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO lymph_output_files (real_path, path, device, inode, length, fingerprint, fingerprint_length, shared, committed_at, closed)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (real_path) DO UPDATE SET path = excluded.path, device = excluded.device, inode = excluded.inode,
                    length = excluded.length, fingerprint = excluded.fingerprint, fingerprint_length = excluded.fingerprint_length,
                    shared = excluded.shared, committed_at = excluded.committed_at, closed = excluded.closed
                """
        ).execute(arguments: [
            record.realPath, record.path, Int64(bitPattern: record.device), Int64(bitPattern: record.inode),
            record.length, Int64(bitPattern: record.fingerprint), record.fingerprintLength, record.shared, now, record.closed,
        ])
    }
}
