import Logging
import Lymph
import ServiceLifecycle
import Synchronization

/// Keeps this instance's lane of the PostgreSQL spool, and takes over the lanes of instances
/// that died (their lease ran out) or left with entries in them: every quarter of the lease it
/// claims lanes (`PostgresSpool.claimLanes`, which renews the lease) and moves a taken lane's
/// entries to the end of this one (`PostgresSpool.adopt`), then wakes the worker.
///
/// The worker starts only once this process holds its own lane (`waitForOwnLane`): after a
/// `kill -9`, the old process's lease has to run out first, and its commits are refused from
/// then on.
public final class PostgresLaneKeeper: Service, Sendable {
    public let spool: PostgresSpool
    let doorbell = Doorbell()
    let logger: Logger
    let every: Duration
    private let ownLane = Atomic<Bool>(false)
    /// How far the own lane was done when last claimed.
    private let ownDoneThrough = Atomic<Int64>(0)
    private let failure = Mutex<String?>(nil)
    /// Entries moved here from other instances' lanes.
    public let adopted = Atomic<Int>(0)

    public init(spool: PostgresSpool, logger: Logger) {
        self.spool = spool
        self.logger = logger
        every = spool.holder.lease / 4
    }

    /// Claims lanes once, moving taken ones' entries here; true when this process holds its own.
    @discardableResult
    func claimOnce() async -> Bool {
        (try? await claimOrLose()) ?? false
    }

    /// `claimOnce`, throwing when this process's lease is lost for good.
    func claimOrLose() async throws -> Bool {
        do {
            let claims = try await spool.claimLanes()
            var own = false
            for claim in claims {
                if claim.lane == spool.lane {
                    own = true
                    ownDoneThrough.store(claim.doneThrough, ordering: .relaxed)
                    continue
                }
                let moved = try await spool.adopt(claim)
                if moved > 0 {
                    adopted.add(moved, ordering: .relaxed)
                    logger.notice(
                        "took over \(moved) spooled webhooks of instance '\(claim.lane)' (its lease ran out or it left them): they are processed here",
                        metadata: ["lane": "\(claim.lane)"])
                    doorbell.ring()
                }
            }
            ownLane.store(own, ordering: .relaxed)
            failure.withLock { $0 = nil }
            return own
        } catch  where error.isLeaseLost {
            failure.withLock { $0 = "\(error)" }
            throw error
        } catch {
            failure.withLock { $0 = "\(error)" }
            logger.error("cannot claim spool lanes: \(error)")
            return false
        }
    }

    /// Waits until this process holds its own lane (the old holder's lease, after a crash), and
    /// returns how far the lane is done: entries through there were done (or taken over by
    /// another instance) before, whatever this process's handoff holds.
    func waitForOwnLane() async throws -> Int64 {
        let started = ContinuousClock.now
        var said = false
        while !(await claimOnce()) {
            if !said {
                logger.notice("waiting for this instance's spool lane: a previous process of instance '\(spool.lane)' held it, and its lease has to run out")
                said = true
            }
            if ContinuousClock.now - started > spool.holder.lease * 2 {
                // Every lease but a live one has run out by now: another running process has this
                // instance's name.
                let message =
                    "spool lane '\(spool.lane)' is held by another live process: two instances are named '\(spool.lane)' (give each its own --instance); this one's worker does not start"
                failure.withLock { $0 = message }
                logger.error("\(message)")
            }
            try await Task.sleep(for: .seconds(1))
        }
        return ownDoneThrough.load(ordering: .relaxed)
    }

    /// Why the lanes cannot be kept, or nil (for `/healthz`).
    var problem: String? {
        if let f = failure.withLock({ $0 }) { return "cannot claim spool lanes: \(f)" }
        return nil
    }

    /// Claims every quarter of the lease until shutdown. A lease lost for good (PostgreSQL out
    /// of reach for longer than it) ends the server (exit 3): others may have taken this
    /// process's work, and only a new process may take part again.
    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.every)
                if Task.isCancelled { return }
                _ = try await self.claimOrLose()
            }
        }
    }
}
