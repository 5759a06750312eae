import Foundation
import Logging
import PostgresNIO

/// `lymph serve`'s spool in PostgreSQL, shared by several instances.
///
/// Each instance appends to a lane of its own (its name). Entries are numbered within their
/// lane, in commit order: an append takes the lane row's lock to number its entries, so two
/// appends to one lane cannot commit out of order. A lane is worked by one process at a time,
/// the holder of its lease; so entries are processed in arrival order per accepting instance,
/// and no order holds between lanes.
///
/// - A process holds its own lane, and takes any lane whose holder's lease ran out (its process
///   died or lost the database; `PostgresHolder`) or that its instance left with entries in it.
///   It holds a taken lane only to drain the entries that were in it when it took it, then gives
///   it back, so the lane's own instance, once restarted, works it again.
/// - `markDone` runs in the state transaction and fails unless this process still holds the
///   lane: a process that lost its lease (paused past it, or cut off) cannot commit work that
///   another process is doing again.
public final class PostgresSpool: Sendable {
    public let database: PostgresDatabase
    /// This instance's lane.
    public let lane: String
    /// This process, whose lease keeps the lanes it works.
    public let holder: PostgresHolder
    /// The connection `appendBlocking` uses.
    let appender: PostgresDirectConnection

    /// A lane this process holds, as `claimLanes` returned it.
    public struct Claim: Sendable, Equatable {
        public let lane: String
        /// Entries through this one are done (their work committed).
        public let doneThrough: Int64
        /// For another instance's lane: the last entry to drain before giving it back.
        public let drainThrough: Int64?
    }

    /// One entry, with its lane.
    public struct Entry: Sendable, Equatable {
        public let lane: String
        public let seq: Int64
        public let receivedAt: Double
        public let item: [UInt8]
    }

    /// The spool in `holder`'s database, appending to `lane` (created if new); `appendTimeout`
    /// replaces the operation deadline for `appendBlocking`.
    public static func open(holder: PostgresHolder, lane: String, appendTimeout: Duration? = nil) async throws(StoreError) -> PostgresSpool {
        let database = holder.database
        guard !lane.isEmpty, lane.utf8.count <= 200 else {
            throw StoreError(location: database.location.description, message: "an instance name must be 1 to 200 bytes")
        }
        let spool = PostgresSpool(holder: holder, lane: lane, appendTimeout: appendTimeout)
        let (lanes, numbers) = (database.table("lymph_spool_lanes"), database.table("lymph_spool_numbers"))
        let logger = database.logger
        try await database.perform("cannot open the spool") { client in
            try await client.withTransaction(logger: logger) { conn in
                // A new lane is its instance's from the start: nobody else may take it before
                // this process first claims it. An existing one is marked used, under its row's
                // lock, so another instance's start cannot forget it now.
                try await conn.command(
                    """
                    INSERT INTO \(unescaped: lanes) (lane, owner) VALUES (\(lane), \(holder.name))
                    ON CONFLICT (lane) DO UPDATE SET used_at = now()
                    """, logger: logger)
                try await conn.command("INSERT INTO \(unescaped: numbers) (lane) VALUES (\(lane)) ON CONFLICT (lane) DO NOTHING", logger: logger)
            }
        }
        // Housekeeping: a failure here leaves the rows for the next start, and this one goes on.
        do {
            try await spool.forgetIdleLanes(unusedFor: idleLaneAge)
        } catch {
            logger.warning("\(error)")
        }
        return spool
    }

    /// How long a lane goes unopened and unclaimed, and empty, before a start forgets it. Each
    /// instance name ever used has a lane (the default name is host and port, new for each
    /// container), and every claim reads them all.
    public static let idleLaneAge: Duration = .seconds(7 * 86_400)

