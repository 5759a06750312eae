import GRDB
import HeapModule
import Synchronization

/// Keeps the last known status of every sensor from `sensor.status_changed` events.
///
/// An event older (by `created_at`) than the latest one recorded for its sensor is stale: dropped
/// and counted as `stale`, so a late duplicate never flips a sensor back. With `offlineTicket`, a
/// sensor offline or in error for longer than that opens an "Inspect sensor" ticket (the ticket
/// rules of `TicketBook`): judged against the newest event time seen after each batch, and
/// against the wall clock when the input ends (not when a signal stops the run first: the run
/// that continues it judges). These tickets emit no event.
public final class TrackSensorsStage: Stage {
    let store: StateStore
    let book: TicketBook
    let offlineTicket: Double?
    let dueIn: Double
    let clock: @Sendable () -> Double
    let sensorPath = try! JSONPath(parsing: "data.sensor_id")
    let equipmentPath = try! JSONPath(parsing: "data.equipment_id")
    let statusPath = try! JSONPath(parsing: "data.status")
    static let type = Array("sensor.status_changed".utf8)
    static let statuses: Set<String> = ["online", "offline", "error"]

    private struct State {
        var changed: [KeyBytes: Sensor] = [:]
        var writing: [Sensor] = []
        var clock = 0.0
        /// The last event of each sensor already turned into a ticket request, so each outage
        /// is judged into the ticket book once (bounded by the number of sensors).
        var requested: [KeyBytes: String] = [:]
        /// On SQLite: every sensor's state, the store's with this stage's changes over it (nil
        /// until the first batch loads it, or when the store holds more than
        /// `maxKnownSensors`). This process is the store's only writer (`StoreLock`), so nothing
        /// else changes them.
        var known: [KeyBytes: Sensor]?
        /// The latest events of sensors offline or in error, not judged yet, earliest `since`
        /// first: each batch's judgement takes only those down long enough, not every sensor
        /// down. An entry whose sensor has had a newer event since is passed over when it comes
        /// up (the newer event has its own entry).
        var unjudged = Heap<Unjudged>()
        var loaded = false
        /// Outages that ended in this batch (the sensor's status changed) after lasting the limit
        /// or longer, not judged before: each is judged as its sensor was, whatever came after.
        var endedDown: [Sensor] = []

        /// Keeps a sensor's new state in `known` (and `unjudged`), while there is room for it.
        mutating func remember(_ sensor: Sensor, key: KeyBytes? = nil, bound: Int) {
            guard known != nil else { return }
            let key = key ?? TrackSensorsStage.key(sensor.sensorID)
            if known![key] == nil && known!.count >= bound {
                // A fleet grown past the bound: back to reading the store, which holds every
                // committed state (`changed` holds the rest).
                known = nil
                unjudged = Heap()
                return
            }
            known![key] = sensor
            guard sensor.isDown else { return }
            unjudged.insert(Unjudged(since: sensor.since, sensorID: sensor.sensorID, eventID: sensor.lastEventID))
            if unjudged.count > 2 * known!.count + 1024 {
                // Mostly entries passed over already: one per sensor down is all that counts.
                let current = unjudged.unordered.filter { known![TrackSensorsStage.key($0.sensorID)]?.lastEventID == $0.eventID }
                unjudged = Heap(current)
            }
        }
    }

    /// A sensor's latest event while it is down, ordered by when it went down.
    struct Unjudged: Comparable {
        let since: Double
        let sensorID: String
        let eventID: String

        static func < (a: Unjudged, b: Unjudged) -> Bool { a.since < b.since }
    }
    private let state = Mutex(State())
    /// Sensors kept in memory at most; a larger fleet is read from the store batch by batch.
    let maxKnownSensors: Int
    /// How far ahead of the machine's clock an event's `created_at` may be (`max_future`).
    let maxFuture: Double
    /// Five minutes (`FutureTimeCheck`).
    public static let defaultMaxFuture = FutureTimeCheck.defaultMaxFuture

    /// A stage keeping sensor statuses in `store`; with `offlineTicket`, its tickets go to `book`,
    /// due `dueIn` seconds after they open; `clock` is the time at the end of the run; up to
    /// `maxKnownSensors` are kept in memory.
    public init(
        store: StateStore, book: TicketBook, offlineTicket: Double?, dueIn: Double = 24 * 3600, maxFuture: Double = defaultMaxFuture,
        clock: @escaping @Sendable () -> Double = { Timestamp.now() }, maxKnownSensors: Int = 100_000
    ) {
        self.maxKnownSensors = maxKnownSensors
        self.maxFuture = maxFuture
        self.store = store
        self.clock = clock
        self.book = book
        self.offlineTicket = offlineTicket
        self.dueIn = dueIn
    }

