import Foundation
import Testing

@testable import Lymph

/// The dedup stage's claimed keys across its transactions: a key is claimed from its event's
/// first sight until its commit lands, whichever way the stage lets go of its keys.
@Suite("Dedup pending keys")
struct DedupPendingTests {
    let store: StateStore
    let stage: DedupStage
    let context = Fixture.context(now: Timestamp.now())

    init() throws {
        store = try StateStore.open(path: ":memory:")
        stage = try DedupKeyFilterTests.stage(store)
    }

    /// Processes one event per id; returns the outcomes' labels and the claims made.
    func process(_ ids: [String]) async throws -> (labels: [String], claims: [DedupClaim]) {
        let outcomes = try await stage.process(ids.map { Fixture.event(id: $0) }, context: context)
        let claims = outcomes.compactMap { outcome -> DedupClaim? in
            if case .claim(let c) = outcome { return c }
            return nil
        }
        return (outcomes.map(\.label), claims)
    }

    func finish(_ completed: [DedupClaim], failed: [DedupClaim] = []) throws {
        try stage.batchDidFinish(FinishedBatch(completed: completed, failed: failed, now: Timestamp.now()))
    }

    /// Takes the pending write and commits it, as the runner's transaction does.
    func commit() throws {
        let write = try stage.takePending()
        try store.write { db in try write?.write(db) }
        stage.pendingWritten()
    }

    @Test("a key in the transaction in flight is still claimed, and after its commit the store has it; a key claimed meanwhile waits for the next")
    func inFlightTransaction() async throws {
        let first = try await process(["evt_a", "evt_b"])
        try finish(first.claims)
        let write = try stage.takePending()
        // While the transaction is written, later batches go on.
        #expect(try await process(["evt_a", "evt_c"]).labels == ["drop(duplicate)", "claim"])
        let during = try await process(["evt_d"])
        try finish(during.claims)
        try store.write { db in try write?.write(db) }
        stage.pendingWritten()
        // a and b are committed; c's event has not finished; d waits for the next transaction.
        #expect(try await process(["evt_a", "evt_b", "evt_c", "evt_d", "evt_e"]).labels == Array(repeating: "drop(duplicate)", count: 4) + ["claim"])
        #expect(try store.dedupSeen(scope: stage.scopeID, keys: [Array("evt_d".utf8)], generations: [[0]], since: 0) == [false])
        try commit()
        #expect(try store.dedupSeen(scope: stage.scopeID, keys: [Array("evt_d".utf8)], generations: [[0]], since: 0) == [true])
    }

    @Test("a rolled-back transaction's keys stay claimed and go into the next one")
    func rolledBack() async throws {
        let first = try await process(["evt_a"])
        try finish(first.claims)
        _ = try stage.takePending()
        stage.pendingNotWritten()
        #expect(try await process(["evt_a"]).labels == ["drop(duplicate)"])
        try commit()
        #expect(try store.dedupSeen(scope: stage.scopeID, keys: [Array("evt_a".utf8)], generations: [[0]], since: 0) == [true])
        #expect(try await process(["evt_a"]).labels == ["drop(duplicate)"])
    }

    @Test("a claim whose event is still in the pipeline when a transaction is taken stays claimed after that commit")
    func unfinishedClaim() async throws {
        let batch = try await process(["evt_a", "evt_b"])
        // Only a's event has finished: b's is still on its way.
        try finish([batch.claims[0]])
        try commit()
        #expect(try await process(["evt_b"]).labels == ["drop(duplicate)"])
        #expect(try store.dedupSeen(scope: stage.scopeID, keys: [Array("evt_b".utf8)], generations: [[0]], since: 0) == [false])
        // Its event goes to the dead letters: the key is let go of uncommitted, and a retry is new.
        try finish([], failed: [batch.claims[1]])
        try commit()
        #expect(try await process(["evt_b"]).labels == ["claim"])
    }

    @Test(
        "a replayed event takes its key back; a second record with that key is its duplicate; committed once it finishes, a claim still on its way stays claimed beside it"
    )
    func reclaimedOnce() async throws {
        let key = Array("evt_r".utf8)
        let now = Timestamp.now()
        #expect(try await stage.reclaim(key, now: now))
        #expect(try await stage.reclaim(key, now: now) == false)
        let claim = DedupClaim(stageIndex: 1, key: key)
        // x's event is still on its way when the replayed event finishes with its claim.
        _ = try await process(["evt_x"])
        try finish([claim])
        try commit()
        #expect(try store.dedupSeen(scope: stage.scopeID, keys: [key], generations: [[0]], since: 0) == [true])
        #expect(try await process(["evt_r", "evt_x"]).labels == ["drop(duplicate)", "drop(duplicate)"])
        #expect(try store.dedupSeen(scope: stage.scopeID, keys: [Array("evt_x".utf8)], generations: [[0]], since: 0) == [false])
        // Committed since: a record replayed now is a duplicate too.
        #expect(try await stage.reclaim(key, now: now) == false)
    }
}

@Suite("Dedup keys of numbers")
struct DedupNumberKeyTests {
    @Test("the number 1 and the string \"1\" are two keys; 1, 1.0, 1e0 and 10E-1 are one; integers past 2^53 stay apart")
    func numbersAndStrings() async throws {
        let store = try StateStore.open(path: ":memory:")
        let stage = try DedupStage(
            key: .path(try JSONPath(parsing: "data.k")), window: 7 * 86_400, scope: "numbers", stageIndex: 1, backing: .store(store),
            now: Timestamp.now())
        let values = [#""1""#, "1", "1.0", "1e0", "10E-1", #""1.0""#, "9007199254740993", "9007199254740992", "9007199254740993.00", "-0", "0"]
        let events = values.enumerated().map { Fixture.event(id: "evt_\($0.offset)", data: #"{"k":\#($0.element)}"#) }
        let labels = try await stage.process(events, context: Fixture.context(now: Timestamp.now())).map(\.label)
        #expect(
            labels == [
                "claim", "claim", "drop(duplicate)", "drop(duplicate)", "drop(duplicate)", "claim", "claim", "claim", "drop(duplicate)", "claim",
                "drop(duplicate)",
            ])
    }
}
