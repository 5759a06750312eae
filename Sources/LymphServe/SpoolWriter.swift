import Foundation
import Lymph
import Synchronization

/// Appends accepted webhooks to the spool with group commit: requests that arrive while a
/// commit is on disk wait together and go in the next transaction, so a burst of concurrent
/// requests costs one fsync, not one each.
///
/// Commits run on a thread of their own, so a slow disk never blocks Swift's cooperative
/// threads (which the HTTP handlers share). Each caller resumes only after its entry is durable
/// (`synchronous = FULL`): that is what makes a 202 safe to send.
///
/// A caller waits at most `deadline`: a watchdog answers the ones a stalled commit holds longer
/// with `SpoolTimeout`. One timer serves all callers: a timer task per request showed up in
/// profiles as a tenth of the server's time (two tasks and a timer-heap entry each).
public final class SpoolWriter: Sendable {
    struct Waiter {
        let since: ContinuousClock.Instant
        let continuation: CheckedContinuation<Int64, any Error>
    }

    struct State {
        /// Entries not yet taken by a commit, oldest first.
        var queue: [(ticket: UInt64, item: [UInt8])] = []
        /// Callers not yet answered, by ticket (queued or being committed).
        var waiters: [UInt64: Waiter] = [:]
        var nextTicket: UInt64 = 0
        var closed = false
    }

    let store: StateStore
    let doorbell: Doorbell
    let deadline: Duration
    let state = Mutex(State())
    let wakeup = DispatchSemaphore(value: 0)
    /// Signalled on close, to stop the watchdog thread.
    let stopWatchdog = DispatchSemaphore(value: 0)
    /// Most entries in one transaction.
    static let maxGroup = 4096
    /// Entries committed since start.
    let appended = Atomic<Int>(0)
    /// Callers answered with `SpoolTimeout` since start.
    let timedOut = Atomic<Int>(0)

    /// `store` should be opened with `.full` durability, on the pipeline's state file.
    public init(store: StateStore, doorbell: Doorbell, deadline: Duration = .seconds(3)) {
        self.store = store
        self.doorbell = doorbell
        self.deadline = deadline
        Self.startThread(named: "lymph-spool") { [self] in self.loop() }
        let tick = max(Self.milliseconds(deadline) / 8, 10)
        Self.startThread(named: "lymph-spool-dog") { [self] in
            while stopWatchdog.wait(timeout: .now() + .milliseconds(tick)) == .timedOut { expire() }
        }
    }

    /// A thread that shows its name in `top -H` and `perf`: Foundation's `Thread.name` does not
    /// reach the kernel on Linux, and the thread's comm file does (at most 15 bytes).
    static func startThread(named name: String, _ body: @escaping @Sendable () -> Void) {
        let t = Thread {
            try? String(name.prefix(15)).write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
            body()
        }
        t.start()
    }

    /// Stores `item` durably and returns its sequence number; `SpoolTimeout` past the deadline
    /// (the entry may still be committed later, and is then processed).
    public func append(_ item: [UInt8]) async throws -> Int64 {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Int64, any Error>) in
            enum Outcome { case closed, first, queued }
            let now = ContinuousClock.now
            let outcome: Outcome = state.withLock { s in
                if s.closed { return .closed }
                let ticket = s.nextTicket
                s.nextTicket += 1
                s.queue.append((ticket, item))
                s.waiters[ticket] = Waiter(since: now, continuation: c)
                return s.queue.count == 1 ? .first : .queued
            }
            switch outcome {
            case .closed: c.resume(throwing: SpoolClosed())
            case .first: wakeup.signal()
            case .queued: break
            }
        }
    }

    /// Commits what is queued, then stops the thread. Later appends fail.
    public func close() {
        state.withLock { $0.closed = true }
        wakeup.signal()
        stopWatchdog.signal()
    }

    struct SpoolClosed: Error, CustomStringConvertible {
        var description: String { "the spool is closed (shutting down)" }
    }

    /// Answers the callers that have waited past the deadline.
    private func expire() {
        let limit = ContinuousClock.now - deadline
        let late: [CheckedContinuation<Int64, any Error>] = state.withLock { s in
            guard !s.waiters.isEmpty else { return [] }
            var late: [CheckedContinuation<Int64, any Error>] = []
            for (ticket, w) in s.waiters where w.since < limit {
                late.append(w.continuation)
                s.waiters[ticket] = nil
            }
            return late
        }
        guard !late.isEmpty else { return }
        timedOut.add(late.count, ordering: .relaxed)
        let error = SpoolTimeout(deadline: deadline)
        for c in late { c.resume(throwing: error) }
    }

    private func loop() {
        while true {
            wakeup.wait()
            while true {
                let (group, closed): ([(ticket: UInt64, item: [UInt8])], Bool) = state.withLock { s in
                    let n = min(s.queue.count, Self.maxGroup)
                    let group = Array(s.queue.prefix(n))
                    s.queue.removeFirst(n)
                    return (group, s.closed)
                }
                if group.isEmpty {
                    if closed { return }
                    break
                }
                let result = Result { try store.spoolAppend(group.map(\.item), receivedAt: Timestamp.now()) }
                if case .success = result {
                    appended.add(group.count, ordering: .relaxed)
                    doorbell.ring()
                }
                // Callers the watchdog already answered are gone from `waiters`.
                let answer: [(CheckedContinuation<Int64, any Error>, Int)] = state.withLock { s in
                    group.indices.compactMap { i in s.waiters.removeValue(forKey: group[i].ticket).map { ($0.continuation, i) } }
                }
                switch result {
                case .success(let seqs): for (c, i) in answer { c.resume(returning: seqs[i]) }
                case .failure(let error): for (c, _) in answer { c.resume(throwing: error) }
                }
            }
        }
    }

    static func milliseconds(_ d: Duration) -> Int {
        let (s, atto) = d.components
        return Int(s) * 1000 + Int(atto / 1_000_000_000_000_000)
    }
}

struct SpoolTimeout: Error, CustomStringConvertible {
    let deadline: Duration
    var description: String { "the spool did not commit within \(deadline)" }
}