    /// Deletes the lanes of other instances that hold no entries, whose holder is gone, and
    /// that nobody opened or claimed for `age`. An instance that comes back under such a name
    /// starts its lane anew. Rows locked by a start or a claim in progress are left alone.
    func forgetIdleLanes(unusedFor age: Duration) async throws(StoreError) {
        let (lanes, numbers, spool, logger) = (
            database.table("lymph_spool_lanes"), database.table("lymph_spool_numbers"), database.table("lymph_spool"), database.logger
        )
        let (own, seconds, free) = (lane, "\(age.components.seconds) seconds", holder.lapsed("l.owner"))
        try await database.perform("cannot clean up spool lanes") { client in
            try await client.command(
                """
                WITH idle AS (
                    SELECT l.lane FROM \(unescaped: lanes) l
                    WHERE l.lane <> \(own) AND l.used_at < now() - \(seconds)::interval AND \(unescaped: free)
                      AND NOT EXISTS (SELECT 1 FROM \(unescaped: spool) s WHERE s.lane = l.lane)
                    FOR UPDATE SKIP LOCKED),
                numbered AS (DELETE FROM \(unescaped: numbers) n USING idle WHERE n.lane = idle.lane RETURNING n.lane)
                DELETE FROM \(unescaped: lanes) l USING numbered WHERE l.lane = numbered.lane
                """, logger: logger)
        }
    }

    private init(holder: PostgresHolder, lane: String, appendTimeout: Duration?) {
        self.database = holder.database
        self.appender = holder.database.directConnection(timeout: appendTimeout)
        self.holder = holder
        self.lane = lane
    }

    /// Appends `items` to this instance's lane in one statement (one transaction, durable on
    /// return: `synchronous_commit` is on) and returns their numbers, in order.
    public func append(_ items: [[UInt8]], receivedAt: Double) async throws(StoreError) -> [Int64] {
        if items.isEmpty { return [] }
        let (query, logger) = (appendQuery(items, receivedAt: receivedAt), database.logger)
        let seqs = try await database.perform("cannot append to the spool") { client in
            var seqs: [Int64] = []
            for try await seq in try await client.query(query, logger: logger).decode(Int64.self) { seqs.append(seq) }
            return seqs
        }
        return try appended(seqs, count: items.count)
    }

    /// `append`, for the spool writer's thread, which waits for it: on a connection of its own
    /// (`PostgresDirectConnection`), within the operation deadline.
    public func appendBlocking(_ items: [[UInt8]], receivedAt: Double) throws(StoreError) -> [Int64] {
        if items.isEmpty { return [] }
        let seqs: [Int64]
        do {
            seqs = try appender.run(appendQuery(items, receivedAt: receivedAt)) { rows in try rows.map { try $0.decode(Int64.self) } }
        } catch {
            throw database.storeError("cannot append to the spool", error)
        }
        return try appended(seqs, count: items.count)
    }

    /// One statement that numbers `items` after the lane's last entry (under the lane row's
    /// lock) and inserts them, returning their numbers.
    private func appendQuery(_ items: [[UInt8]], receivedAt: Double) -> PostgresQuery {
        let buffers = items.map { ByteBuffer(bytes: $0) }
        let (numbers, spool) = (database.table("lymph_spool_numbers"), database.table("lymph_spool"))
        return """
            WITH l AS (UPDATE \(unescaped: numbers) SET next_seq = next_seq + \(items.count) WHERE lane = \(lane) RETURNING next_seq - \(items.count) AS base)
            INSERT INTO \(unescaped: spool) (lane, seq, received_at, item)
            SELECT \(lane), l.base + i.n, \(receivedAt), i.item FROM l, unnest(\(buffers)::bytea[]) WITH ORDINALITY AS i(item, n)
            RETURNING seq
            """
    }

    /// The appended numbers in order; none when the lane's row is gone.
    private func appended(_ seqs: [Int64], count: Int) throws(StoreError) -> [Int64] {
        guard seqs.count == count else {
            throw StoreError(location: database.location.description, message: "the spool's lane '\(lane.cutForMessage(60))' is missing")
        }
        return seqs.sorted()
    }

