import Foundation
import Logging
import PostgresNIO

/// A dedup scope's keys in PostgreSQL, one key space for every instance: two instances given
/// the same event id at the same moment process it once.
///
/// A key is claimed when its event is first seen (one statement for a batch's keys): the claim
/// is a row naming this process (`PostgresHolder`). Whoever inserts the row, or takes over a
/// claim whose holder's lease ran out, or a done key older than the window, processes the event;
/// everyone else drops it as a duplicate. The key is done only in the transaction that commits its
/// event's work (`complete`, with the spool's progress, tickets and sensors), so the rule of the
/// embedded store holds: a key is remembered only after its event finished. A dead-lettered
/// event's claim is released (`release`), so a retry or a replay processes it again; a process
/// that dies leaves claims that lapse with its lease, and whoever takes its spool lane over
/// claims them again.
public final class PostgresDedup: Sendable {
    public let holder: PostgresHolder
    /// The dedup stage's scope (its name).
    public let scope: String
    var database: PostgresDatabase { holder.database }

    public init(holder: PostgresHolder, scope: String) {
        self.holder = holder
        self.scope = scope
    }

    /// For each of `keys`, whether this process now holds it (its event is new to it). False
    /// for a key done at or after `since`, claimed by another live process, or given earlier in
    /// the same list. A key this process holds already counts as held: the caller tells its own
    /// events in flight from a claim whose answer it never heard (the statement ran, the
    /// connection died before it answered), which it takes again.
    public func claim(_ keys: [[UInt8]], since: Double) async throws(StoreError) -> [Bool] {
        if keys.isEmpty { return [] }
        let buffers = keys.map { ByteBuffer(bytes: $0) }
        let (dedup, scope, name, logger) = (database.table("lymph_dedup"), scope, holder.name, database.logger)
        let lapsed = holder.lapsed("d.holder")
        // Inserted in key order, so two processes claiming overlapping batches lock rows in the
        // same order and cannot deadlock.
        let won = try await database.perform("cannot claim dedup keys") { client in
            let rows = try await client.query(
                """
                INSERT INTO \(unescaped: dedup) AS d (scope, key, holder)
                SELECT \(scope), k, \(name) FROM (SELECT DISTINCT k FROM unnest(\(buffers)::bytea[]) AS u(k)) AS input ORDER BY k
                ON CONFLICT (scope, key) DO UPDATE SET holder = excluded.holder, seen_at = NULL
                WHERE (d.holder IS NULL AND d.seen_at < \(since))
                   OR d.holder = excluded.holder
                   OR (d.holder IS NOT NULL AND \(unescaped: lapsed))
                RETURNING key
                """, logger: logger)
            var won: Set<[UInt8]> = []
            for try await key in rows.decode(ByteBuffer.self) { won.insert(Array(buffer: key)) }
            return won
        }
        var given: Set<[UInt8]> = []
        return keys.map { key in won.contains(key) && given.insert(key).inserted }
    }

    /// In the caller's transaction on `connection`: `keys` (claimed by this process) are done,
    /// seen at `time`, by this process. A key with no row (a replayed event's, resumed past this
    /// stage) or a lapsed holder's is recorded done too. One another process holds, or finished
    /// (this process's lease ran out, and that one took the key over and did the work), throws
    /// `ClaimLost`: the transaction must roll back. Written again after a commit whose answer
    /// was lost, it changes nothing more (the key is done by this process already).
    public func complete(_ keys: [[UInt8]], at time: Double, on connection: PostgresConnection) async throws {
        if keys.isEmpty { return }
        let buffers = Array(Set(keys)).map { ByteBuffer(bytes: $0) }
        let dedup = database.table("lymph_dedup")
        // In key order, as `claim` inserts, so two processes touching overlapping keys wait for
        // each other instead of deadlocking.
        let rows = try await connection.query(
            """
            INSERT INTO \(unescaped: dedup) AS d (scope, key, seen_at, holder, done_by)
            SELECT \(scope), k, \(time), NULL, \(holder.name) FROM unnest(\(buffers)::bytea[]) AS u(k) ORDER BY k
            ON CONFLICT (scope, key) DO UPDATE SET holder = NULL, seen_at = excluded.seen_at, done_by = excluded.done_by
            WHERE d.holder = \(holder.name) OR (d.holder IS NULL AND d.done_by = \(holder.name))
               OR (d.holder IS NOT NULL AND \(unescaped: holder.lapsed("d.holder")))
            RETURNING 1
            """, logger: database.logger)
        var updated = 0
        for try await _ in rows { updated += 1 }
        guard updated == buffers.count else { throw ClaimLost(scope: scope, lost: buffers.count - updated) }
    }

    /// `complete` in a transaction of its own.
    public func complete(_ keys: [[UInt8]], at time: Double) async throws(StoreError) {
        let logger = database.logger
        try await database.perform("cannot record dedup keys") { client in
            try await client.withTransaction(logger: logger) { conn in try await self.complete(keys, at: time, on: conn) }
        }
    }

    /// Gives up the claims on `keys` (their events went to the dead letters, to be processed
    /// again when retried or replayed).
    public func release(_ keys: [[UInt8]]) async throws(StoreError) {
        if keys.isEmpty { return }
        try await database.perform("cannot release dedup keys") { client in
            try await client.withConnection { conn in try await self.release(keys, on: conn) }
        }
    }

    /// `release`, in the caller's transaction on `connection`.
    public func release(_ keys: [[UInt8]], on connection: PostgresConnection) async throws {
        if keys.isEmpty { return }
        let buffers = keys.map { ByteBuffer(bytes: $0) }
        let (dedup, scope, name) = (database.table("lymph_dedup"), scope, holder.name)
        try await connection.command(
            """
            DELETE FROM \(unescaped: dedup) AS d
            USING (SELECT key FROM \(unescaped: dedup) WHERE scope = \(scope) AND key = ANY(\(buffers)::bytea[]) AND holder = \(name)
                   ORDER BY key FOR UPDATE) AS locked
            WHERE d.scope = \(scope) AND d.key = locked.key
            """, logger: database.logger)
    }

    /// Forgets done keys seen before `before`; returns how many.
    @discardableResult
    public func purge(before: Double) async throws(StoreError) -> Int {
        let (dedup, scope, logger) = (database.table("lymph_dedup"), scope, database.logger)
        return try await database.perform("cannot purge dedup keys") { client in
            let rows = try await client.query(
                "WITH gone AS (DELETE FROM \(unescaped: dedup) WHERE scope = \(scope) AND holder IS NULL AND seen_at < \(before) RETURNING 1) SELECT count(*) FROM gone",
                logger: logger)
            var n: Int64 = 0
            for try await c in rows.decode(Int64.self) { n = c }
            return Int(n)
        }
    }

    /// Some of the keys a commit was to mark done are no longer this process's claims.
    public struct ClaimLost: Error, Sendable, CustomStringConvertible {
        public let scope: String
        public let lost: Int
        public var description: String {
            "\(lost) dedup key(s) of scope '\(scope.cutForMessage(60))' are no longer this process's (its lease ran out and another instance took them): its uncommitted work is left to that instance"
        }
    }
}
