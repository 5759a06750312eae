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
public final class SpoolWriter: Sendable {
    struct Pending {
        let item: [UInt8]
        let continuation: CheckedContinuation<Int64, any Error>
    }

    struct State {
        var queue: [Pending] = []
        var closed = false
    }

    let store: StateStore
    let doorbell: Doorbell
    let state = Mutex(State())
    let wakeup = DispatchSemaphore(value: 0)
    /// Most entries in one transaction.
    static let maxGroup = 4096
    /// Entries committed since start.
    let appended = Atomic<Int>(0)

    /// `store` should be opened with `.full` durability, on the pipeline's state file.
    public init(store: StateStore, doorbell: Doorbell) {
        self.store = store
        self.doorbell = doorbell
        let t = Thread { [self] in self.loop() }
        t.name = "lymph-spool-writer"
        t.start()
    }

    /// Stores `item` durably and returns its sequence number.
    public func append(_ item: [UInt8]) async throws -> Int64 {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Int64, any Error>) in
            enum Outcome { case closed, first, queued }
            let outcome: Outcome = state.withLock { s in
                if s.closed { return .closed }
                s.queue.append(Pending(item: item, continuation: c))
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
    }

    struct SpoolClosed: Error, CustomStringConvertible {
        var description: String { "the spool is closed (shutting down)" }
    }

    private func loop() {
        while true {
            wakeup.wait()
            while true {
                let (group, closed): ([Pending], Bool) = state.withLock { s in
                    let n = min(s.queue.count, Self.maxGroup)
                    let group = Array(s.queue.prefix(n))
                    s.queue.removeFirst(n)
                    return (group, s.closed)
                }
                if group.isEmpty {
                    if closed { return }
                    break
                }
                do {
                    let seqs = try store.spoolAppend(group.map(\.item), receivedAt: Timestamp.now())
                    appended.add(group.count, ordering: .relaxed)
                    doorbell.ring()
                    for (p, seq) in zip(group, seqs) { p.continuation.resume(returning: seq) }
                } catch {
                    for p in group { p.continuation.resume(throwing: error) }
                }
            }
        }
    }
}