    /// Renews this process's lease and takes the lanes it may: its own when free, and others'
    /// whose holder's lease ran out or that were left with entries. Returns every lane it holds
    /// now, its own first.
    public func claimLanes() async throws(StoreError) -> [Claim] {
        try await holder.renew()
        let (lanes, numbers, lane, holder, logger) = (
            database.table("lymph_spool_lanes"), database.table("lymph_spool_numbers"), lane, holder.name, database.logger
        )
        let free = self.holder.lapsed("l.owner")
        let claims = try await database.perform("cannot claim spool lanes") { client in
            let rows = try await client.query(
                """
                UPDATE \(unescaped: lanes) AS l SET
                    owner = \(holder), used_at = now(),
                    drain_through = CASE WHEN l.owner = \(holder) THEN l.drain_through WHEN l.lane = \(lane) THEN NULL ELSE n.next_seq END
                FROM \(unescaped: numbers) AS n
                WHERE n.lane = l.lane AND (
                       l.owner = \(holder)
                    OR (l.lane = \(lane) AND \(unescaped: free))
                    OR (l.lane <> \(lane) AND n.next_seq > l.done_through AND \(unescaped: free)))
                RETURNING l.lane, l.done_through, l.drain_through
                """, logger: logger)
            var claims: [Claim] = []
            for try await (l, done, drain) in rows.decode((String, Int64, Int64?).self) {
                claims.append(Claim(lane: l, doneThrough: done, drainThrough: drain))
            }
            return claims
        }
        return claims.sorted { ($0.lane != lane ? 1 : 0, $0.lane) < ($1.lane != lane ? 1 : 0, $1.lane) }
    }

    /// Gives up `lane` (a drained lane of another instance, or this instance's own on shutdown):
    /// whoever may take it next does so at once, without waiting for the lease.
    public func release(lane: String) async throws(StoreError) {
        let (lanes, holder, logger) = (database.table("lymph_spool_lanes"), holder.name, database.logger)
        try await database.perform("cannot release spool lane '\(lane.cutForMessage(60))'") { client in
            try await client.command(
                "UPDATE \(unescaped: lanes) SET owner = NULL, drain_through = NULL WHERE lane = \(lane) AND owner = \(holder)",
                logger: logger)
        }
    }

    /// Up to `limit` entries of `lane` after `seq`, through `last` when given (and about
    /// `maxBytes`: the first entry always comes), oldest first.
    public func fetch(lane: String, after seq: Int64, through last: Int64? = nil, limit: Int, maxBytes: Int) async throws(StoreError) -> [Entry] {
        let (spool, logger) = (database.table("lymph_spool"), database.logger)
        let bound = last ?? Int64.max
        return try await database.perform("cannot read the spool") { client in
            let rows = try await client.query(
                "SELECT seq, received_at, item FROM \(unescaped: spool) WHERE lane = \(lane) AND seq > \(seq) AND seq <= \(bound) ORDER BY seq LIMIT \(limit)",
                logger: logger)
            var out: [Entry] = []
            var bytes = 0
            for try await (s, at, item) in rows.decode((Int64, Double, ByteBuffer).self) {
                // Read to the end even past the byte limit: the statement then finishes and
                // the connection goes back to the pool clean.
                if !out.isEmpty && bytes >= maxBytes { continue }
                out.append(Entry(lane: lane, seq: s, receivedAt: at, item: Array(buffer: item)))
                bytes += item.readableBytes
            }
            return out
        }
    }

    /// In the caller's transaction on `connection`: entries of `lane` through `seq` are done;
    /// they are deleted. Throws `PostgresSpool.LaneLost` when this process no longer holds
    /// the lane (the transaction must roll back: another process does that work).
    public func markDone(lane: String, through seq: Int64, on connection: PostgresConnection) async throws {
        let rows = try await connection.query(
            """
            UPDATE \(unescaped: database.table("lymph_spool_lanes")) SET done_through = GREATEST(done_through, \(seq))
            WHERE lane = \(lane) AND owner = \(holder.name) RETURNING 1
            """, logger: database.logger)
        var held = false
        for try await _ in rows { held = true }
        guard held else { throw LaneLost(lane: lane) }
        try await connection.command(
            "DELETE FROM \(unescaped: database.table("lymph_spool")) WHERE lane = \(lane) AND seq <= \(seq)", logger: database.logger)
    }

