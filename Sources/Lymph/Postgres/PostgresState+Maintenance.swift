import PostgresNIO

/// Tickets and sensors in PostgreSQL, shared by every instance: the same rules as the embedded
/// store's, written so that two instances' commits merge whichever lands first (an earlier due
/// date and a higher priority win, a source event counts once, one open ticket per job).
extension PostgresState {
    static let ticketColumns = "t.ticket_id, t.equipment_id, t.action, t.priority, t.due_by, t.status, t.created_at, t.updated_at, t.note"
    typealias TicketRow = (String, String, String, String, Double, String, Double, Double, String?, [String])

    static func ticket(_ r: TicketRow) -> Ticket {
        Ticket(
            ticketID: r.0, equipmentID: r.1, action: r.2, priority: Ticket.Priority(name: r.3) ?? .medium, dueBy: r.4,
            status: Ticket.Status(rawValue: r.5) ?? .open, sourceEventIDs: r.9, createdAt: r.6, updatedAt: r.7, note: r.8)
    }

    /// The sources column: a ticket's events in the order they were committed.
    func sourcesColumn() -> String {
        "ARRAY(SELECT s.event_id FROM \(database.table("lymph_ticket_sources")) s WHERE s.ticket_id = t.ticket_id ORDER BY s.n)"
    }

    /// What applying requests for `jobs` (equipment, action) reads: which of `events` are
    /// applied already, and the open tickets of those jobs with their latest `listing` events
    /// and how many they have.
    func ticketSnapshot(jobs: [(String, String)], events: [String], listing: Int) async throws(StoreError) -> TicketSnapshot {
        let (tickets, sources, logger) = (database.table("lymph_tickets"), database.table("lymph_ticket_sources"), database.logger)
        let (equipment, actions) = (jobs.map(\.0), jobs.map(\.1))
        // From the end of the ticket's index entries, newest first, then put back in order.
        let column = """
            ARRAY(SELECT l.event_id FROM (SELECT s.event_id, s.n FROM \(sources) s WHERE s.ticket_id = t.ticket_id
                                            ORDER BY s.n DESC LIMIT \(listing)) l ORDER BY l.n)
            """
        return try await database.perform("cannot read tickets") { client in
            var snapshot = TicketSnapshot()
            for try await id in try await client.query(
                "SELECT event_id FROM \(unescaped: sources) WHERE event_id = ANY(\(events)::text[])", logger: logger
            ).decode(String.self) {
                snapshot.applied.insert(KeyBytes(Array(id.utf8)))
            }
            let rows = try await client.query(
                """
                SELECT \(unescaped: Self.ticketColumns), \(unescaped: column), t.source_count
                FROM \(unescaped: tickets) t JOIN (SELECT DISTINCT e, a FROM unnest(\(equipment)::text[], \(actions)::text[]) AS j(e, a)) j
                  ON t.equipment_id = j.e AND t.action = j.a
                WHERE t.status = 'open'
                """, logger: logger)
            for try await (r0, r1, r2, r3, r4, r5, r6, r7, r8, latest, count) in rows.decode(
                (String, String, String, String, Double, String, Double, Double, String?, [String], Int64).self)
            {
                var ticket = Self.ticket((r0, r1, r2, r3, r4, r5, r6, r7, r8, []))
                snapshot.sources[ticket.ticketID] = StoredSources(latest: latest, count: Int(count))
                ticket.sourceEventIDs = []
                snapshot.open[TicketBook.pairKey(ticket.equipmentID, ticket.action)] = ticket
            }
            return snapshot
        }
    }

    /// Writes tickets and their new source events in the caller's transaction. A ticket merges
    /// into the job's open ticket when there is one (another instance may have opened it since
    /// this one read): the earlier due date and the higher priority win. Else it is inserted;
    /// the unique index on open jobs makes a concurrent insert of the same job wait, and then
    /// this one merges instead. Source events go to the ticket they ended up in.
    func writeTickets(_ written: [Ticket], sources: [(String, String)], on conn: PostgresConnection) async throws {
        let (tickets, sourceTable, logger) = (database.table("lymph_tickets"), database.table("lymph_ticket_sources"), database.logger)
        var stored: [String: String] = [:]
        // In job order: two instances' commits touching the same jobs wait for each other
        // instead of deadlocking.
        for t in written.sorted(by: { ($0.equipmentID, $0.action) < ($1.equipmentID, $1.action) }) {
            let (priority, rank) = (t.priority.description, t.priority.rawValue)
            for _ in 0..<3 {
                var id: String?
                for try await found in try await conn.query(
                    """
                    UPDATE \(unescaped: tickets) SET due_by = LEAST(due_by, \(t.dueBy)),
                        priority = CASE WHEN \(rank) > priority_rank THEN \(priority) ELSE priority END,
                        priority_rank = GREATEST(priority_rank, \(rank)), updated_at = GREATEST(updated_at, \(t.updatedAt))
                    WHERE equipment_id = \(t.equipmentID) AND action = \(t.action) AND status = 'open' RETURNING ticket_id
                    """, logger: logger
                ).decode(String.self) {
                    id = found
                }
                if id == nil {
                    for try await found in try await conn.query(
                        """
                        INSERT INTO \(unescaped: tickets) (ticket_id, equipment_id, action, priority, priority_rank, due_by, status, created_at, updated_at, note)
                        VALUES (\(t.ticketID), \(t.equipmentID), \(t.action), \(priority), \(rank), \(t.dueBy), 'open', \(t.createdAt), \(t.updatedAt), \(t.note))
                        ON CONFLICT DO NOTHING RETURNING ticket_id
                        """, logger: logger
                    ).decode(String.self) {
                        id = found
                    }
                }
                if let id {
                    stored[t.ticketID] = id
                    break
                }
            }
        }
        if sources.isEmpty { return }
        let events = sources.map(\.0)
        let ids = sources.map { stored[$0.1] ?? $0.1 }
        // Each ticket counts the events that went in (another instance may have applied one
        // already): the table's trigger adds them to `source_count`.
        try await conn.command(
            """
            INSERT INTO \(unescaped: sourceTable) (event_id, ticket_id)
            SELECT e, t FROM unnest(\(events)::text[], \(ids)::text[]) WITH ORDINALITY AS u(e, t, o) ORDER BY o
            ON CONFLICT (event_id) DO NOTHING
            """, logger: logger)
    }

