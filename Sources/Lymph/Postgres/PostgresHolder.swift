import Foundation
import Logging
import PostgresNIO

/// This process, as the holder of shared work in PostgreSQL: spool lanes it works and dedup
/// keys of events it is processing. It is alive while its lease (one row) is renewed; once the
/// lease has run out, other processes take its lanes and its claimed keys, and its own later
/// commits are refused (each checks that it still holds what it commits).
///
/// Leases are judged by the database's clock (`now()`), so the instances' clocks do not matter.
/// A restarted instance is a new holder: it takes its lane back once the old process's lease has
/// run out, by which time that process's claims have lapsed too.
public final class PostgresHolder: Sendable {
    public let database: PostgresDatabase
    /// The instance's name and a random token.
    public let name: String
    /// How long the lease lasts without renewal: the longest a dead process's work waits.
    public let lease: Duration

    /// A new holder for an instance called `instance`; it holds nothing until `renew`.
    public init(database: PostgresDatabase, instance: String, lease: Duration = .seconds(30)) {
        self.database = database
        self.lease = lease
        self.name = instance + "/" + UUID().uuidString.lowercased()
    }

    var leaseInterval: String { "\(Double(lease.components.seconds) + Double(lease.components.attoseconds) / 1e18) seconds" }

    /// Starts the lease, or renews it while it is still running: call well within `lease` (a
    /// third of it, say). A lease that ran out is not renewed (others may have taken what it
    /// held, trusting it was over): that throws, and the process must drop its work and start
    /// again as a new holder.
    public func renew() async throws(StoreError) {
        let (holders, name, interval, logger) = (database.table("lymph_holders"), name, leaseInterval, database.logger)
        let held = try await database.perform("cannot renew this process's lease") { client in
            let rows = try await client.query(
                """
                WITH renewed AS (
                    UPDATE \(unescaped: holders) SET lease_until = now() + \(interval)::interval
                    WHERE holder = \(name) AND lease_until > now() RETURNING 1),
                started AS (
                    INSERT INTO \(unescaped: holders) (holder, lease_until)
                    SELECT \(name), now() + \(interval)::interval
                    WHERE NOT EXISTS (SELECT 1 FROM \(unescaped: holders) WHERE holder = \(name))
                    ON CONFLICT (holder) DO NOTHING RETURNING 1)
                SELECT (SELECT count(*) FROM renewed) + (SELECT count(*) FROM started)
                """, logger: logger)
            var n: Int64 = 0
            for try await c in rows.decode(Int64.self) { n = c }
            return n > 0
        }
        guard held else { throw leaseLost("ran out before it was renewed: other instances may have taken its work, so it must start again") }
    }

    /// Gives the lease up at once (a clean shutdown): what it held is free for the others now.
    public func resign() async throws(StoreError) {
        let (holders, name, logger) = (database.table("lymph_holders"), name, database.logger)
        try await database.perform("cannot give up this process's lease") { client in
            try await client.command("DELETE FROM \(unescaped: holders) WHERE holder = \(name)", logger: logger)
        }
    }

    /// In the caller's transaction: fails unless this process's lease is still running, and
    /// holds its row (`FOR SHARE`) until the transaction ends. A commit starts with this: work
    /// of a process whose lease ran out may be in other hands by now, and is never committed.
    public func checkLease(on connection: PostgresConnection) async throws {
        var held = false
        for try await _ in try await connection.query(
            "SELECT 1 FROM \(unescaped: database.table("lymph_holders")) WHERE holder = \(name) AND lease_until > clock_timestamp() FOR SHARE",
            logger: database.logger)
        {
            held = true
        }
        guard held else { throw leaseLost("ran out: other instances may have taken its work, so it commits nothing more and must start again") }
    }

    /// "this process's lease " + `what`, marked `isLeaseLost`.
    private func leaseLost(_ what: String) -> StoreError {
        var error = StoreError(location: database.location.description, message: "this process's lease " + what)
        error.isLeaseLost = true
        return error
    }

    /// Deletes the rows of leases that ran out more than `age` ago: processes that ended
    /// without giving theirs up (killed, or a command's short visit) leave them behind.
    func forgetLapsed(olderThan age: Duration) async throws(StoreError) {
        let (holders, logger, seconds) = (database.table("lymph_holders"), database.logger, "\(age.components.seconds) seconds")
        try await database.perform("cannot clean up leases") { client in
            try await client.command("DELETE FROM \(unescaped: holders) WHERE lease_until < now() - \(seconds)::interval", logger: logger)
        }
    }

    /// SQL true when the holder named by `column` is not alive (no lease, or a lapsed one).
    func lapsed(_ column: String) -> String {
        "(\(column) IS NULL OR NOT EXISTS (SELECT 1 FROM \(database.table("lymph_holders")) h WHERE h.holder = \(column) AND h.lease_until > now()))"
    }
}