    /// False: statuses change in event order.
    public var runsConcurrently: Bool { false }

    /// Records the status of each `sensor.status_changed` event (dropping stale ones), then, with
    /// `offlineTicket`, opens tickets for sensors down too long by the newest event time seen.
    public func process(_ events: [Event], context: StageContext) async throws -> [StageOutcome] {
        let outcomes: [StageOutcome]
        if let postgres = store.postgres {
            // The batch's sensors in one round trip.
            let ids = events.filter { $0.typeBytes.elementsEqual(Self.type) }.compactMap { $0.value(at: sensorPath)?.string }
            let distinct = Dictionary(ids.map { (Self.key($0), $0) }, uniquingKeysWith: { first, _ in first })
            let stored = try await postgres.sensors(ids: Array(distinct.values))
            outcomes = try events.map { try self.track($0, now: context.now) { stored[Self.key($0)] } }
        } else if try loadKnown() {
            outcomes = try events.map { event in
                let reading: Reading
                switch self.reading(of: event, now: context.now) {
                case .reading(let r): reading = r
                case .outcome(let outcome): return outcome
                }
                // The sensor's last state and its change in one hold of the lock; `known` is
                // dropped if the fleet outgrows it mid-batch: then the store.
                if let outcome = state.withLock({ s -> StageOutcome? in
                    guard let known = s.known else { return nil }
                    return self.apply(reading, after: known[reading.key], to: &s)
                }) {
                    return outcome
                }
                let stored = try self.store.read { db in try Self.storedSensor(db, reading.sensorID) }
                return state.withLock { s in self.apply(reading, after: s.changed[reading.key] ?? stored, to: &s) }
            }
        } else {
            // One read transaction for the batch.
            outcomes = try store.read { db in
                try events.map { event in
                    try self.track(event, now: context.now) { id in try Self.storedSensor(db, id) }
                }
            }
        }
        if let limit = offlineTicket {
            let ended = state.withLock { s in
                defer { s.endedDown = [] }
                return s.endedDown
            }
            if !ended.isEmpty { _ = try await book.record(ended.map { request(for: $0, at: $0.since + limit) }) }
            try await judge(at: state.withLock { $0.clock }, stampedAtLimit: true)
        }
        return outcomes
    }

    /// A sensor's key in memory, by the bytes of its id as the store compares them (Swift's
    /// `String` equality would take canonically equivalent ids for one sensor; see
    /// `TicketBook.pairKey`).
    static func key(_ sensorID: String) -> KeyBytes { KeyBytes(Array(sensorID.utf8)) }

    /// What a `sensor.status_changed` event says.
    struct Reading {
        let sensorID: String
        /// The id's key in the maps (`key(_:)`), made once per event.
        let key: KeyBytes
        let status: String
        let created: Double
        /// `created`, but never past the machine's clock: how far the event moves the clock
        /// that judges outages (a sender's clock a little fast must not end them early).
        let clock: Double
        let eventID: String
        let equipmentID: String?
    }

    /// An event's reading, or what becomes of an event with none (any other type passes; one
    /// without a sensor or a known status fails).
    enum ReadingOrOutcome {
        case reading(Reading)
        case outcome(StageOutcome)
    }

    /// `now`: the machine's clock, which no event's time may be more than `maxFuture` ahead of.
    func reading(of event: Event, now: Double) -> ReadingOrOutcome {
        guard event.typeBytes.elementsEqual(Self.type) else { return .outcome(.pass) }
        guard let sensorValue = event.value(at: sensorPath) else {
            return .outcome(.fail(.missingField, message: "sensor.status_changed needs a non-empty data.sensor_id"))
        }
        guard let sensorID = sensorValue.string, !sensorID.isEmpty else {
            return .outcome(.fail(.invalidField, message: "data.sensor_id must be a non-empty string"))
        }
        if let problem = IdentifierCheck.problem(sensorID) {
            return .outcome(.fail(.invalidField, message: "data.sensor_id \(problem)"))
        }
        guard let status = event.value(at: statusPath)?.string, Self.statuses.contains(status) else {
            return .outcome(.fail(.invalidField, message: "data.status must be online, offline or error"))
        }
        // Optional, but a string when given: it names the sensor's tickets' equipment.
        var equipmentID: String? = nil
        if let value = event.value(at: equipmentPath), value.kind != .null {
            guard let id = value.string, !id.isEmpty else {
                return .outcome(.fail(.invalidField, message: "data.equipment_id must be a non-empty string"))
            }
            if let problem = IdentifierCheck.problem(id) {
                return .outcome(.fail(.invalidField, message: "data.equipment_id \(problem)"))
            }
            equipmentID = id
        }
        let created = event.createdAtBytes.flatMap(Timestamp.parse) ?? 0
        if let problem = FutureTimeCheck.problem(created: created, now: now, maxFuture: maxFuture) {
            let consequence = "; taken as is, every later status of the sensor with an earlier time would be dropped as stale"
            return .outcome(.fail(.inFuture, message: problem + consequence))
        }
        return .reading(
            Reading(
                sensorID: sensorID, key: Self.key(sensorID), status: status, created: created, clock: min(created, now), eventID: event.id,
                equipmentID: equipmentID))
    }

