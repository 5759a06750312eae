import Foundation
import TestSupport
import Testing

@testable import Lymph

/// Dedup keys shared by several processes in PostgreSQL (a throwaway cluster).
@Suite struct PostgresDedupTests {
    static func database() async throws -> PostgresDatabase {
        let (_, location) = try PostgresSpoolTests.freshLocation()
        return try await PostgresSpoolTests.open(location)
    }

    static func keys(_ names: [String]) -> [[UInt8]] { names.map { Array($0.utf8) } }

    /// A holder whose lease is renewed now.
    static func holder(_ db: PostgresDatabase, _ name: String, lease: Duration = .seconds(30)) async throws -> PostgresHolder {
        let h = PostgresHolder(database: db, instance: name, lease: lease)
        try await h.renew()
        return h
    }

    @Test func twoProcessesClaimingTheSameKeysAtOnceGetEachOnce() async throws {
        let db = try await Self.database()
        defer { db.close() }
        // Leases far longer than the test: nothing renews them here, and on a loaded machine the
        // rounds took 150 s, past a 30 s lease, after which a lapsed holder's claims are the
        // other's to take (by design) and a key was won twice.
        let a = PostgresDedup(holder: try await Self.holder(db, "a", lease: .seconds(3_600)), scope: "dedup")
        let b = PostgresDedup(holder: try await Self.holder(db, "b", lease: .seconds(3_600)), scope: "dedup")
        // 20 rounds of overlapping batches, in opposite orders, claimed at the same moment.
        for round in 0..<20 {
            let names = (0..<200).map { "evt_\(round)_\($0)" }
            let ka = Self.keys(names), kb = Self.keys(names.reversed())
            async let wa = a.claim(ka, since: 0)
            async let wb = b.claim(kb, since: 0)
            let (ra, rb) = try await (wa, wb)
            var winners: [String: Int] = [:]
            for (i, won) in ra.enumerated() where won { winners[names[i], default: 0] += 1 }
            for (i, won) in rb.enumerated() where won { winners[names.reversed()[i], default: 0] += 1 }
            #expect(winners.count == names.count && winners.values.allSatisfy { $0 == 1 }, "round \(round)")
        }
    }

    @Test func aKeyIsNewOnceUntilItsWindowPasses() async throws {
        let db = try await Self.database()
        defer { db.close() }
        let a = PostgresDedup(holder: try await Self.holder(db, "a"), scope: "dedup")
        let b = PostgresDedup(holder: try await Self.holder(db, "b"), scope: "dedup")
        // A repeat within one batch, and the same key again while its event is in flight: another
        // process's claim loses; this process's own counts as held (a claim whose answer was lost
        // is taken again; the dedup stage's in-memory set catches its own events in flight).
        #expect(try await a.claim(Self.keys(["k1", "k2", "k1"]), since: 0) == [true, true, false])
        #expect(try await b.claim(Self.keys(["k1"]), since: 0) == [false])
        #expect(try await a.claim(Self.keys(["k1"]), since: 0) == [true])
        try await a.complete(Self.keys(["k1", "k2"]), at: 100)
        // Done: a duplicate within the window (seen at or after `since`)...
        #expect(try await b.claim(Self.keys(["k1"]), since: 100) == [false])
        // ...and new again once the window has passed.
        #expect(try await b.claim(Self.keys(["k1"]), since: 100.5) == [true])
        // Another scope is another key space.
        #expect(try await PostgresDedup(holder: a.holder, scope: "other").claim(Self.keys(["k2"]), since: 0) == [true])
    }

    @Test func aReleasedClaimIsNewForTheNextDelivery() async throws {
        let db = try await Self.database()
        defer { db.close() }
        let a = PostgresDedup(holder: try await Self.holder(db, "a"), scope: "dedup")
        let b = PostgresDedup(holder: try await Self.holder(db, "b"), scope: "dedup")
        #expect(try await a.claim(Self.keys(["k"]), since: 0) == [true])
        try await a.release(Self.keys(["k"]))  // its event went to the dead letters
        #expect(try await b.claim(Self.keys(["k"]), since: 0) == [true])
    }

