import Foundation
import Lymph
import NIOCore
import Synchronization

/// Appends accepted webhooks to the spool with group commit: requests that arrive while a
/// commit is on disk wait together and go in the next transaction, so a burst of concurrent
/// requests costs one fsync, not one each. A backend may ask for a least time between appends
/// (`SpoolBackend.appendInterval`, PostgreSQL's): while webhooks keep coming, the writer waits
/// out the rest of it before the next append, so the group grows.
///
/// Commits run on a thread of their own, so a slow disk never blocks the event loops or Swift's
/// cooperative threads. Each caller hears back only after its entry is durable (the backend's
/// `append` returned): that is what makes a 202 safe to send. The writer is the backend's only
/// writer: the worker's deletes come to it as a `SpoolEntryDeleter` and ride in its next commit.
///
/// A caller waits at most `deadline`: a watchdog answers the ones a stalled commit holds longer
/// with `SpoolTimeout`. One timer serves all callers, rather than a timer task per request,
/// which would add two tasks and a timer-heap entry to every webhook's path.
public final class SpoolWriter: SpoolEntryDeleter, Sendable {
    struct Waiter {
        let since: ContinuousClock.Instant
        let completion: Completion
        /// The event loop the caller runs on, if it said: its completions run there, all of a
        /// commit's in one job.
        let loop: (any EventLoop)?
    }

    /// Called once per append: the entry's sequence number, or why it was not stored.
    public typealias Completion = @Sendable (Result<Int64, any Error>) -> Void

    struct State {
        /// Entries not yet taken by a commit, oldest first.
        var queue: [(ticket: UInt64, item: [UInt8], body: JSONDocument?)] = []
        /// Callers not yet answered, by ticket (queued or being committed).
        var waiters: [UInt64: Waiter] = [:]
        var nextTicket: UInt64 = 0
        /// Entries through this sequence number are to be deleted (their work is committed).
        var deleteThrough: Int64?
        var closed = false
        /// The writer is waiting for work.
        var idle = false
    }

    let doorbell: Doorbell
    /// Committed entries go here too, for the worker to take from memory.
    let handoff: SpoolHandoff?
    let deadline: Duration
    let state = Mutex(State())
    let wakeup = DispatchSemaphore(value: 0)
    /// Signalled when the writer thread has ended.
    let ended = DispatchSemaphore(value: 0)
    /// Signalled on close, to stop the watchdog thread.
    let stopWatchdog = DispatchSemaphore(value: 0)
    /// Most entries in one transaction.
    static let maxGroup = 4096
    /// Most entries one transaction deletes (by sequence number). The worker asks to delete
    /// what one state commit finished, a second's webhooks or more; deleted in one go, that
    /// would hold up the appends it rides with, and their 202s, for as long as it takes.
    static let maxDeletes: Int64 = 1024
    /// Why the last append failed (a full disk, say), until one succeeds: webhooks get 503
    /// meanwhile, and `/healthz` says why.
    let failure = Mutex<String?>(nil)
    public var problem: String? { failure.withLock { $0 } }
    func clearProblem() { failure.withLock { $0 = nil } }
    /// Entries committed since start.
    let appended = Atomic<Int>(0)
    /// The sequence number of this writer's first committed entry (0 before any).
    let firstSeq = Atomic<Int64>(0)
    /// Called on the writer's thread after each transaction commits.
    let onCommit: @Sendable () -> Void
    /// Called with the number of callers the watchdog has just answered with `SpoolTimeout`.
    let onTimeout: @Sendable (Int) -> Void

    /// Starts the writer's thread, which alone writes `backend` from now on (a SQLite one
    /// opened with `.full` durability). Committed entries are offered to `handoff` and `doorbell`
    /// is rung after each commit.
    public init(
        backend: some SpoolBackend, doorbell: Doorbell, handoff: SpoolHandoff? = nil, deadline: Duration = .seconds(3),
        onCommit: @escaping @Sendable () -> Void = {}, onTimeout: @escaping @Sendable (Int) -> Void = { _ in }
    ) {
        self.onCommit = onCommit
        self.onTimeout = onTimeout
        self.doorbell = doorbell
        self.handoff = handoff
        self.deadline = deadline
        NamedThread.start("lymph-spool") { [self] in
            loop(backend)
            ended.signal()
        }
        let tick = max(deadline.wholeMilliseconds / 8, 10)
        NamedThread.start("lymph-spool-dog") { [self] in
            while stopWatchdog.wait(timeout: .now() + .milliseconds(tick)) == .timedOut { expire() }
        }
    }