    /// Tickets by due date, then creation; `status` nil means all.
    func tickets(status: Ticket.Status?, equipment: String?, id: String? = nil) async throws(StoreError) -> [Ticket] {
        let (tickets, logger, column) = (database.table("lymph_tickets"), database.logger, sourcesColumn())
        let statusText = status?.rawValue
        return try await database.perform("cannot read tickets") { client in
            var out: [Ticket] = []
            for try await row in try await client.query(
                """
                SELECT \(unescaped: Self.ticketColumns), \(unescaped: column) FROM \(unescaped: tickets) t
                WHERE (\(statusText)::text IS NULL OR t.status = \(statusText)) AND (\(equipment)::text IS NULL OR t.equipment_id = \(equipment))
                  AND (\(id)::text IS NULL OR t.ticket_id = \(id))
                ORDER BY t.due_by, t.created_at, t.ticket_id
                """, logger: logger
            ).decode(TicketRow.self) {
                out.append(Self.ticket(row))
            }
            return out
        }
    }

    /// Marks an open ticket done (or cancelled); returns it, or nil when there is no such ticket.
    func closeTicket(id: String, cancel: Bool, note: String?, at time: Double) async throws(StoreError) -> Ticket? {
        let (tickets, logger) = (database.table("lymph_tickets"), database.logger)
        let status = cancel ? "cancelled" : "done"
        try await database.perform("cannot close the ticket") { client in
            try await client.command(
                "UPDATE \(unescaped: tickets) SET status = \(status), note = COALESCE(\(note), note), updated_at = \(time) WHERE ticket_id = \(id) AND status = 'open'",
                logger: logger)
        }
        return try await self.tickets(status: nil, equipment: nil, id: id).first
    }

    // MARK: Sensors

    typealias SensorRow = (String, String?, String, Double, String, Double)
    static let sensorColumns = "sensor_id, equipment_id, status, since, last_event_id, last_event_at"

    static func sensor(_ r: SensorRow) -> Sensor {
        Sensor(sensorID: r.0, equipmentID: r.1, status: r.2, since: r.3, lastEventID: r.4, lastEventAt: r.5)
    }

    /// The stored state of each of `ids` that has one.
    func sensors(ids: [String]) async throws(StoreError) -> [KeyBytes: Sensor] {
        if ids.isEmpty { return [:] }
        let (table, logger) = (database.table("lymph_sensors"), database.logger)
        return try await database.perform("cannot read sensors") { client in
            var out: [KeyBytes: Sensor] = [:]
            for try await row in try await client.query(
                "SELECT \(unescaped: Self.sensorColumns) FROM \(unescaped: table) WHERE sensor_id = ANY(\(ids)::text[])", logger: logger
            ).decode(SensorRow.self) {
                out[TrackSensorsStage.key(row.0)] = Self.sensor(row)
            }
            return out
        }
    }

    /// Sensors offline or in error since `since` or earlier (with `status` nil), or every sensor
    /// in `status` (with `since` nil), by sensor id.
    func sensors(status: String?, downSince since: Double?) async throws(StoreError) -> [Sensor] {
        let (table, logger) = (database.table("lymph_sensors"), database.logger)
        return try await database.perform("cannot read sensors") { client in
            var out: [Sensor] = []
            for try await row in try await client.query(
                """
                SELECT \(unescaped: Self.sensorColumns) FROM \(unescaped: table)
                WHERE (\(status)::text IS NULL OR status = \(status))
                  AND (\(since)::double precision IS NULL OR (status IN ('offline', 'error') AND since <= \(since)))
                ORDER BY sensor_id
                """, logger: logger
            ).decode(SensorRow.self) {
                out.append(Self.sensor(row))
            }
            return out
        }
    }

    /// Writes sensor states in the caller's transaction; a state never replaces a newer one
    /// (another instance may have committed a later event of the sensor).
    func writeSensors(_ sensors: [Sensor], on conn: PostgresConnection) async throws {
        let table = database.table("lymph_sensors")
        for s in sensors.sorted(by: { $0.sensorID < $1.sensorID }) {
            try await conn.command(
                """
                INSERT INTO \(unescaped: table) AS c (sensor_id, equipment_id, status, since, last_event_id, last_event_at)
                VALUES (\(s.sensorID), \(s.equipmentID), \(s.status), \(s.since), \(s.lastEventID), \(s.lastEventAt))
                ON CONFLICT (sensor_id) DO UPDATE SET equipment_id = excluded.equipment_id, status = excluded.status,
                    since = excluded.since, last_event_id = excluded.last_event_id, last_event_at = excluded.last_event_at
                WHERE excluded.last_event_at >= c.last_event_at
                """, logger: database.logger)
        }
    }
}