    /// `markDone` in a transaction of its own.
    public func markDone(lane: String, through seq: Int64) async throws(StoreError) {
        let logger = database.logger
        try await database.perform("cannot record spool progress") { client in
            try await client.withTransaction(logger: logger) { conn in
                try await self.markDone(lane: lane, through: seq, on: conn)
            }
        }
    }

    /// Entries waiting in `lane`, or in every lane, and when the oldest arrived.
    public func depth(lane: String? = nil) async throws(StoreError) -> SpoolDepth {
        let (spool, logger) = (database.table("lymph_spool"), database.logger)
        return try await database.perform("cannot count the spool") { client in
            let rows = try await client.query(
                "SELECT count(*), min(received_at) FROM \(unescaped: spool) WHERE \(lane)::text IS NULL OR lane = \(lane)", logger: logger)
            var depth = SpoolDepth(count: 0, oldestReceivedAt: nil)
            for try await (count, oldest) in rows.decode((Int64, Double?).self) { depth = SpoolDepth(count: Int(count), oldestReceivedAt: oldest) }
            return depth
        }
    }

    /// The newest number this instance's lane gave (0 for none).
    public func highestSeq() async throws(StoreError) -> Int64 {
        let (numbers, lane, logger) = (database.table("lymph_spool_numbers"), lane, database.logger)
        return try await database.perform("cannot read the spool") { client in
            var n: Int64 = 0
            for try await v in try await client.query("SELECT next_seq FROM \(unescaped: numbers) WHERE lane = \(lane)", logger: logger).decode(Int64.self) {
                n = v
            }
            return n
        }
    }

    /// Moves the entries of `claim`'s lane (another instance's, taken because it died or left)
    /// through its `drainThrough` to the end of this instance's lane, in their order, records
    /// that lane as done through there and gives it back, all in one transaction. This
    /// instance's worker then processes them after its own; the other lane's instance, once
    /// back, goes on from there. Returns how many entries moved.
    public func adopt(_ claim: Claim) async throws(StoreError) -> Int {
        guard claim.lane != lane, let drain = claim.drainThrough else { return 0 }
        let (lanes, numbers, spool, own, holder, logger) = (
            database.table("lymph_spool_lanes"), database.table("lymph_spool_numbers"), database.table("lymph_spool"), lane, holder.name,
            database.logger
        )
        let other = claim.lane
        return try await database.perform("cannot take over spool lane '\(other.cutForMessage(60))'") { client in
            try await client.withTransaction(logger: logger) { conn in
                // Still this process's, or another took it meanwhile: then leave it.
                var held = false
                for try await _ in try await conn.query(
                    "SELECT 1 FROM \(unescaped: lanes) WHERE lane = \(other) AND owner = \(holder) FOR UPDATE", logger: logger)
                {
                    held = true
                }
                guard held else { return 0 }
                var moved: Int64 = 0
                for try await n in try await conn.query(
                    """
                    WITH moved AS (DELETE FROM \(unescaped: spool) WHERE lane = \(other) AND seq <= \(drain) RETURNING seq, received_at, item),
                    counted AS (SELECT count(*) AS n FROM moved),
                    base AS (UPDATE \(unescaped: numbers) SET next_seq = next_seq + (SELECT n FROM counted) WHERE lane = \(own)
                             RETURNING next_seq - (SELECT n FROM counted) AS b),
                    inserted AS (INSERT INTO \(unescaped: spool) (lane, seq, received_at, item)
                                 SELECT \(own), base.b + row_number() OVER (ORDER BY moved.seq), moved.received_at, moved.item FROM moved, base
                                 RETURNING 1)
                    SELECT count(*) FROM inserted
                    """, logger: logger
                ).decode(Int64.self) {
                    moved = n
                }
                try await conn.command(
                    """
                    UPDATE \(unescaped: lanes) SET done_through = GREATEST(done_through, \(drain)), owner = NULL, drain_through = NULL
                    WHERE lane = \(other) AND owner = \(holder)
                    """, logger: logger)
                return Int(moved)
            }
        }
    }

