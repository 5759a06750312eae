import Foundation
import Synchronization

/// How a long-running pipeline (`lymph serve`'s worker) rides out a full disk: a write that
/// fails for lack of space (ENOSPC, EDQUOT, SQLite's "database or disk is full") waits and is
/// tried again, backing off from 100 ms to 5 s, instead of ending the server; the problem is
/// reported (for `/healthz`) until a write succeeds. Waiting blocks the writing thread, which
/// is the worker's own: the pipeline pauses where it stands and resumes by itself.
///
/// `lymph run` has none: a full disk there ends the run (exit 3), as it should for a batch job.
public final class DiskFullWait: Sendable {
    private let state = Mutex<(problem: String?, stopped: Bool)>((nil, false))
    static let firstDelay = 0.1
    static let maxDelay = 5.0

    /// Told when a write starts waiting (the problem) and when a write that waited went through
    /// (nil): an operator reading the log sees why the server stopped making progress.
    private let report: (@Sendable (String?) -> Void)?

    /// No write waiting yet; `report` hears when one starts waiting and when it goes through.
    public init(report: (@Sendable (String?) -> Void)? = nil) {
        self.report = report
    }

    /// The write waiting for space, or nil when none is.
    public var problem: String? { state.withLock { $0.problem } }

    /// Ends every wait: the next failure is thrown as it would be without this (shutdown).
    public func stop() { state.withLock { $0.stopped = true } }

    /// Notes `problem` and sleeps before attempt `attempt + 1`; false when stopped, and the
    /// caller then fails as usual.
    func pause(_ problem: String, attempt: Int) -> Bool {
        let stopped = state.withLock { s in
            s.problem = problem
            return s.stopped
        }
        if stopped { return false }
        if attempt == 0 { report?(problem) }
        Thread.sleep(forTimeInterval: min(Self.firstDelay * pow(2, Double(min(attempt, 16))), Self.maxDelay))
        return !state.withLock { $0.stopped }
    }

    /// A write that had waited succeeded.
    func cleared() {
        state.withLock { $0.problem = nil }
        report?(nil)
    }

    /// Whether `errno` means the disk (or the user's quota) is full.
    static func isNoSpace(_ code: Int32) -> Bool { code == ENOSPC || code == EDQUOT }
}
