import PostgresNIO

/// The replay ledger's table in PostgreSQL (see `ReplayLedger`): shared, so a record replayed
/// on two instances does its work once.
extension PostgresState {
    /// Which of `keys` are recorded as replayed.
    func replayed(_ keys: [[UInt8]]) async throws(StoreError) -> Set<[UInt8]> {
        if keys.isEmpty { return [] }
        let (table, logger, buffers) = (database.table("lymph_replayed"), database.logger, keys.map { ByteBuffer(bytes: $0) })
        return try await database.perform("cannot read replays") { client in
            var found: Set<[UInt8]> = []
            let rows = try await client.query("SELECT key FROM \(unescaped: table) WHERE key = ANY(\(buffers)::bytea[])", logger: logger)
            for try await key in rows.decode(ByteBuffer.self) { found.insert(Array(buffer: key)) }
            return found
        }
    }

    /// Records `keys` as replayed, in the caller's transaction.
    func replayedInsert(_ conn: PostgresConnection, keys: [[UInt8]], at time: Double) async throws {
        let buffers = keys.map { ByteBuffer(bytes: $0) }
        try await conn.command(
            """
            INSERT INTO \(unescaped: database.table("lymph_replayed")) (key, replayed_at)
            SELECT k, \(time) FROM unnest(\(buffers)::bytea[]) AS u(k) ON CONFLICT (key) DO NOTHING
            """, logger: database.logger)
    }

    /// Forgets replays recorded before `time`.
    func replayedPurge(before time: Double) async throws(StoreError) {
        let (table, logger) = (database.table("lymph_replayed"), database.logger)
        try await database.perform("cannot purge replays") { client in
            try await client.command("DELETE FROM \(unescaped: table) WHERE replayed_at < \(time)", logger: logger)
        }
    }
}
