import GRDB
import Synchronization

/// Drops events whose key was already seen within `window`.
///
/// The order of events matters, so batches pass through one at a time. A key is committed to
/// the store only once its event has left the pipeline (`batchDidFinish`): until then it is a
/// pending claim held in memory, which still catches duplicates later in the same run. An event
/// that goes to the dead letters releases its claim uncommitted, so replaying the dead-letter
/// file (or a sender's retry) processes it again.
///
/// Finished keys are committed with the runner's grouped transaction (`takePending`): until
/// then they stay in the pending set, so duplicates are still caught; a crash in between only
/// means those events are processed again.
public final class DedupStage: Stage {

    /// Where each event's key is.
    public let key: DedupKey
    /// A header key's name, as bytes.
    private let headerName: [UInt8]
    /// Seconds a key is remembered: an event whose key was seen that recently is dropped.
    public let window: Double
    let scope: String
    let scopeID: Int64
    let stageIndex: Int
    let backing: Backing
    /// With a store: which keys it certainly does not hold, so a new key costs no lookup, and
    /// where the others may be.
    let generations: DedupGenerations?
    private let pending = Mutex<PendingKeys>(PendingKeys())

    /// Keys claimed by events in the pipeline or finished and not yet committed: a later event
    /// with one of them is a duplicate.
    struct PendingKeys {
        /// Claimed keys not in the transaction in flight.
        var claimed: Set<KeyBytes> = []
        /// The transaction's keys, when it took every claimed key (`takePending`): let go of all
        /// at once when it commits, rather than removed one by one, each removal hashing the
        /// keys after it in the table again.
        var writing: Set<KeyBytes> = []
        /// Whether a replayed event held a key (`hold`): a key held twice is waiting twice, so
        /// the count of waiting keys no longer tells that they are all the claimed ones.
        var held = false
    }

    /// Where finished keys are remembered.
    public enum Backing: Sendable {
        /// Keys live in the state store and survive the run.
        case store(StateStore)
        /// Keys live in memory for this run only.
        case memory
        /// Keys live in PostgreSQL, one key space for every instance: a key is claimed there
        /// when its event is first seen, so two instances never both process it.
        case postgres(PostgresDedup)
    }

    /// Keys remembered in memory when `backing` is `.memory`, with when; older than `window`
    /// they are forgotten, as in the store.
    private let memorySeen = Mutex<[KeyBytes: Double]>([:])
    /// Finished keys waiting for the next transaction, and those being written in it.
    /// `taken`: a transaction took `writing` (without a store nothing is taken, and what waits is
    /// done at once); while it is in flight, later keys wait for the next one.
    private let unflushed = Mutex<(waiting: [[UInt8]], writing: [[UInt8]], taken: Bool)>(([], [], false))
    /// PostgreSQL: claims of dead-lettered events, released in the next transaction (and
    /// those being released in it); a retry of the event before then takes its claim back.
    private let releases = Mutex<(waiting: Set<KeyBytes>, writing: [[UInt8]])>(([], []))
    /// When keys older than the window are purged, besides at start: SQLite, in the runner's
    /// transaction (`GenerationPurgeSchedule`); PostgreSQL, before a claim.
    private let purges: GenerationPurgeSchedule

    /// A stage whose keys are filed under `scope`; with a store, keys older than `window` at `now`
    /// are purged first.
    public init(key: DedupKey, window: Double, scope: String, stageIndex: Int, backing: Backing, now: Double) throws(StoreError) {
        self.key = key
        if case .header(let name) = key { headerName = Array(name.utf8) } else { headerName = [] }
        self.window = window
        self.scope = scope
        self.stageIndex = stageIndex
        self.backing = backing
        if case .store(let store) = backing {
            scopeID = try store.dedupScope(scope)
            try store.dedupPurge(scope: scopeID, before: now - window)
            purges = GenerationPurgeSchedule(lastPurge: now)
            generations = try store.dedupGenerations(scope: scopeID)
        } else {
            purges = GenerationPurgeSchedule()
            // PostgreSQL: every instance's keys are in one table; no filter in front of it (it
            // would miss the other instances' keys).
            scopeID = 0
            generations = nil
        }
    }

    /// False: which of two duplicates goes on depends on the order batches come in.
    public var runsConcurrently: Bool { false }

