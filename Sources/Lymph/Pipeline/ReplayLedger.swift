import Crypto
import GRDB
import Foundation
import Synchronization

/// Remembers which resume points were replayed to the end, so a record replayed twice (a kept
/// `.replay-` file replayed again, a replay interrupted and run again, the same record in two
/// inputs) does the work of its stages once.
///
/// A record is known by its stage, its first source position and the event's bytes: one that
/// fails again is written with all three unchanged, so it stays replayable until it completes.
/// The key rides on the event as a claim under index 0 (parse's, which no dedup stage uses):
/// it is committed, in the runner's transaction, only when the event and everything it fanned
/// out to has left the pipeline without a dead letter, like a dedup key.
final class ReplayLedger: Sendable {
    static let claimIndex = 0
    /// How long a completed replay is remembered.
    static let memory: Double = 90 * 86_400
    static let reason = Reason.alreadyReplayed.rawValue

    let store: StateStore?
    private let state = Mutex<State>(State())

    struct State {
        /// Keys of replayed events still inside the pipeline, or finished and not yet committed.
        var pending: Set<[UInt8]> = []
        var waiting: [[UInt8]] = []
        var writing: [[UInt8]] = []
        /// Without a store: completed keys, for this run.
        var completed: Set<[UInt8]> = []
    }

    init(store: StateStore?, now: Double) throws(StoreError) {
        self.store = store
        // On PostgreSQL old replays are purged when the state opens (`PostgresState.open`).
        if store?.postgres == nil { try store?.replayedPurge(before: now - Self.memory) }
    }

    static func key(stage: String, source: SourcePosition, event: ArraySlice<UInt8>) -> [UInt8] {
        var hash = SHA256()
        hash.update(data: Array(stage.utf8) + [0] + Array(source.file.utf8) + [0] + Array(String(source.line).utf8) + [0])
        hash.update(data: Array(event))
        return Array(hash.finalize().prefix(16))
    }

    /// For each key, whether its record was already replayed (or is being replayed right now);
    /// the others are held until their events leave the pipeline.
    func begin(_ keys: [[UInt8]]) async throws(StoreError) -> [Bool] {
        let stored: Set<[UInt8]>
        if let postgres = store?.postgres {
            stored = try await postgres.replayed(keys)
        } else {
            stored = try store?.replayed(keys) ?? []
        }
        return state.withLock { s in
            keys.map { key in
                if stored.contains(key) || s.completed.contains(key) || s.pending.contains(key) { return true }
                s.pending.insert(key)
                return false
            }
        }
    }

    func batchDidFinish(_ batch: FinishedBatch) {
        let failed = batch.failed.filter { $0.stageIndex == Self.claimIndex }.map(\.key)
        let done = batch.completed.filter { $0.stageIndex == Self.claimIndex }.map(\.key)
        if failed.isEmpty && done.isEmpty { return }
        state.withLock { s in
            for k in failed { s.pending.remove(k) }
            s.waiting.append(contentsOf: done)
        }
    }

    /// The completed records' keys, for the runner's transaction.
    func takePending() -> PendingWrite? {
        let keys = state.withLock { s in
            s.writing = s.waiting
            s.waiting = []
            return s.writing
        }
        if keys.isEmpty { return nil }
        let at = Timestamp.now()
        if let postgres = store?.postgres {
            return PendingWrite(postgres: { conn in try await postgres.replayedInsert(conn, keys: keys, at: at) })
        }
        return PendingWrite { db in try StateStore.replayedInsert(db, keys: keys, at: at) }
    }

    func pendingNotWritten() {
        state.withLock { s in
            s.waiting = s.writing + s.waiting
            s.writing = []
        }
    }

    func pendingWritten() {
        state.withLock { s in
            // Without a store nothing was taken: everything waiting is done now.
            let keys = store == nil ? s.waiting : s.writing
            if store == nil { s.waiting = [] }
            s.writing = []
            for k in keys {
                s.pending.remove(k)
                if store == nil { s.completed.insert(k) }
            }
        }
    }
}
