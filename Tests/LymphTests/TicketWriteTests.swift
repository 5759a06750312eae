import Foundation
import GRDB
import GRDBSQLite
import Testing
@testable import Lymph

@Suite("Ticket book: its sets of events and its writes")
struct TicketWriteTests {
    @Test("two event ids with the same fingerprint are both held, exactly, through a union and an emptying")
    func fingerprintCollision() {
        var set = EventIDSet()
        set.insert("evt_a", fingerprint: 42)
        set.insert("evt_b", fingerprint: 42)
        set.insert("evt_a", fingerprint: 42)
        #expect(set.contains("evt_a", fingerprint: 42))
        #expect(set.contains("evt_b", fingerprint: 42))
        // A third id behind the same fingerprint is new: a fingerprint hit is not a match.
        #expect(!set.contains("evt_c", fingerprint: 42))
        #expect(!set.contains("evt_a", fingerprint: 43))

        var other = EventIDSet()
        other.insert("evt_d", fingerprint: DedupKeyFilter.fingerprint("evt_d"))
        other.formUnion(set)
        #expect(other.contains("evt_d"))
        #expect(other.contains("evt_a", fingerprint: 42) && other.contains("evt_b", fingerprint: 42))
        #expect(!other.contains("evt_c", fingerprint: 42))

        other.removeAll()
        #expect(other.isEmpty)
        #expect(!other.contains("evt_a", fingerprint: 42) && !other.contains("evt_b", fingerprint: 42) && !other.contains("evt_d"))
    }