    /// Deletes entries through `seq` in the next commit (with appends, when there are any).
    /// Returns at once; a failed delete is retried with the next commit.
    public func deleteEntries(through seq: Int64) {
        let wake = state.withLock { s in
            s.deleteThrough = max(s.deleteThrough ?? seq, seq)
            if s.idle { s.idle = false; return true }
            return false
        }
        if wake { wakeup.signal() }
    }

    /// Stores `item` durably and returns its sequence number; `SpoolTimeout` past the deadline
    /// (the entry may still be committed later, and is then processed).
    public func append(_ item: [UInt8], resumeOn loop: (any EventLoop)? = nil) async throws -> Int64 {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Int64, any Error>) in
            append(item, on: loop) { c.resume(with: $0) }
        }
    }

    /// Stores `item` durably, then calls `completion` with its sequence number, or with
    /// `SpoolTimeout` past the deadline, or with the store's error. Returns at once.
    ///
    /// With `loop`, `completion` runs on that event loop, and every completion of a commit for
    /// that loop runs in one job: calling each from the writer's thread would take the loop's
    /// task lock from outside once per request, on the thread every commit waits for.
    /// Without, it runs on the writer's or the watchdog's thread.
    ///
    /// `body`: the webhook's body as the server parsed it, handed to the worker with the entry
    /// (see `PreparedDelivery.body`); nil when it is not exactly what the entry's body holds.
    public func append(_ item: [UInt8], body: JSONDocument? = nil, on loop: (any EventLoop)?, completion: @escaping Completion) {
        enum Outcome { case closed, wake, queued }
        let now = ContinuousClock.now
        let outcome: Outcome = state.withLock { s in
            if s.closed { return .closed }
            let ticket = s.nextTicket
            s.nextTicket += 1
            s.queue.append((ticket, item, body))
            s.waiters[ticket] = Waiter(since: now, completion: completion, loop: loop)
            if s.idle { s.idle = false; return .wake }
            return .queued
        }
        switch outcome {
        case .closed: Self.complete([(Waiter(since: now, completion: completion, loop: loop), .failure(SpoolClosed()))])
        case .wake: wakeup.signal()
        case .queued: break
        }
    }

    /// Commits what is queued (appends and deletes), then stops the thread, waiting up to
    /// `timeout` for that. Later appends fail.
    public func close(timeout: Duration = .seconds(10)) {
        let wake = state.withLock { s in
            s.closed = true
            if s.idle { s.idle = false; return true }
            return false
        }
        if wake { wakeup.signal() }
        stopWatchdog.signal()
        // Signalled again for any later close.
        if ended.wait(timeout: .now() + .milliseconds(timeout.wholeMilliseconds)) == .success { ended.signal() }
    }

    struct SpoolClosed: Error, CustomStringConvertible {
        var description: String { "the spool is closed (shutting down)" }
    }

    /// Answers the callers that have waited past the deadline. Their entries still queued are
    /// dropped (the sender got 503 and retries): a stalled disk must not hold an ever-growing
    /// queue of bodies nobody waits for. Entries already in a commit may still land.
    private func expire() {
        let limit = ContinuousClock.now - deadline
        let late: [Waiter] = state.withLock { s in
            guard !s.waiters.isEmpty else { return [] }
            var late: [Waiter] = []
            var expired = Set<UInt64>()
            for (ticket, w) in s.waiters where w.since < limit {
                late.append(w)
                expired.insert(ticket)
            }
            for ticket in expired { s.waiters[ticket] = nil }
            if !expired.isEmpty { s.queue.removeAll { expired.contains($0.ticket) } }
            return late
        }
        guard !late.isEmpty else { return }
        onTimeout(late.count)
        let error = SpoolTimeout(deadline: deadline)
        Self.complete(late.map { ($0, .failure(error)) })
    }

    private func loop(_ backend: some SpoolBackend) {
        // A delete that failed: retried with the next commit, never in a loop of its own.
        var carriedDelete: Int64?
        // The rest of a delete that was too large for one transaction: the next one goes on with it.
        var unfinishedDelete: Int64?
        // Entries through here are deleted; found from the spool before the first delete.
        var deletedThrough: Int64?
        // When the last append started, for `SpoolBackend.appendInterval`.
        var lastAppend: ContinuousClock.Instant?
        let interval = backend.appendInterval
        while true {
            if let interval, let lastAppend {
                let wait = lastAppend + interval - ContinuousClock.now
                let gather = state.withLock { s in !s.closed && !s.queue.isEmpty && s.queue.count < Self.maxGroup }
                if gather && wait > .zero { usleep(UInt32(max(1, wait.wholeMicroseconds))) }
            }
            let (group, requested, closed): ([(ticket: UInt64, item: [UInt8], body: JSONDocument?)], Int64?, Bool) = state.withLock { s in
                let n = min(s.queue.count, Self.maxGroup)
                let group = Array(s.queue.prefix(n))
                s.queue.removeFirst(n)
                let requested = s.deleteThrough
                s.deleteThrough = nil
                if group.isEmpty && requested == nil && unfinishedDelete == nil && !s.closed { s.idle = true }
                return (group, requested, s.closed)
            }
            if group.isEmpty && requested == nil && unfinishedDelete == nil {
                if closed {
                    if let carriedDelete { _ = try? backend.delete(through: carriedDelete) }
                    return
                }
                wakeup.wait()
                continue
            }
            let target = [requested, unfinishedDelete, carriedDelete].compactMap { $0 }.max()
            carriedDelete = nil
            unfinishedDelete = nil
            var deleteThrough = target
            if let target {
                if deletedThrough == nil, let oldest = try? backend.oldestSeq() { deletedThrough = oldest - 1 }
                if let done = deletedThrough, target - done > Self.maxDeletes {
                    deleteThrough = done + Self.maxDeletes
                    unfinishedDelete = target
                }
            }
            func deleteFailed() {
                carriedDelete = target
                unfinishedDelete = nil
            }
            if group.isEmpty {
                if let deleteThrough {
                    if (try? backend.delete(through: deleteThrough)) == nil {
                        deleteFailed()
                    } else {
                        deletedThrough = deleteThrough
                        onCommit()
                    }
                }
                continue
            }
            let items = group.map(\.item)
            lastAppend = ContinuousClock.now
            var result: Result<[Int64], any Error>
            if let problem = backend.fileProblem() {
                // A 202 for an entry in a file no later start reads would be a promise broken.
                result = .failure(SpoolFileGone(message: problem))
            } else {
                result = Result { try backend.append(items, receivedAt: Timestamp.now(), deleteThrough: deleteThrough) }
                // Gone while the transaction ran: no 202 either (the worker may still process
                // the entries from the open file, as it would a sender's retry).
                if case .success = result, let problem = backend.fileProblem() { result = .failure(SpoolFileGone(message: problem)) }
            }
            if case .failure(let error) = result, !(error is SpoolFileGone), deleteThrough != nil {
                // A delete that keeps failing must not take the appends down with it.
                deleteFailed()
                result = Result { try backend.append(items, receivedAt: Timestamp.now(), deleteThrough: nil) }
            } else if case .success = result, let deleteThrough {
                deletedThrough = deleteThrough
            }
            switch result {
            case .success: failure.withLock { $0 = nil }
            case .failure(let error): failure.withLock { $0 = "\(error)" }
            }
            if case .success(let seqs) = result {
                handoff?.offer(seqs: seqs, items: items, bodies: group.map(\.body))
                onCommit()
                appended.add(group.count, ordering: .relaxed)
                if let first = seqs.first { _ = firstSeq.compareExchange(expected: 0, desired: first, ordering: .relaxed) }
                doorbell.ring()
            }
            // Callers the watchdog already answered are gone from `waiters`.
            let answer: [(Waiter, Result<Int64, any Error>)] = state.withLock { s in
                group.indices.compactMap { i in s.waiters.removeValue(forKey: group[i].ticket).map { ($0, result.map { $0[i] }) } }
            }
            Self.complete(answer)
        }
    }

    /// Calls the completions: those on an event loop in one job on that loop, the others from
    /// here.
    private static func complete(_ answers: [(Waiter, Result<Int64, any Error>)]) {
        var byLoop: [ObjectIdentifier: (loop: any EventLoop, answers: [(Completion, Result<Int64, any Error>)])] = [:]
        for (waiter, outcome) in answers {
            if let loop = waiter.loop {
                byLoop[ObjectIdentifier(loop), default: (loop, [])].answers.append((waiter.completion, outcome))
            } else {
                waiter.completion(outcome)
            }
        }
        for (loop, answers) in byLoop.values {
            loop.execute {
                for (completion, outcome) in answers { completion(outcome) }
            }
        }
    }
}

/// The spool's file was deleted or replaced (`SpoolBackend.fileProblem`).
struct SpoolFileGone: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

struct SpoolTimeout: Error, CustomStringConvertible {
    let deadline: Duration
    var description: String { "the spool did not commit within \(deadline)" }
}