    /// Claims each event's key, drops an event whose key was seen within the window or is claimed
    /// already, and rejects one whose key is missing or neither a string nor a number.
    public func process(_ events: [Event], context: StageContext) async throws -> [StageOutcome] {
        var outcomes = [StageOutcome](repeating: .pass, count: events.count)
        var keys: [[UInt8]] = []
        var positions: [Int] = []
        keys.reserveCapacity(events.count)
        for (i, event) in events.enumerated() {
            if let bytes = keyBytes(event, failure: &outcomes[i]) {
                keys.append(Array(bytes))
                positions.append(i)
            }
        }
        let seen: [Bool]
        // With a store: which keys its filters may hold (nil: every key may be anywhere).
        var mayBeKnown: [Bool]? = nil
        switch backing {
        case .store(let store):
            (seen, mayBeKnown) = try seenInStore(store, keys: keys, since: context.now - window)
        case .memory:
            let since = context.now - window
            seen = memorySeen.withLock { seen in keys.map { (seen[KeyBytes($0)] ?? -.infinity) >= since } }
        case .postgres(let shared):
            if purges.due(at: context.now) {
                try await shared.purge(before: context.now - window)
            }
            let won = try await shared.claim(keys, since: context.now - window)
            // A key this process claimed for an event that went to the dead letters is still its
            // own until the release commits: a retry of that event takes it back, and it is not
            // released. (The runner waits for each PostgreSQL commit, so no release is being
            // written while a retry claims.)
            releases.withLock { r in
                for (key, won) in zip(keys, won) where won { r.waiting.remove(KeyBytes(key)) }
            }
            seen = won.map { !$0 }
        }
        pending.withLock { pending in
            for (n, i) in positions.enumerated() {
                // The insert says whether it was claimed already. A key of the transaction in
                // flight went into the filters when it was taken (`takePending`): one the
                // filters certainly lack is not among them, nearly every key.
                let key = KeyBytes(keys[n])
                let inTransaction = !pending.writing.isEmpty && mayBeKnown?[n] != false && pending.writing.contains(key)
                if seen[n] || inTransaction || !pending.claimed.insert(key).inserted {
                    outcomes[i] = .drop(.duplicate)
                } else {
                    outcomes[i] = .claim(DedupClaim(stageIndex: stageIndex, key: keys[n]))
                }
            }
        }
        return outcomes
    }

    /// The event's key; nil, with `failure` set, when it has none.
    private func keyBytes(_ event: Event, failure: inout StageOutcome) -> ArraySlice<UInt8>? {
        switch key {
        case .path(let path):
            guard let value = event.value(at: path) else {
                failure = .fail(.missingKey, message: "dedup key '\(key)' is missing from the event")
                return nil
            }
            switch value.kind {
            case .string: return value.stringBytes ?? []
            case .number: return Self.numberKey(value.rawBytes)[...]
            default:
                failure = .fail(.invalidKey, message: "dedup key '\(key)' must be a string or a number")
                return nil
            }
        case .header:
            guard let value = event.delivery?.headerBytes(headerName), !value.isEmpty else {
                failure = .fail(
                    .missingKey,
                    message: "dedup key '\(key)': the event did not arrive as a delivery with that header (or it is empty)")
                return nil
            }
            return value
        }
    }

    /// A number's key: 0xFF (a byte no UTF-8 string holds, so the number 1 is not the string
    /// "1"), then the number written one way, so that `1`, `1.0`, `1e0` and `10E-1` are one key:
    /// an integer by its digits (exact past 2^53), any other finite number as Swift writes the
    /// double it is.
    static func numberKey(_ raw: ArraySlice<UInt8>) -> [UInt8] {
        [0xFF] + Array(NumberText.canonical(String(decoding: raw, as: UTF8.self)).utf8)
    }

    /// Which keys the store holds since `since`: only those the filters may hold are looked up,
    /// in the generations that may hold them; and for each key whether the filters may hold it
    /// (nil without filters).
    private func seenInStore(_ store: StateStore, keys: [[UInt8]], since: Double) throws(StoreError) -> (seen: [Bool], mayBeKnown: [Bool]?) {
        var seen = [Bool](repeating: false, count: keys.count)
        guard let generations else { return (seen, nil) }
        let candidates = generations.lazyCandidates(keys.map(generations.fingerprinter.fingerprint))
        let mayBeKnown = candidates.map { !$0.isCertainlyNew }
        let asked = candidates.indices.filter { mayBeKnown[$0] }
        if asked.isEmpty { return (seen, mayBeKnown) }
        let found = try store.dedupSeen(scope: scopeID, keys: asked.map { keys[$0] }, generations: asked.map { candidates[$0] }, since: since)
        for (n, i) in asked.enumerated() { seen[i] = found[n] }
        return (seen, mayBeKnown)
    }

    /// A replayed event that resumes past this stage takes back `key`, claimed in its first run
    /// and released when the event became a dead letter; held until the event leaves the
    /// pipeline, then committed or released like any claim. False, holding nothing, when an
    /// event with the same key was committed or is in the pipeline since (the sender's retry of
    /// the webhook, say): that event did the work, and the record is its duplicate.
    func reclaim(_ key: [UInt8], now: Double) async throws -> Bool {
        let since = now - window
        switch backing {
        case .store(let store):
            if try seenInStore(store, keys: [key], since: since).seen.first == true { return false }
        case .memory:
            if memorySeen.withLock({ ($0[KeyBytes(key)] ?? -.infinity) >= since }) { return false }
        case .postgres(let shared):
            guard try await shared.claim([key], since: since).first == true else { return false }
            releases.withLock { _ = $0.waiting.remove(KeyBytes(key)) }
        }
        return pending.withLock { p in
            let k = KeyBytes(key)
            if !p.writing.isEmpty && p.writing.contains(k) { return false }
            guard p.claimed.insert(k).inserted else { return false }
            p.held = true
            return true
        }
    }

