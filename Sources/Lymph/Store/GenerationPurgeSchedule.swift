import Synchronization

/// When a scope's old generations of keys are purged: at most every `interval`, in the runner's
/// transaction, so a process that runs for months (`lymph serve`) holds about a window of keys
/// in its store and filters, not only after a start. The generations a transaction's purge
/// deleted keep their filters until it commits: a rolled-back purge deleted nothing, and the
/// next transaction purges instead. Shared by the dedup stage and the ticket book's applied
/// source events.
final class GenerationPurgeSchedule: Sendable {
    /// How often a purge runs.
    static let interval = 3_600.0

    private let state: Mutex<(last: Double?, deleted: Set<Int64>)>

    /// A schedule whose last purge was at `lastPurge` (nil: the first transaction purges).
    init(lastPurge: Double? = nil) {
        state = Mutex((lastPurge, []))
    }

    /// True, and noted as the last purge, when the last was `interval` or more before `now`.
    func due(at now: Double) -> Bool {
        state.withLock { s in
            if let last = s.last, now - last < Self.interval { return false }
            s.last = now
            return true
        }
    }

    /// From the commit thread: the generations the transaction's purge deleted.
    func deleted(_ generations: Set<Int64>) {
        state.withLock { $0.deleted = generations }
    }

    /// The transaction rolled back, and its purge with it: the next one purges.
    func rolledBack() {
        state.withLock { $0 = (nil, []) }
    }

    /// The transaction committed: the generations its purge deleted leave `generations`' filters.
    func committed(forgettingIn generations: DedupGenerations?) {
        let gone = state.withLock { s in
            defer { s.deleted = [] }
            return s.deleted
        }
        if !gone.isEmpty { generations?.forget(generations: gone) }
    }
}