    /// A real durable write that changes no entry, for `/healthz`.
    public func probeWritable() async throws(StoreError) {
        let (health, logger) = (database.table("lymph_health"), database.logger)
        try await database.perform("cannot write") { client in
            try await client.command("INSERT INTO \(unescaped: health) (id, at) VALUES (1, now()) ON CONFLICT (id) DO UPDATE SET at = now()", logger: logger)
        }
    }

    /// This process no longer holds a lane it was working: its lease ran out and another
    /// process took it.
    public struct LaneLost: Error, Sendable, CustomStringConvertible {
        public let lane: String
        public var description: String {
            "this process no longer holds spool lane '\(lane.cutForMessage(60))' (its lease ran out and another instance took it): its uncommitted work is left to that instance"
        }
    }
}

/// One lane of the shared spool as `lymph spool` shows it.
public struct PostgresSpoolLane: Sendable {
    /// The instance that accepted its entries.
    public let lane: String
    public let entries: Int
    public let bytes: Int
    /// Entries through this one are done (their work committed, and deleted).
    public let doneThrough: Int64
    /// The newest number the lane gave.
    public let highestSeq: Int64
    /// The holder working it (instance/token), if any, and whether its lease is running.
    public let owner: String?
    public let ownerAlive: Bool
    public let oldestReceivedAt: Double?

    /// Every lane of the spool in `database`, by name.
    public static func all(in database: PostgresDatabase) async throws(StoreError) -> [PostgresSpoolLane] {
        let (lanes, numbers, spool, holders, logger) = (
            database.table("lymph_spool_lanes"), database.table("lymph_spool_numbers"), database.table("lymph_spool"),
            database.table("lymph_holders"), database.logger
        )
        return try await database.perform("cannot read the spool") { client in
            var out: [PostgresSpoolLane] = []
            let rows = try await client.query(
                """
                SELECT l.lane, l.done_through, n.next_seq, l.owner,
                       EXISTS (SELECT 1 FROM \(unescaped: holders) h WHERE h.holder = l.owner AND h.lease_until > now()),
                       (SELECT count(*) FROM \(unescaped: spool) s WHERE s.lane = l.lane),
                       (SELECT coalesce(sum(octet_length(s.item)), 0)::bigint FROM \(unescaped: spool) s WHERE s.lane = l.lane),
                       (SELECT min(s.received_at) FROM \(unescaped: spool) s WHERE s.lane = l.lane)
                FROM \(unescaped: lanes) l JOIN \(unescaped: numbers) n ON n.lane = l.lane ORDER BY l.lane
                """, logger: logger)
            for try await r in rows.decode((String, Int64, Int64, String?, Bool, Int64, Int64, Double?).self) {
                out.append(
                    PostgresSpoolLane(
                        lane: r.0, entries: Int(r.5), bytes: Int(r.6), doneThrough: r.1, highestSeq: r.2, owner: r.3, ownerAlive: r.4,
                        oldestReceivedAt: r.7))
            }
            return out
        }
    }

    /// The lane as a JSON object.
    public func json() -> String {
        var out: [UInt8] = Array(#"{"lane":"#.utf8)
        JSONStringEncoder.append(lane, to: &out)
        out.append(contentsOf: #","entries":\#(entries),"bytes":\#(bytes),"done_through":\#(doneThrough),"highest_seq":\#(highestSeq),"owner":"#.utf8)
        if let owner { JSONStringEncoder.append(owner, to: &out) } else { out.append(contentsOf: "null".utf8) }
        out.append(contentsOf: #","owner_alive":\#(ownerAlive),"oldest_received_at":"#.utf8)
        if let oldestReceivedAt { JSONStringEncoder.append(Timestamp.format(oldestReceivedAt), to: &out) } else { out.append(contentsOf: "null".utf8) }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }
}