    /// Releases the claims of dead-lettered events and sets the completed ones aside to be
    /// remembered.
    public func batchDidFinish(_ batch: FinishedBatch) throws {
        let failed = batch.failed.filter { $0.stageIndex == stageIndex }.map(\.key)
        if !failed.isEmpty {
            pending.withLock { pending in for k in failed { pending.claimed.remove(KeyBytes(k)) } }
            if case .postgres = backing { releases.withLock { r in for k in failed { r.waiting.insert(KeyBytes(k)) } } }
        }
        let done = batch.completed.filter { $0.stageIndex == stageIndex }.map(\.key)
        if !done.isEmpty { unflushed.withLock { $0.waiting.append(contentsOf: done) } }
    }

    /// Takes the completed keys, to be written to the store (with `.store` backing) stamped
    /// with the current time.
    public func takePending() throws -> PendingWrite? {
        let keys = unflushed.withLock { u in
            u.writing = u.waiting
            u.waiting = []
            u.taken = true
            return u.writing
        }
        pending.withLock { p in
            // Every claimed key is finished and waiting, as when the runner commits between
            // batches: the transaction takes the whole set. Keys are distinct unless held
            // twice, so equal counts mean the same keys.
            if p.writing.isEmpty && !p.held && p.claimed.count == keys.count { swap(&p.claimed, &p.writing) }
        }
        if case .postgres(let shared) = backing {
            let released = releases.withLock { r in
                r.writing = r.waiting.map(\.bytes)
                r.waiting = []
                return r.writing
            }
            if keys.isEmpty && released.isEmpty { return nil }
            let at = Timestamp.now()
            return PendingWrite(postgres: { conn in
                try await shared.complete(keys, at: at, on: conn)
                try await shared.release(released, on: conn)
            })
        }
        guard case .store = backing, let generations, !keys.isEmpty else { return nil }
        let (scope, at, window) = (scopeID, Timestamp.now(), window)
        // Into the filters before the commit (see `DedupGenerations.assign`).
        let fingerprints = keys.map(generations.fingerprinter.fingerprint)
        let generation = generations.assign(fingerprints, at: at)
        let purge = purges.due(at: at)
        let purges = purges
        return PendingWrite { db in
            try StateStore.dedupInsert(db, scope: scope, generation: generation, keys: keys, fingerprints: fingerprints, at: at)
            // Never the generation keys are being written to: its filter must stay. Transactions
            // commit in order, so every older generation's keys are in the store by now, and
            // one with a key in the window is not old.
            if purge {
                let gone = try StateStore.dedupPurge(db, scope: scope, before: at - window, below: generation).generations
                purges.deleted(gone)
            }
        }
    }

    /// Keeps the keys of the rolled-back transaction for the next one.
    public func pendingNotWritten() {
        purges.rolledBack()
        pending.withLock { p in
            p.claimed.formUnion(p.writing)
            p.writing.removeAll(keepingCapacity: true)
        }
        releases.withLock { r in
            for k in r.writing { r.waiting.insert(KeyBytes(k)) }
            r.writing = []
        }
        unflushed.withLock { u in
            u.waiting = u.writing + u.waiting
            u.writing = []
            u.taken = false
        }
    }

    /// Remembers the written keys (in memory with `.memory` backing) and releases their claims.
    public func pendingWritten() {
        releases.withLock { $0.writing = [] }
        purges.committed(forgettingIn: generations)
        let keys = unflushed.withLock { u in
            // Without a store nothing was taken: everything waiting is done now. With one, only
            // what the transaction took: what came since waits for the next.
            let keys = u.taken ? u.writing : u.waiting
            if !u.taken { u.waiting = [] }
            u.writing = []
            u.taken = false
            return keys
        }
        if keys.isEmpty { return }
        if case .memory = backing {
            let now = Timestamp.now()
            memorySeen.withLock { seen in
                for k in keys { seen[KeyBytes(k)] = now }
                if seen.count > 2 * keys.count + 100_000 { seen = seen.filter { $0.value >= now - window } }
            }
        }
        pending.withLock { p in
            if !p.writing.isEmpty {
                // The transaction took every claimed key (`takePending`): these are they.
                p.writing.removeAll(keepingCapacity: true)
            } else if !p.held && p.claimed.count == keys.count {
                // Every claimed key is one of these (distinct keys, as in `takePending`), as when
                // nothing was taken, without a store: let go of them all at once.
                p.claimed.removeAll(keepingCapacity: true)
            } else {
                for k in keys { p.claimed.remove(KeyBytes(k)) }
            }
            // No key is claimed, so none is held twice any more.
            if p.claimed.isEmpty { p.held = false }
        }
    }
}

/// A dedup key in a set or a dictionary, hashed as one block of bytes (an array hashes element
/// by element).
struct KeyBytes: Hashable {
    let bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}
