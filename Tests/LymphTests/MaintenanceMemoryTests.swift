import Foundation
import GRDB
import Synchronization
import Testing
@testable import Lymph

/// The open tickets and the sensors that a pipeline on SQLite keeps in memory between commits.
@Suite("maintenance state kept in memory")
struct MaintenanceMemoryTests {
    static func request(_ source: String, equipment: String = "pump_7", priority: Ticket.Priority = .medium) -> TicketRequest {
        TicketRequest(equipmentID: equipment, action: "Replace bearing", priority: priority, dueBy: 1_800_000_000, sourceEventID: source, at: 1_790_000_000)
    }

    static func commit(_ book: TicketBook, _ store: StateStore) throws {
        let write = book.takePending()
        try store.write { db in try write?.write(db) }
        book.pendingWritten()
    }

    /// A book over a store at `path` whose first request ("e1") opened a ticket, committed.
    static func bookWithCommittedTicket(at path: String) throws -> (StateStore, TicketBook, Ticket) {
        let store = try StateStore.open(path: path)
        let book = TicketBook(store: store)
        let change = try book.apply(Self.request("e1"))
        guard case .opened(let first) = change else { throw TestFailure("the first request opened no ticket: \(change)") }
        try Self.commit(book, store)
        return (store, book, first)
    }