    @Test func aDeadProcessClaimsLapseAndItsLateCommitIsRefused() async throws {
        let db = try await Self.database()
        defer { db.close() }
        let dead = PostgresDedup(holder: try await Self.holder(db, "a"), scope: "dedup")
        let b = PostgresDedup(holder: try await Self.holder(db, "b"), scope: "dedup")
        #expect(try await dead.claim(Self.keys(["k1", "k2"]), since: 0) == [true, true])
        #expect(try await b.claim(Self.keys(["k1"]), since: 0) == [false])
        try PostgresSpoolTests.expire(dead.holder)
        #expect(try await b.claim(Self.keys(["k1"]), since: 0) == [true])
        // The old process wakes up and commits: refused, the whole transaction.
        let error = await #expect(throws: StoreError.self) { try await dead.complete(Self.keys(["k1", "k2"]), at: 5) }
        #expect("\(error!)".contains("no longer this process's"))
        try await b.complete(Self.keys(["k1"]), at: 5)
        // k2 was not committed with it: still the dead process's lapsed claim, free to take.
        #expect(try await b.claim(Self.keys(["k2"]), since: 0) == [true])
    }

    @Test func aProcessWhoseLeaseRanOutCannotCompleteAKeyAnotherFinished() async throws {
        let db = try await Self.database()
        defer { db.close() }
        let a = PostgresDedup(holder: try await Self.holder(db, "a"), scope: "dedup")
        let b = PostgresDedup(holder: try await Self.holder(db, "b"), scope: "dedup")
        #expect(try await a.claim(Self.keys(["k"]), since: 0) == [true])
        // a stalls past its lease; a retry of the event reaches b, which takes the key over and
        // finishes it.
        try PostgresSpoolTests.expire(a.holder)
        #expect(try await b.claim(Self.keys(["k"]), since: 0) == [true])
        try await b.complete(Self.keys(["k"]), at: 5)
        // a comes back and commits its copy of the work: refused, or the event counts twice.
        await #expect(throws: StoreError.self) { try await a.complete(Self.keys(["k"]), at: 6) }
        // b's commit written again (its answer was lost): accepted, nothing changes.
        try await b.complete(Self.keys(["k"]), at: 5)
        #expect(try await a.claim(Self.keys(["k"]), since: 0) == [false])
    }

    @Test func aCommitStartsWithTheLeaseAndFailsOnceItRanOut() async throws {
        let db = try await Self.database()
        defer { db.close() }
        let h = try await Self.holder(db, "a")
        let check: @Sendable () async throws -> Void = {
            try await db.client.withTransaction(logger: db.logger) { conn in try await h.checkLease(on: conn) }
        }
        try await check()
        try PostgresSpoolTests.expire(h)
        let error = await #expect(throws: (any Error).self) { try await check() }
        #expect(PostgresDatabase.describe(error!).contains("lease ran out"))
    }

    @Test func aLeaseThatRanOutIsNotRenewed() async throws {
        let db = try await Self.database()
        defer { db.close() }
        let h = try await Self.holder(db, "a")
        try await h.renew()
        try PostgresSpoolTests.expire(h)
        // Others may have taken its claims meanwhile: coming back would make them look alive.
        let error = await #expect(throws: StoreError.self) { try await h.renew() }
        #expect("\(error!)".contains("lease ran out"))
    }

    @Test func purgeForgetsOnlyDoneKeysOlderThanTheWindow() async throws {
        let db = try await Self.database()
        defer { db.close() }
        let a = PostgresDedup(holder: try await Self.holder(db, "a"), scope: "dedup")
        _ = try await a.claim(Self.keys(["old", "new", "inflight"]), since: 0)
        try await a.complete(Self.keys(["old"]), at: 10)
        try await a.complete(Self.keys(["new"]), at: 20)
        #expect(try await a.purge(before: 15) == 1)
        let b = PostgresDedup(holder: try await Self.holder(db, "b"), scope: "dedup")
        #expect(try await b.claim(Self.keys(["old", "new", "inflight"]), since: 0) == [true, false, false])
    }
}