    /// Applies a reading to the sensor's last known state (`known`): a stale one is dropped, a
    /// replayed one changes nothing, any other becomes the sensor's state in `s`.
    private func apply(_ r: Reading, after known: Sensor?, to s: inout State) -> StageOutcome {
        if let k = known {
            if r.created < k.lastEventAt { return .drop(.stale) }
            if k.lastEventID == r.eventID { return .pass }  // applied before (a replay): nothing changes
        }
        if let k = known, k.isDown, k.status != r.status, let limit = offlineTicket, r.created - k.since >= limit,
            s.requested[r.key] != k.lastEventID
        {
            // Down long enough by the events' own times, though no judgement came in between
            // (the end of a batch, which would have found it): judged now, as it was then.
            s.requested[r.key] = k.lastEventID
            s.endedDown.append(k)
        }
        let since = (known?.status == r.status) ? known!.since : r.created
        let sensor = Sensor(
            sensorID: r.sensorID, equipmentID: r.equipmentID ?? known?.equipmentID, status: r.status, since: since, lastEventID: r.eventID,
            lastEventAt: r.created)
        s.changed[r.key] = sensor
        s.clock = max(s.clock, r.clock)
        s.remember(sensor, key: r.key, bound: maxKnownSensors)
        return .pass
    }

    /// One event, with the stored state of a sensor read through `stored`.
    func track(_ event: Event, now: Double, stored: (String) throws -> Sensor?) throws -> StageOutcome {
        let r: Reading
        switch reading(of: event, now: now) {
        case .reading(let reading): r = reading
        case .outcome(let outcome): return outcome
        }
        var known = state.withLock { $0.changed[r.key] }
        if known == nil { known = try stored(r.sensorID) }
        return state.withLock { s in apply(r, after: known, to: &s) }
    }