    struct TestFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    @Test("a ticket closed by lymph tickets close while a pipeline keeps it in memory: the pipeline's next request opens a new one")
    func closedElsewhere() throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (store, book, first) = try Self.bookWithCommittedTicket(at: dir + "/state.sqlite")
        guard case .merged = try book.apply(Self.request("e2")) else {
            Issue.record("the second request did not merge")
            return
        }
        try Self.commit(book, store)
        // Another process (its own connection) closes it.
        let other = try StateStore.open(path: dir + "/state.sqlite")
        #expect(try other.closeTicket(id: first.ticketID, cancel: false, note: nil, at: 1_790_000_100)?.status == .done)
        guard case .opened(let second) = try book.apply(Self.request("e3")) else {
            Issue.record("a request after the close merged into the closed ticket")
            return
        }
        #expect(second.ticketID != first.ticketID)
        try Self.commit(book, store)
        #expect(try store.ticket(id: first.ticketID)?.sourceEventIDs == ["e1", "e2"])
        #expect(try store.ticket(id: second.ticketID)?.sourceEventIDs == ["e3"])
    }

    @Test("a ticket closed elsewhere while this pipeline has a change to it in memory: once that change is written, the next request opens a new one")
    func closedWhileChanged() throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (store, book, first) = try Self.bookWithCommittedTicket(at: dir + "/state.sqlite")
        _ = try book.apply(Self.request("e2"))  // the ticket changes in memory, not committed yet
        #expect(try StateStore.open(path: dir + "/state.sqlite").closeTicket(id: first.ticketID, cancel: false, note: nil, at: 1_790_000_100) != nil)
        // A batch for another job sees the close and loads the open tickets again, before the
        // change to the closed one is written.
        guard case .opened = try book.apply(Self.request("f1", equipment: "pump_8")) else {
            Issue.record("a request for another job opened no ticket")
            return
        }
        try Self.commit(book, store)
        guard case .opened(let second) = try book.apply(Self.request("e3")) else {
            Issue.record("a request after the close merged into the closed ticket")
            return
        }
        #expect(second.ticketID != first.ticketID)
        guard case .merged = try book.apply(Self.request("f2", equipment: "pump_8")) else {
            Issue.record("the ticket opened after the load was not kept")
            return
        }
    }

    @Test("more open tickets than are kept: jobs are read from the store, and merge as before")
    func moreOpenTicketsThanKept() throws {
        let store = try StateStore.open(path: ":memory:")
        let book = TicketBook(store: store, maxKnownOpen: 1)
        _ = try book.apply(Self.request("a1", equipment: "pump_1"))
        _ = try book.apply(Self.request("b1", equipment: "pump_2"))
        try Self.commit(book, store)
        guard case .merged(let a, changed: true) = try book.apply(Self.request("a2", equipment: "pump_1", priority: .high)),
            case .merged(let b, changed: false) = try book.apply(Self.request("b2", equipment: "pump_2"))
        else {
            Issue.record("requests for the two open jobs did not merge")
            return
        }
        // A changed ticket is reported with all its sources; an unchanged one with the new one.
        #expect(a.sourceEventIDs == ["a1", "a2"] && b.sourceEventIDs == ["b2"])
        try Self.commit(book, store)
        #expect(try store.tickets(status: .open, equipment: nil).map(\.sourceEventIDs).sorted { $0[0] < $1[0] } == [["a1", "a2"], ["b1", "b2"]])
    }

    /// With `kept` 1, the ticket is opened while too many are open to keep; with 3, while the
    /// book keeps them.
    @Test(
        "a ticket opened before lymph tickets close let the book load the open tickets again, and written after: the job's next request merges into it, and no ticket stays marked as opened here",
        arguments: [1, 3])
    func openedThenLoaded(kept: Int) throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try StateStore.open(path: dir + "/state.sqlite")
        let book = TicketBook(store: store, maxKnownOpen: kept)
        guard case .opened(let first) = try book.apply(Self.request("a1", equipment: "pump_1")) else {
            Issue.record("the first request opened no ticket")
            return
        }
        try Self.commit(book, store)
        _ = try book.apply(Self.request("b1", equipment: "pump_2"))
        try Self.commit(book, store)  // two open: more than are kept
        guard case .opened(let third) = try book.apply(Self.request("c1", equipment: "pump_3")) else {
            Issue.record("the third request opened no ticket")
            return
        }
        let inFlight = book.takePending()
        // While the opening is in flight, another process closes the first ticket, and a batch
        // sees the close and loads the open tickets again (one: the third is not written yet).
        #expect(try StateStore.open(path: dir + "/state.sqlite").closeTicket(id: first.ticketID, cancel: false, note: nil, at: 1_790_000_100) != nil)
        _ = try book.apply(Self.request("b2", equipment: "pump_2"))
        try store.write { db in try inFlight?.write(db) }
        book.pendingWritten()
        guard case .merged(let merged, _) = try book.apply(Self.request("c2", equipment: "pump_3")) else {
            Issue.record("the job's next request did not merge into its open ticket")
            return
        }
        #expect(merged.ticketID == third.ticketID)
        try Self.commit(book, store)
        #expect(try store.tickets(status: .open, equipment: "pump_3").map(\.sourceEventIDs) == [["c1", "c2"]])
        #expect(book.openedHereCountForTests == 0)
    }

    static func sensorEvent(_ id: String, _ sensor: String, _ status: String, minute: Int) -> Event {
        let created = Timestamp.format(1_780_000_000 + Double(minute) * 60)
        let line =
            #"{"id":"\#(id)","type":"sensor.status_changed","created_at":"\#(created)","data":{"sensor_id":"\#(sensor)","equipment_id":"pump_777","status":"\#(status)"}}"#
        return Fixture.parsed(line)
    }

    static func commit(_ stage: TrackSensorsStage, _ store: StateStore) throws {
        let write = try stage.takePending()
        try store.write { db in try write?.write(db) }
        stage.pendingWritten()
    }

    @Test(
        "sensors beyond the number kept in memory are read from the store: stale events are still dropped, and a sensor down too long opens its ticket once",
        arguments: [1, 100_000])
    func sensorsBeyondTheBound(kept: Int) async throws {
        let store = try StateStore.open(path: ":memory:")
        let book = TicketBook(store: store)
        let stage = TrackSensorsStage(store: store, book: book, offlineTicket: 30 * 60, maxKnownSensors: kept)
        let context = Fixture.context(now: 1_790_000_000)
        let first = try await stage.process(
            [Self.sensorEvent("a1", "sen_a", "offline", minute: 10), Self.sensorEvent("b1", "sen_b", "online", minute: 10)], context: context)
        #expect(first.map(\.label) == ["pass", "pass"])
        try Self.commit(stage, store)
        let second = try await stage.process(
            [
                Self.sensorEvent("a0", "sen_a", "online", minute: 5),  // older than a1: stale
                Self.sensorEvent("c1", "sen_c", "error", minute: 40),
                Self.sensorEvent("b0", "sen_b", "offline", minute: 1),  // stale
                Self.sensorEvent("b2", "sen_b", "online", minute: 50),  // the clock passes 30 min of sen_a's outage
            ], context: context)
        #expect(second.map(\.label) == ["drop(stale)", "pass", "drop(stale)", "pass"])
        _ = try await stage.process([Self.sensorEvent("b3", "sen_b", "online", minute: 55)], context: context)
        try Self.commit(stage, store)
        #expect(try store.sensors(status: nil).map { "\($0.sensorID) \($0.status)" } == ["sen_a offline", "sen_b online", "sen_c error"])
        let tickets = try store.tickets(status: .open, equipment: nil)
        #expect(tickets.map(\.action) == ["Inspect sensor sen_a"])
        #expect(tickets.first?.sourceEventIDs == ["a1"])
    }

    @Test(
        "a sensor still down is judged again on each new event, and one down again after coming back is judged anew: in memory as from the store",
        arguments: [1, 100_000])
    func outagesAreJudgedPerEvent(kept: Int) async throws {
        let store = try StateStore.open(path: ":memory:")
        let stage = TrackSensorsStage(store: store, book: TicketBook(store: store), offlineTicket: 30 * 60, maxKnownSensors: kept)
        let context = Fixture.context(now: 1_790_000_000)
        let batches: [[Event]] = [
            [Self.sensorEvent("a1", "sen_a", "offline", minute: 10)],  // down, not for long yet
            [Self.sensorEvent("b1", "sen_b", "online", minute: 25)],  // 15 min: not yet
            [Self.sensorEvent("b2", "sen_b", "online", minute: 45)],  // 35 min: its ticket opens
            [Self.sensorEvent("b3", "sen_b", "online", minute: 46)],  // nothing new about sen_a
            [Self.sensorEvent("a2", "sen_a", "offline", minute: 50)],  // still down: merged in
            [Self.sensorEvent("a3", "sen_a", "online", minute: 60), Self.sensorEvent("a4", "sen_a", "error", minute: 70)],
            [Self.sensorEvent("b4", "sen_b", "online", minute: 80)],  // 10 min in error: not yet
            [Self.sensorEvent("b5", "sen_b", "online", minute: 101)],  // 31 min: merged in, priority high
        ]
        for batch in batches {
            _ = try await stage.process(batch, context: context)
            try Self.commit(stage, store)
        }
        let tickets = try store.tickets(status: .open, equipment: nil)
        #expect(tickets.map(\.action) == ["Inspect sensor sen_a"])
        #expect(tickets.first?.sourceEventIDs == ["a1", "a2", "a4"])
        #expect(tickets.first?.priority == .high)
    }

    @Test("the fleet outgrows what is kept in the middle of a batch: a later event of a stored sensor is judged against the store")
    func fleetOutgrowsMidBatch() async throws {
        let store = try StateStore.open(path: ":memory:")
        let context = Fixture.context(now: 1_790_000_000)
        let before = TrackSensorsStage(store: store, book: TicketBook(store: store), offlineTicket: nil)
        _ = try await before.process([Self.sensorEvent("a1", "sen_a", "offline", minute: 10)], context: context)
        try Self.commit(before, store)
        let stage = TrackSensorsStage(store: store, book: TicketBook(store: store), offlineTicket: nil, maxKnownSensors: 2)
        let outcomes = try await stage.process(
            [
                Self.sensorEvent("b1", "sen_b", "online", minute: 20),
                Self.sensorEvent("c1", "sen_c", "online", minute: 20),  // a third sensor: no longer kept
                Self.sensorEvent("a0", "sen_a", "online", minute: 5),  // older than the stored a1: stale
            ], context: context)
        #expect(outcomes.map(\.label) == ["pass", "pass", "drop(stale)"])
    }

    @Test("tickets made before source lists keep their sources in order, and their events stay applied")
    func migratedSources() async throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/state.sqlite"
        do {
            let queue = try GRDB.DatabaseQueue(path: path)
            try StateStore.migrator.migrate(queue, upTo: "v8-ticket-closes")
            try await queue.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO lymph_tickets (ticket_id, equipment_id, action, priority, due_by, status, created_at, updated_at)
                            VALUES ('mt_old', 'pump_7', 'Replace bearing', 'medium', 1800000000, 'open', 1790000000, 1790000000);
                        INSERT INTO lymph_ticket_sources (event_id, ticket_id) VALUES ('e2', 'mt_old'), ('e1', 'mt_old'), ('e3', 'mt_old');
                        """)
            }
        }
        let store = try StateStore.open(path: path)
        #expect(try store.ticket(id: "mt_old")?.sourceEventIDs == ["e2", "e1", "e3"])
        let book = TicketBook(store: store)
        #expect(try book.apply(Self.request("e1")) == .alreadyApplied)
        guard case .merged(let t, changed: true) = try book.apply(Self.request("e4", priority: .high)) else {
            Issue.record("a new event did not merge into the migrated ticket")
            return
        }
        #expect(t.ticketID == "mt_old" && t.sourceEventIDs == ["e2", "e1", "e3", "e4"])
        try Self.commit(book, store)
        #expect(try store.ticket(id: "mt_old")?.sourceEventIDs == ["e2", "e1", "e3", "e4"])
        #expect(try TicketBook(store: store).apply(Self.request("e4")) == .alreadyApplied)
    }

    /// The changed-merge request that reports a ticket with its latest events and count.
    static func raise(_ source: String) -> TicketRequest { request(source, priority: .critical) }

    @Test(
        "a change to a ticket with many source events lists the latest 100 and counts them all, once each, whether the commit in flight has landed or not",
        arguments: [true, false])
    func changeListsTheLatestSources(landed: Bool) throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (store, book, first) = try Self.bookWithCommittedTicket(at: dir + "/state.sqlite")
        // 150 more events in 30 commits, none of them moving the ticket.
        for c in 0..<30 {
            for n in 1...5 { _ = try book.apply(Self.request("e\(c * 5 + n + 1)")) }
            try Self.commit(book, store)
        }
        // Five more taken for a commit the book has not heard of: landed, or not yet.
        for n in 152...156 { _ = try book.apply(Self.request("e\(n)")) }
        let inFlight = book.takePending()
        if landed { try store.write { db in try inFlight?.write(db) } }
        guard case .merged(let t, changed: true) = try book.apply(Self.raise("e157")) else {
            Issue.record("the raise did not change the ticket")
            return
        }
        #expect(t.ticketID == first.ticketID)
        #expect(t.sourceEventIDs == (58...157).map { "e\($0)" })
        #expect(t.sourceEventCount == 157)
        #expect(t.json(listing: TicketBook.listedSources).count < 3_000)
        if landed { book.pendingWritten() } else { book.pendingNotWritten() }
        try Self.commit(book, store)
        #expect(try store.ticket(id: first.ticketID)?.sourceEventIDs == (1...157).map { "e\($0)" })
        // The count is the store's: a book opened later reports it too.
        let later = TicketBook(store: store)
        var sooner = Self.raise("e158")
        sooner.dueBy -= 86_400
        guard case .merged(let u, changed: true) = try later.apply(sooner) else {
            Issue.record("a later book's change did not merge")
            return
        }
        #expect(u.sourceEventCount == 158 && u.sourceEventIDs.last == "e158" && u.sourceEventIDs.count == 100)
        // That read is kept as the ticket's tail: after a commit, its next change lists from it.
        try Self.commit(later, store)
        sooner = Self.raise("e159")
        sooner.dueBy -= 2 * 86_400
        guard case .merged(let v, changed: true) = try later.apply(sooner) else {
            Issue.record("a later book's second change did not merge")
            return
        }
        #expect(v.sourceEventCount == 159 && v.sourceEventIDs == (60...159).map { "e\($0)" })
    }

    @Test("a ticket's kept tail lists its latest events and counts them all, trimmed as it grows")
    func sourceTail() {
        var tail = SourceTail(latest: ["a", "bé"], count: 40, limit: 3)
        #expect(tail.count == 40 && tail.latest(3) == ["a", "bé"] && tail.latest(1) == ["bé"] && tail.latest(0).isEmpty)
        tail.append(["c", "", "e"])
        #expect(tail.count == 43 && tail.latest(3) == ["c", "", "e"])
        // Past twice its limit it lets go of the oldest, and still lists the latest.
        tail.append((1...20).map { "x\($0)" })
        #expect(tail.count == 63 && tail.latest(3) == ["x18", "x19", "x20"] && tail.latest(100).count <= 6)
        // Kept within their bound: past it, tickets are let go, to be read again.
        var tails = SourceTails(budget: 4 * SourceTail(latest: [], count: 0, limit: 3).size)
        for n in 0..<8 { tails.keep(SourceTail(latest: [], count: n, limit: 3), for: "t\(n)") }
        #expect((0..<8).count(where: { tails["t\($0)"] != nil }) <= 4)
        tails.keep(SourceTail(latest: ["a"], count: 1, limit: 3), for: "new")
        tails.committed(["b"], of: "new")
        tails.committed(["z"], of: "not kept")
        #expect(tails["new"]?.count == 2 && tails["new"]?.latest(3) == ["a", "b"] && tails["not kept"] == nil)
    }

    @Test(
        "tickets stored before their lists were linked list their events in order, after a VACUUM too, and an older version's row is linked and counted"
    )
    func migratedSourceChains() throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/state.sqlite"
        do {
            let queue = try GRDB.DatabaseQueue(path: path)
            try StateStore.migrator.migrate(queue, upTo: "v13-run-inputs-by-pipeline")
            try queue.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO lymph_tickets (ticket_id, equipment_id, action, priority, due_by, status, created_at, updated_at)
                            VALUES ('mt_a', 'pump_7', 'Replace bearing', 'medium', 1800000000, 'open', 1790000000, 1790000000),
                                   ('mt_b', 'pump_8', 'Replace bearing', 'medium', 1800000000, 'open', 1790000000, 1790000000);
                        INSERT INTO lymph_ticket_source_lists (ticket_id, event_ids)
                            VALUES ('mt_x', '["x1"]'), ('mt_a', '["a1","a2"]'), ('mt_b', '["b1"]'), ('mt_x', '["x2"]'), ('mt_a', '["a3"]'),
                                   ('mt_b', '["b2","b3"]'), ('mt_a', '["a4"]');
                        """)
            }
        }
        let store = try StateStore.open(path: path)
        // A ticket's rows pruned by hand, then the file vacuumed: the links still hold (VACUUM
        // renumbers the implicit rowids of a table with gaps, not an INTEGER PRIMARY KEY).
        try store.write { db in try db.execute(sql: "DELETE FROM lymph_ticket_source_lists WHERE ticket_id = 'mt_x'") }
        try GRDB.DatabaseQueue(path: path).writeWithoutTransaction { db in try db.execute(sql: "VACUUM") }
        #expect(try store.ticket(id: "mt_a")?.sourceEventIDs == ["a1", "a2", "a3", "a4"])
        #expect(try store.tickets(status: .open, equipment: nil).map(\.sourceEventIDs) == [["a1", "a2", "a3", "a4"], ["b1", "b2", "b3"]])
        // A row written as an older version writes it (no link): linked after the ticket's latest.
        try store.write { db in try db.execute(sql: #"INSERT INTO lymph_ticket_source_lists (ticket_id, event_ids) VALUES ('mt_b', '["b4"]')"#) }
        #expect(try store.ticket(id: "mt_b")?.sourceEventIDs == ["b1", "b2", "b3", "b4"])
        let book = TicketBook(store: store)
        var raise = Self.raise("b5")
        raise.equipmentID = "pump_8"
        guard case .merged(let t, changed: true) = try book.apply(raise) else {
            Issue.record("the raise did not merge into the stored ticket")
            return
        }
        #expect(t.ticketID == "mt_b" && t.sourceEventIDs == ["b1", "b2", "b3", "b4", "b5"])
        try Self.commit(book, store)
        #expect(try store.ticket(id: "mt_b")?.sourceEventIDs == ["b1", "b2", "b3", "b4", "b5"])
        #expect(try store.ticket(id: "mt_a")?.sourceEventIDs == ["a1", "a2", "a3", "a4"])
    }

    @Test("tickets made before the source count get it counted from their lists")
    func migratedSourceCount() throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/state.sqlite"
        do {
            let queue = try GRDB.DatabaseQueue(path: path)
            try StateStore.migrator.migrate(queue, upTo: "v10-dedup-fingerprints")
            let lists = [(1...70), (71...120)].map { r in "[" + r.map { "\"e\($0)\"" }.joined(separator: ",") + "]" }
            try queue.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO lymph_tickets (ticket_id, equipment_id, action, priority, due_by, status, created_at, updated_at)
                            VALUES ('mt_old', 'pump_7', 'Replace bearing', 'medium', 1800000000, 'open', 1790000000, 1790000000);
                        INSERT INTO lymph_ticket_source_lists (ticket_id, event_ids) VALUES ('mt_old', ?), ('mt_old', ?);
                        """, arguments: [lists[0], lists[1]])
            }
        }
        let store = try StateStore.open(path: path)
        let book = TicketBook(store: store)
        guard case .merged(let t, changed: true) = try book.apply(Self.raise("e121")) else {
            Issue.record("the raise did not merge into the migrated ticket")
            return
        }
        #expect(t.ticketID == "mt_old" && t.sourceEventCount == 121 && t.sourceEventIDs == (22...121).map { "e\($0)" })
    }

    @Test("applied source events are remembered 90 days: older ones are purged from the store and the filters, and apply again")
    func appliedSourcesArePurged() throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try StateStore.open(path: dir + "/state.sqlite")
        let now = TestClock(1_790_000_000)
        let book = TicketBook(store: store, clock: { now.read() })
        _ = try book.apply(Self.request("e1"))
        try Self.commit(book, store)
        now.advance(89 * 86_400)
        _ = try book.apply(Self.request("e2"))
        try Self.commit(book, store)
        let generations = try #require(book.sourceGenerationsForTests)
        #expect(generations.generationCount == 2)
        // A day past e1's 90 days: the next commit purges its generation.
        now.advance(2 * 86_400)
        _ = try book.apply(Self.request("e3"))
        try Self.commit(book, store)
        #expect(generations.generationCount == 2)
        let scope = try store.dedupScope(TicketBook.sourceScope)
        #expect(try store.dedupCount(scope: scope) == 2)
        #expect(try book.apply(Self.request("e2")) == .alreadyApplied)
        #expect(try TicketBook(store: store).apply(Self.request("e3")) == .alreadyApplied)
        guard case .merged(let t, changed: false) = try book.apply(Self.request("e1")) else {
            Issue.record("an event older than the memory did not apply again")
            return
        }
        #expect(t.sourceEventIDs == ["e1"])
    }

    @Test("an event that opened a ticket since closed, replayed after the applied set forgot it, changes nothing: the next request opens a new ticket")
    func forgottenOpenerOfAClosedTicket() throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try StateStore.open(path: dir + "/state.sqlite")
        let now = TestClock(1_790_000_000)
        let book = TicketBook(store: store, clock: { now.read() })
        guard case .opened(let first) = try book.apply(Self.request("e1")) else {
            Issue.record("the first request opened no ticket")
            return
        }
        try Self.commit(book, store)
        _ = try store.closeTicket(id: first.ticketID, cancel: false, note: nil, at: now.read())
        // 91 days on, another job's commit purges e1's generation.
        now.advance(91 * 86_400)
        _ = try book.apply(Self.request("o1", equipment: "fan_2"))
        try Self.commit(book, store)
        #expect(try store.dedupCount(scope: try store.dedupScope(TicketBook.sourceScope)) == 1)
        #expect(try book.apply(Self.request("e1")) == .alreadyApplied)
        try Self.commit(book, store)
        let closed = try #require(try store.ticket(id: first.ticketID))
        #expect(closed.status == .done && closed.sourceEventIDs == ["e1"])
        guard case .opened(let next) = try book.apply(Self.request("e2")) else {
            Issue.record("the next request for the job opened no ticket")
            return
        }
        #expect(next.ticketID != first.ticketID)
    }
}

/// A clock a test moves by hand.
final class TestClock: Sendable {
    private let time: Mutex<Double>
    init(_ start: Double) { time = Mutex(start) }
    func read() -> Double { time.withLock { $0 } }
    func advance(_ seconds: Double) { time.withLock { $0 += seconds } }
}
