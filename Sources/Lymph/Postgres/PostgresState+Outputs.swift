import PostgresNIO

/// Output files as of the last commit, per instance (each instance writes files of its own;
/// see `OutputLedger`).
extension PostgresState {
    /// This instance's row for `realPath`, if any.
    func outputFile(realPath: String) async throws(StoreError) -> StateStore.OutputFileRecord? {
        let (table, logger, instance) = (database.table("lymph_output_files"), database.logger, instance)
        return try await database.perform("cannot read output files") { client in
            var record: StateStore.OutputFileRecord?
            for try await r in try await client.query(
                """
                SELECT real_path, path, device, inode, length, fingerprint, fingerprint_length, shared, closed
                FROM \(unescaped: table) WHERE instance = \(instance) AND real_path = \(realPath)
                """, logger: logger
            ).decode((String, String, Int64, Int64, Int64, Int64, Int32, Bool, Bool).self) {
                record = .init(
                    realPath: r.0, path: r.1, device: UInt64(bitPattern: r.2), inode: UInt64(bitPattern: r.3), length: r.4,
                    fingerprint: UInt64(bitPattern: r.5), fingerprintLength: Int(r.6), shared: r.7, closed: r.8)
            }
            return record
        }
    }

    /// Inserts or replaces this instance's rows for `records`, in the caller's transaction; never
    /// with an older commit's (a transaction given up on that lands after the one retrying it).
    func recordOutputFiles(_ records: [StateStore.OutputFileRecord], at now: Double, on conn: PostgresConnection) async throws {
        let table = database.table("lymph_output_files")
        for r in records {
            let (device, inode, fingerprint, fpLength) = (
                Int64(bitPattern: r.device), Int64(bitPattern: r.inode), Int64(bitPattern: r.fingerprint), Int32(r.fingerprintLength)
            )
            try await conn.command(
                """
                INSERT INTO \(unescaped: table) (instance, real_path, path, device, inode, length, fingerprint, fingerprint_length, shared, committed_at, closed)
                VALUES (\(instance), \(r.realPath), \(r.path), \(device), \(inode), \(r.length), \(fingerprint), \(fpLength), \(r.shared), \(now), \(r.closed))
                ON CONFLICT (instance, real_path) DO UPDATE SET path = excluded.path, device = excluded.device, inode = excluded.inode,
                    length = excluded.length, fingerprint = excluded.fingerprint, fingerprint_length = excluded.fingerprint_length,
                    shared = excluded.shared, committed_at = excluded.committed_at, closed = excluded.closed
                WHERE excluded.committed_at >= \(unescaped: table).committed_at
                """, logger: database.logger)
        }
    }
}