    @Test("a raw statement binds empty text as text, nil as NULL, and counts the rows it changed")
    func rawStatement() throws {
        let queue = try DatabaseQueue()
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE t (a TEXT, b TEXT, c REAL)")
            let insert = try RawStatement(db, sql: "INSERT INTO t (a, b, c) VALUES (?1, ?2, ?3)")
            try insert.bind(1, "")
            try insert.bind(2, nil as String?)
            try insert.bind(3, 1.5)
            #expect(try insert.run() == 1)
            try insert.bind(1, text: Array("é x".utf8))
            try insert.bind(2, "b")
            try insert.bind(3, 2.5)
            try insert.run()
            let rows = try Row.fetchAll(db, sql: "SELECT a, b, c, typeof(a) AS ta, typeof(b) AS tb FROM t ORDER BY c")
            #expect(rows.map { $0["ta"] as String } == ["text", "text"])
            #expect(rows.map { $0["tb"] as String } == ["null", "text"])
            #expect(rows.map { $0["a"] as String } == ["", "é x"])
            let update = try RawStatement(db, sql: "UPDATE t SET c = ?1 WHERE b = ?2")
            try update.bind(1, 9.0)
            try update.bind(2, "nothing")
            #expect(try update.run() == 0)
            try update.bind(2, "b")
            #expect(try update.run() == 1)
            // A failing step throws, and the statement is ready for the next values.
            let strict = try RawStatement(db, sql: "INSERT INTO t (a, b, c) VALUES (?1, ?2, ?3)")
            try db.execute(sql: "CREATE UNIQUE INDEX t_a ON t (a)")
            try strict.bind(1, "")
            try strict.bind(2, "dup")
            try strict.bind(3, 3.0)
            #expect(throws: DatabaseError.self) { try strict.run() }
            try strict.bind(1, "fresh")
            #expect(try strict.run() == 1)
        }
    }

    /// A value longer than the connection's length limit (a small one here; 1 GB by default) is
    /// refused by SQLite's bind, which leaves the parameter NULL: a statement run anyway writes
    /// NULL, or fails on a NOT NULL column for a reason that is not the real one.
    static let limitedLength: Int32 = 64
    static let overLimit = String(repeating: "x", count: 100)

    @Test("a value SQLite refuses to bind throws, and no row is written without it")
    func refusedBind() throws {
        let queue = try DatabaseQueue()
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE t (a TEXT)")
            _ = sqlite3_limit(db.sqliteConnection, SQLITE_LIMIT_LENGTH, Self.limitedLength)
            let insert = try RawStatement(db, sql: "INSERT INTO t (a) VALUES (?1)")
            try insert.bind(1, "first")
            try insert.run()
            #expect(throws: DatabaseError.self) { try insert.bind(1, Self.overLimit) }
            #expect(throws: DatabaseError.self) { try insert.bind(1, text: Array(Self.overLimit.utf8)) }
            #expect(throws: DatabaseError.self) { try insert.bind(1, Self.overLimit as String?) }
            #expect(try String.fetchAll(db, sql: "SELECT a FROM t") == ["first"])
        }
    }

    @Test("a dedup key SQLite refuses to bind fails the write, saying the key is too big")
    func refusedDedupKey() throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try StateStore.open(path: dir + "/state.sqlite")
        let scope = try store.dedupScope("s")
        let error = #expect(throws: StoreError.self) {
            try store.write { db in
                _ = sqlite3_limit(db.sqliteConnection, SQLITE_LIMIT_LENGTH, Self.limitedLength)
                try StateStore.dedupInsert(db, scope: scope, generation: 0, keys: [Array("a".utf8), Array(Self.overLimit.utf8)], fingerprints: nil, at: 1)
            }
        }
        // The cause is named: the key was too big (a refused bind left unchecked makes it NULL,
        // which the table refuses as a missing key).
        #expect(error?.message.contains("too big") == true)
        // The transaction rolled back: nothing of it is in the store.
        #expect(try store.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM lymph_dedup") } == 0)
        // An empty key is a key like any other (not NULL): written and found.
        try store.write { db in try StateStore.dedupInsert(db, scope: scope, generation: 0, keys: [[]], fingerprints: nil, at: 1) }
        #expect(try store.read { db in try StateStore.dedupLookup(db, scope: scope, keys: [[]], generations: [[0]], since: 0) } == [true])
    }

    @Test("a commit's keys go many to a statement, the rest one at a time: each is found, one given twice is one row, a refused key fails the write")
    func dedupKeysInStatementsOfManyRows() throws {
        let store = try StateStore.open(path: ":memory:")
        let scope = try store.dedupScope("s")
        let n = StateStore.keysPerInsert * 2 + 5
        // evt_0 twice in the first statement, evt_3 twice among the keys written one at a time.
        let keys = (0..<n).map { Array("evt_\($0)".utf8) } + [Array("evt_0".utf8), Array("evt_3".utf8), []]
        let sorted = StateStore.blobOrderIndices(keys)
        #expect(sorted.prefix(3) == [n + 2, 0, n])
        #expect(sorted.firstIndex(of: 3)! >= StateStore.keysPerInsert * 2 && sorted.firstIndex(of: n + 1)! >= StateStore.keysPerInsert * 2)
        try store.write { db in try StateStore.dedupInsert(db, scope: scope, generation: 7, keys: keys, fingerprints: nil, at: 100) }
        #expect(try store.dedupCount(scope: scope) == n + 1)
        let probe = keys + [Array("evt_absent".utf8)]
        let found = try store.read { db in
            try StateStore.dedupLookup(db, scope: scope, keys: probe, generations: probe.map { _ in [7] }, since: 100)
        }
        #expect(found == Array(repeating: true, count: keys.count) + [false])
        // Keys go in key order: one that sorts first is in the first statement of many rows,
        // one that sorts last among the rest, written one at a time.
        for (letter, manyToAStatement) in [("a", true), ("x", false)] {
            var refused = (0..<n).map { Array("new_\($0)".utf8) }
            refused[10] = Array(String(repeating: letter, count: Self.overLimit.count).utf8)
            let sortedAt = try #require(StateStore.blobOrderIndices(refused).firstIndex(of: 10))
            #expect((sortedAt < StateStore.keysPerInsert * 2) == manyToAStatement)
            let error = #expect(throws: StoreError.self) {
                try store.write { db in
                    _ = sqlite3_limit(db.sqliteConnection, SQLITE_LIMIT_LENGTH, Self.limitedLength)
                    defer { _ = sqlite3_limit(db.sqliteConnection, SQLITE_LIMIT_LENGTH, 1_000_000_000) }
                    try StateStore.dedupInsert(db, scope: scope, generation: 8, keys: refused, fingerprints: nil, at: 100)
                }
            }
            #expect(error?.message.contains("too big") == true)
            #expect(try store.dedupCount(scope: scope) == n + 1)
        }
    }

    @Test("a ticket written again updates its row and keeps a close made elsewhere; a new one is inserted; the store counts its rows of events")
    func upsert() throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try StateStore.open(path: dir + "/state.sqlite")
        var t = Ticket(
            ticketID: "mt_0000000000000001", equipmentID: "pump_001", action: "Replace seal", priority: .medium, dueBy: 1_790_000_000,
            status: .open, sourceEventIDs: ["evt_1"], createdAt: 1_789_000_000, updatedAt: 1_789_000_000, note: nil)
        try store.write { db in try TicketBook.upsert(db, t) }
        #expect(try store.closeTicket(id: t.ticketID, cancel: false, note: "done early", at: 1_789_000_050)?.status == .done)
        t.priority = .critical
        t.dueBy = 1_789_500_000
        t.updatedAt = 1_789_000_100
        try store.write { db in try TicketBook.upsert(db, t) }
        let row = try #require(try store.ticket(id: t.ticketID))
        #expect(row.status == .done && row.note == "done early")
        #expect(row.priority == .critical && row.dueBy == 1_789_500_000 && row.updatedAt == 1_789_000_100)
        #expect(row.createdAt == 1_789_000_000 && row.equipmentID == "pump_001" && row.action == "Replace seal")
        // A merge that moved neither due date nor priority: only the time of the change is written.
        t.updatedAt = 1_789_000_200
        try store.write { db in try TicketBook.upsert(db, t) }
        let touched = try #require(try store.ticket(id: t.ticketID))
        #expect(touched.updatedAt == 1_789_000_200 && touched.priority == .critical && touched.dueBy == 1_789_500_000)
        #expect(touched.status == .done && touched.note == "done early")
        #expect(try store.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM lymph_tickets") } == 1)
        // A row of new events, written as any version writes it, is counted by the store.
        try store.write { db in
            try db.execute(sql: "INSERT INTO lymph_ticket_source_lists (ticket_id, event_ids) VALUES (?, '[\"e1\",\"e2\"]')", arguments: [t.ticketID])
            try db.execute(sql: "INSERT INTO lymph_ticket_source_lists (ticket_id, event_ids) VALUES (?, '[\"e3\"]')", arguments: [t.ticketID])
        }
        #expect(try store.read { db in try Int.fetchOne(db, sql: "SELECT source_count FROM lymph_tickets") } == 3)
    }
}
