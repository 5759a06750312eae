import GRDB

/// Tickets and sensors, for the maintenance stages and the `tickets` / `sensors` commands.
extension StateStore {
    /// A ticket's source events as a JSON array, in the order they came: its lists from its
    /// latest back along `prev`, put in commit order, each in its own order. A row links only to
    /// an older one (a store changed by hand could say otherwise): the walk ends, whatever the
    /// links say.
    static let sourcesColumn = """
        (WITH RECURSIVE chain(list, n) AS (
            SELECT t.last_list, 0 WHERE t.last_list IS NOT NULL
            UNION ALL SELECT l.prev, chain.n + 1 FROM chain JOIN lymph_ticket_source_lists l ON l.id = chain.list WHERE l.prev < l.id)
         SELECT json_group_array(value) FROM (SELECT j.value AS value FROM chain JOIN lymph_ticket_source_lists l ON l.id = chain.list,
            json_each(l.event_ids) j ORDER BY chain.n DESC, j.key)) AS source_event_ids
        """

    /// Tickets by due date, then creation; `status` nil means all.
    public func tickets(status: Ticket.Status?, equipment: String?) throws(StoreError) -> [Ticket] {
        if let postgres { return try Self.storeErrors(location) { try postgres.blocking { try await postgres.tickets(status: status, equipment: equipment) } } }
        return try read { db in
            var sql = "SELECT *, \(Self.sourcesColumn) FROM lymph_tickets t WHERE 1 = 1"
            var args: [any DatabaseValueConvertible] = []
            if let status { sql += " AND status = ?"; args.append(status.rawValue) }
            if let equipment { sql += " AND equipment_id = ?"; args.append(equipment) }
            sql += " ORDER BY due_by, created_at, ticket_id"
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args)).map(TicketBook.ticket(from:))
        }
    }

    /// The ticket `id` (`mt_...`), open or closed, or nil when there is none.
    public func ticket(id: String) throws(StoreError) -> Ticket? {
        if let postgres {
            return try Self.storeErrors(location) { try postgres.blocking { try await postgres.tickets(status: nil, equipment: nil, id: id).first } }
        }
        return try read { db in
            try Row.fetchOne(db, sql: "SELECT *, \(Self.sourcesColumn) FROM lymph_tickets t WHERE ticket_id = ?", arguments: [id]).map(TicketBook.ticket(from:))
        }
    }

    /// Marks a ticket done (or cancelled); returns it, or nil when there is no such ticket.
    /// A closed ticket frees its job: the next request for it opens a new ticket.
    public func closeTicket(id: String, cancel: Bool, note: String?, at time: Double) throws(StoreError) -> Ticket? {
        if let postgres {
            return try Self.storeErrors(location) { try postgres.blocking { try await postgres.closeTicket(id: id, cancel: cancel, note: note, at: time) } }
        }
        return try write { db in
            try db.execute(
                sql: "UPDATE lymph_tickets SET status = ?, note = COALESCE(?, note), updated_at = ? WHERE ticket_id = ? AND status = 'open'",
                arguments: [cancel ? "cancelled" : "done", note, time, id])
            if db.changesCount > 0 {
                // Counted, so a running pipeline that keeps the open tickets in memory
                // (`TicketBook`) sees that one closed.
                try db.execute(sql: "INSERT INTO lymph_ticket_closes (id, count) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET count = count + 1")
            }
            return try Row.fetchOne(db, sql: "SELECT *, \(Self.sourcesColumn) FROM lymph_tickets t WHERE ticket_id = ?", arguments: [id]).map(
                TicketBook.ticket(from:))
        }
    }

    /// Every sensor's last known state, by sensor id; with `status`, only the sensors in it.
    public func sensors(status: String?) throws(StoreError) -> [Sensor] {
        if let postgres { return try Self.storeErrors(location) { try postgres.blocking { try await postgres.sensors(status: status, downSince: nil) } } }
        return try read { db in
            var sql = "SELECT * FROM lymph_sensors"
            var args: [any DatabaseValueConvertible] = []
            if let status { sql += " WHERE status = ?"; args.append(status) }
            sql += " ORDER BY sensor_id"
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args)).map(Sensor.init(row:))
        }
    }
}

extension StateStore {
    /// `body`'s failure as a `StoreError` (a PostgreSQL call's is one already).
    static func storeErrors<T>(_ location: String, _ body: () throws -> T) throws(StoreError) -> T {
        do {
            return try body()
        } catch let e as StoreError {
            throw e
        } catch {
            throw StoreError(location: location, message: "\(error)")
        }
    }
}

/// The last known state of one sensor.
public struct Sensor: Sendable, Equatable {
    /// The sensor's `data.sensor_id`.
    public var sensorID: String
    /// The equipment it is on, from the latest event that named one.
    public var equipmentID: String?
    /// `online`, `offline` or `error`.
    public var status: String
    /// Since when the sensor has had this status (the `created_at` of the event that set it).
    public var since: Double
    /// The `id` of the event that set its state last.
    public var lastEventID: String
    /// That event's `created_at`, in seconds since 1970: an older event is stale.
    public var lastEventAt: Double

    init(sensorID: String, equipmentID: String?, status: String, since: Double, lastEventID: String, lastEventAt: Double) {
        self.sensorID = sensorID
        self.equipmentID = equipmentID
        self.status = status
        self.since = since
        self.lastEventID = lastEventID
        self.lastEventAt = lastEventAt
    }

    /// Offline or in error: what an "Inspect sensor" ticket is opened for, once long enough.
    public var isDown: Bool { status == "offline" || status == "error" }

    /// Throws when a value is not of its column's type (the store changed by hand), rather than
    /// stopping the process.
    init(row: Row) throws {
        self.init(
            sensorID: try row.decode(forColumn: "sensor_id"), equipmentID: try row.decode(forColumn: "equipment_id"),
            status: try row.decode(forColumn: "status"), since: try row.decode(forColumn: "since"),
            lastEventID: try row.decode(forColumn: "last_event_id"), lastEventAt: try row.decode(forColumn: "last_event_at"))
    }

    /// The sensor as a JSON object (`lymph sensors --format json`).
    public func json() -> [UInt8] {
        var out: [UInt8] = Array(#"{"sensor_id":"#.utf8)
        JSONStringEncoder.append(sensorID, to: &out)
        out.append(contentsOf: #","equipment_id":"#.utf8)
        if let equipmentID { JSONStringEncoder.append(equipmentID, to: &out) } else { out.append(contentsOf: "null".utf8) }
        out.append(contentsOf: #","status":"#.utf8)
        JSONStringEncoder.append(status, to: &out)
        out.append(contentsOf: #","since":"#.utf8)
        JSONStringEncoder.append(Timestamp.format(since), to: &out)
        out.append(contentsOf: #","last_event_id":"#.utf8)
        JSONStringEncoder.append(lastEventID, to: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }
}