    /// A sensor's state as the store holds it.
    static func storedSensor(_ db: Database, _ id: String) throws -> Sensor? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM lymph_sensors WHERE sensor_id = ?"), arguments: [id]).map(Sensor.init(row:))
    }

    /// Loads every sensor from the store the first time, when there are not too many; whether
    /// they are in memory.
    private func loadKnown() throws -> Bool {
        if let known = state.withLock({ s in s.loaded ? s.known != nil : nil }) { return known }
        let sensors = try store.read { db -> [Sensor]? in
            let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM lymph_sensors") ?? 0
            if count > self.maxKnownSensors { return nil }
            return try Row.fetchAll(db, sql: "SELECT * FROM lymph_sensors").map(Sensor.init(row:))
        }
        return state.withLock { s in
            s.loaded = true
            guard let sensors else { return false }
            s.known = [:]
            s.known!.reserveCapacity(sensors.count)
            for sensor in sensors { s.remember(sensor, bound: self.maxKnownSensors) }
            // Changes made before the load (none on the first batch) are newer than the store.
            for sensor in s.changed.values { s.remember(sensor, bound: self.maxKnownSensors) }
            return s.known != nil
        }
    }

    /// Opens (or merges into) an "Inspect sensor" ticket for each sensor down longer than allowed
    /// by `clock`. `stampedAtLimit`: by the events' clock, each is stamped when it reached the
    /// limit (`since` + limit), so where the batches end does not change the ticket; by the wall
    /// clock at the end of the input, with that clock.
    func judge(at clock: Double, stampedAtLimit: Bool) async throws {
        guard let limit = offlineTicket, clock > 0 else { return }
        if store.postgres == nil, try loadKnown() {
            // In memory: only the sensors down long enough by this clock, whose latest event is
            // not judged yet. One down for less than the limit stays for a later clock.
            let due = state.withLock { s -> [Sensor] in
                var due: [Sensor] = []
                while let first = s.unjudged.min, clock - first.since >= limit {
                    s.unjudged.removeMin()
                    let key = Self.key(first.sensorID)
                    guard let sensor = s.known?[key], sensor.lastEventID == first.eventID,
                        s.requested[key] != sensor.lastEventID
                    else { continue }
                    s.requested[key] = sensor.lastEventID
                    due.append(sensor)
                }
                return due
            }
            _ = try await book.record(due.sorted { $0.sensorID < $1.sensorID }.map { request(for: $0, at: stampedAtLimit ? $0.since + limit : clock) })
            return
        }
        let recent = state.withLock { Array($0.changed.values) }
        let stored: [Sensor]
        if let postgres = store.postgres {
            stored = try await postgres.sensors(status: nil, downSince: clock - limit)
        } else {
            stored = try store.read { db in
                try Row.fetchAll(
                    db, sql: "SELECT * FROM lymph_sensors WHERE status IN ('offline', 'error') AND since <= ?",
                    arguments: [clock - limit]
                ).map(Sensor.init(row:))
            }
        }
        var byID: [KeyBytes: Sensor] = [:]
        for s in stored { byID[Self.key(s.sensorID)] = s }
        for s in recent { byID[Self.key(s.sensorID)] = s }  // newer than the store
        var requests: [TicketRequest] = []
        for sensor in byID.values.sorted(by: { $0.sensorID < $1.sensorID })
        where sensor.isDown && clock - sensor.since >= limit {
            let fresh = state.withLock { s in
                let key = Self.key(sensor.sensorID)
                guard s.requested[key] != sensor.lastEventID else { return false }
                s.requested[key] = sensor.lastEventID
                return true
            }
            if !fresh { continue }
            requests.append(request(for: sensor, at: stampedAtLimit ? sensor.since + limit : clock))
        }
        _ = try await book.record(requests)
    }

    /// The "Inspect sensor" ticket request for a sensor down too long, judged at `clock`.
    private func request(for sensor: Sensor, at clock: Double) -> TicketRequest {
        TicketRequest(
            equipmentID: sensor.equipmentID ?? sensor.sensorID, action: "Inspect sensor \(sensor.sensorID)",
            priority: sensor.status == "error" ? .high : .medium, dueBy: clock + dueIn,
            sourceEventID: sensor.lastEventID, at: clock)
    }

    /// Opens tickets for sensors down too long by the clock (the wall clock, or a test's), once
    /// the input has ended. A run a signal stopped does not: its input goes on in the run that
    /// continues it, where a sensor may be back before then.
    public func inputEnded() async throws {
        try await judge(at: clock(), stampedAtLimit: false)
    }

    /// Larger commit groups than the default: each commit writes every ticket and sensor changed
    /// since the last (`TicketBook.commitGroup`).
    public var commitGroup: Int { TicketBook.commitGroup }

    /// Takes the changed statuses and the book's changes, for the runner's transaction (where a
    /// status is never written over a newer one).
    public func takePending() throws -> PendingWrite? {
        let sensors = state.withLock { s in
            s.writing = Array(s.changed.values)
            return s.writing
        }
        let tickets = book.takePending()
        if sensors.isEmpty && tickets == nil { return nil }
        if let postgres = store.postgres {
            return PendingWrite(postgres: { conn in
                try await postgres.writeSensors(sensors, on: conn)
                try await tickets?.write(conn)
            })
        }
        return PendingWrite { db in
            let upsert = try RawStatement(
                db,
                sql: """
                    INSERT INTO lymph_sensors (sensor_id, equipment_id, status, since, last_event_id, last_event_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                    ON CONFLICT(sensor_id) DO UPDATE SET equipment_id = excluded.equipment_id, status = excluded.status,
                        since = excluded.since, last_event_id = excluded.last_event_id, last_event_at = excluded.last_event_at
                    WHERE excluded.last_event_at >= lymph_sensors.last_event_at
                    """)
            for s in sensors {
                try upsert.bind(1, s.sensorID)
                try upsert.bind(2, s.equipmentID)
                try upsert.bind(3, s.status)
                try upsert.bind(4, s.since)
                try upsert.bind(5, s.lastEventID)
                try upsert.bind(6, s.lastEventAt)
                try upsert.run()
            }
            try tickets?.write(db)
        }
    }

    /// Keeps the changes for the next transaction.
    public func pendingNotWritten() {
        // `changed` still holds what was being written: the next takePending takes it again.
        state.withLock { $0.writing = [] }
        book.pendingNotWritten()
    }

    /// The changes are committed: forgets those written, unless the sensor changed again since.
    public func pendingWritten() {
        state.withLock { s in
            for w in s.writing where s.changed[Self.key(w.sensorID)] == w { s.changed.removeValue(forKey: Self.key(w.sensorID)) }
            s.writing = []
        }
        book.pendingWritten()
    }
}
