import Dispatch
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// A pipeline's state in PostgreSQL (`state: {postgres: ...}`): the database, this process's
/// lease, and the instance name its per-instance rows (spool lane, output files) are kept under.
///
/// While it is open a task renews the lease every quarter of its length. A lease that could not
/// be renewed in time is lost for good (`PostgresHolder`): others may have taken this process's
/// work, and every later commit of it is refused, so the process must stop and start again.
public final class PostgresState: Sendable {
    public let database: PostgresDatabase
    public let holder: PostgresHolder
    /// This process's instance: `lymph serve`'s lane and output files are kept under it.
    public let instance: String
    private let keeper = Mutex<Task<Void, Never>?>(nil)
    private let leaseProblem = Mutex<String?>(nil)

    private init(database: PostgresDatabase, holder: PostgresHolder, instance: String) {
        self.database = database
        self.holder = holder
        self.instance = instance
    }

    /// Reads the URL `spec` refers to, connects, migrates, takes a lease for `instance`, and
    /// starts renewing it.
    public static func open(
        _ spec: PostgresStateSpec, instance: String, environment: [String: String] = ProcessInfo.processInfo.environment,
        maxConnections: Int = 8, operationTimeout: Duration = .seconds(10)
    ) async throws -> PostgresState {
        let text = try spec.url.resolve(environment: environment)
        let location: PostgresLocation
        do {
            location = try PostgresLocation(url: String(decoding: text, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        } catch {
            throw StoreError(location: spec.url.description, message: "\(error)")
        }
        let database = try await PostgresDatabase.open(
            location: location, schema: spec.schema, maxConnections: maxConnections, operationTimeout: operationTimeout)
        do {
            try await database.migrate(stateMigrations)
            let holder = PostgresHolder(database: database, instance: instance, lease: .milliseconds(Int64(spec.lease * 1000)))
            try await holder.renew()
            let state = PostgresState(database: database, holder: holder, instance: instance)
            try await state.replayedPurge(before: Timestamp.now() - ReplayLedger.memory)
            try await holder.forgetLapsed(olderThan: .seconds(86_400))
            state.startRenewing()
            return state
        } catch {
            database.close()
            throw error
        }
    }

    /// `host/schema`, for messages (never the password).
    public var location: String { "\(database.location.description) schema \(database.schema)" }

    /// Why this process's lease is in danger or lost, or nil (for `/healthz`).
    public var problem: String? { leaseProblem.withLock { $0 } }

    private func startRenewing() {
        let holder = holder
        let every = holder.lease / 4
        let task = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: every)
                if Task.isCancelled { return }
                do {
                    try await holder.renew()
                    self?.leaseProblem.withLock { $0 = nil }
                } catch {
                    self?.leaseProblem.withLock { $0 = "cannot renew this process's lease: \(error)" }
                }
            }
        }
        keeper.withLock { $0 = task }
    }

    /// Stops renewing, gives the lease up (what it held is free for the others at once) and
    /// closes the connections.
    public func close() async {
        keeper.withLock { $0?.cancel() }
        try? await holder.resign()
        database.close()
    }

    /// Runs `body`, one database operation, from synchronous code on a thread that may block
    /// (never one of Swift's cooperative threads), waiting for it within the database's
    /// operation deadline; past it, the task is cancelled and the wait fails as unavailable.
    /// Cheaper than `blocking` for the spool's appends and fetches: the wait here is the
    /// deadline, so `perform` sets no timer of its own. `limit` replaces that deadline.
    public func blockingOperation<T: Sendable>(within limit: Duration? = nil, _ body: @escaping @Sendable () async throws -> T) throws -> T {
        try wait(within: limit ?? database.operationTimeout) {
            try await PostgresDatabase.$callerKeepsDeadline.withValue(true) { try await body() }
        }
    }

    /// Runs `body` from synchronous code on a thread that may block (never one of Swift's
    /// cooperative threads), waiting for it within the database's operation deadline and a
    /// margin.
    public func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        try wait(within: database.operationTimeout + .seconds(5), body)
    }

    /// `body`'s result, run in a task of its own, or an unavailable `StoreError` once `limit`
    /// has passed (the task is then cancelled and not waited for: postgres-nio does not give up
    /// a statement it sent, the server's statement_timeout ends it, but a wait for a pool
    /// connection ends now).
    private func wait<T: Sendable>(within limit: Duration, _ body: @escaping @Sendable () async throws -> T) throws -> T {
        let result = Mutex<Result<T, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let task = Task.detached {
            let r: Result<T, any Error>
            do { r = .success(try await body()) } catch { r = .failure(error) }
            result.withLock { $0 = r }
            done.signal()
        }
        guard done.wait(within: limit), let r = result.withLock({ $0 }) else {
            task.cancel()
            throw StoreError(location: location, message: "no answer from the database in \(limit.components.seconds) s", isUnavailable: true)
        }
        return try r.get()
    }

    /// The tables of a pipeline's state besides the spool and the dedup keys.
    static let stateMigrations: [(id: String, statements: [String])] = [
        (
            "state-v1",
            [
                // One open ticket per job: the partial unique index is the arbiter when two
                // instances open the same ticket at once. priority_rank orders priorities.
                """
                CREATE TABLE {schema}.lymph_tickets (
                    ticket_id text PRIMARY KEY,
                    equipment_id text NOT NULL,
                    action text NOT NULL,
                    priority text NOT NULL,
                    priority_rank int NOT NULL,
                    due_by double precision NOT NULL,
                    status text NOT NULL,
                    created_at double precision NOT NULL,
                    updated_at double precision NOT NULL,
                    note text
                )
                """,
                "CREATE UNIQUE INDEX lymph_tickets_open ON {schema}.lymph_tickets (equipment_id, action) WHERE status = 'open'",
                "CREATE INDEX lymph_tickets_due ON {schema}.lymph_tickets (status, due_by)",
                // Every event that contributed to a ticket, in the order they were committed (n).
                """
                CREATE TABLE {schema}.lymph_ticket_sources (
                    event_id text PRIMARY KEY,
                    ticket_id text NOT NULL,
                    n bigserial NOT NULL
                )
                """,
                "CREATE INDEX lymph_ticket_sources_ticket ON {schema}.lymph_ticket_sources (ticket_id, n)",
                """
                CREATE TABLE {schema}.lymph_sensors (
                    sensor_id text PRIMARY KEY,
                    equipment_id text,
                    status text NOT NULL,
                    since double precision NOT NULL,
                    last_event_id text NOT NULL,
                    last_event_at double precision NOT NULL
                )
                """,
                "CREATE TABLE {schema}.lymph_replayed (key bytea PRIMARY KEY, replayed_at double precision NOT NULL)",
                // Output files are each instance's own (each writes files on its own machine).
                """
                CREATE TABLE {schema}.lymph_output_files (
                    instance text NOT NULL,
                    real_path text NOT NULL,
                    path text NOT NULL,
                    device bigint NOT NULL,
                    inode bigint NOT NULL,
                    length bigint NOT NULL,
                    fingerprint bigint NOT NULL,
                    fingerprint_length int NOT NULL,
                    shared boolean NOT NULL,
                    committed_at double precision NOT NULL,
                    PRIMARY KEY (instance, real_path)
                )
                """,
            ]
        ),
        (
            "state-v2",
            [
                // How many source events each ticket has: a batch reads the count with the latest
                // events (`TicketBook`), not every event of the ticket. Kept by a trigger on the
                // events' table, once a statement, so an instance of an older version still
                // running against this schema (a rolling upgrade) keeps it right too; the ticket
                // rows it updates are the inserting transaction's already (its writes lock them
                // first, in job order).
                "ALTER TABLE {schema}.lymph_tickets ADD COLUMN source_count bigint NOT NULL DEFAULT 0",
                """
                UPDATE {schema}.lymph_tickets t SET source_count = (SELECT count(*) FROM {schema}.lymph_ticket_sources s WHERE s.ticket_id = t.ticket_id)
                """,
                """
                CREATE FUNCTION {schema}.lymph_count_ticket_sources() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    UPDATE {schema}.lymph_tickets t SET source_count = t.source_count + a.n
                    FROM (SELECT ticket_id, count(*) AS n FROM added GROUP BY ticket_id) a WHERE t.ticket_id = a.ticket_id;
                    RETURN NULL;
                END $$
                """,
                """
                CREATE TRIGGER lymph_count_ticket_sources AFTER INSERT ON {schema}.lymph_ticket_sources
                REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION {schema}.lymph_count_ticket_sources()
                """,
            ]
        ),
        (
            "outputs-v2",
            [
                // The process that wrote the row ended cleanly after committing everything it wrote
                // (`OutputLedger.closing`): bytes past the length at the next start are another
                // program's, not this one's uncommitted work.
                "ALTER TABLE {schema}.lymph_output_files ADD COLUMN closed boolean NOT NULL DEFAULT false"
            ]
        ),
    ]
}
