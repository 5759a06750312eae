import Dispatch
import Synchronization

/// Wakes one waiter when there is something new; a ring with nobody waiting is kept for the
/// next wait. Used where a consumer would otherwise poll (the spool worker). One waiter at a
/// time: a second wait releases the first, which returns as if rung.
///
/// Hand-made rather than an `AsyncStream` raced against a sleeping task: the worker waits
/// thousands of times a second under load, and here a wait costs one continuation, with one
/// Dispatch timer at a time serving every wait (set again for the current waiter's deadline
/// when it fires early), where the race would cost a task group, a task and a timer per wait.
public final class Doorbell: Sendable {
    struct State {
        var rung = false
        var waiter: CheckedContinuation<Void, Never>?
        /// When the current waiter gives up.
        var deadline: ContinuousClock.Instant?
        /// The earliest time a timer is set for, if one is.
        var timerAt: ContinuousClock.Instant?
    }

    let state = Mutex(State())

    public init() {}

    public func ring() {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { s in
            if let w = s.waiter {
                s.waiter = nil
                s.deadline = nil
                return w
            }
            s.rung = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns when rung (or already rung since the last wait), after `timeout`, or when the
    /// task is cancelled.
    public func wait(timeout: Duration) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let deadline = ContinuousClock.now + timeout
                enum Next { case resume, setTimer, wait }
                var released: CheckedContinuation<Void, Never>?
                let next: Next = state.withLock { s in
                    if s.rung {
                        s.rung = false
                        return .resume
                    }
                    released = s.waiter
                    s.waiter = c
                    s.deadline = deadline
                    if let at = s.timerAt, at <= deadline { return .wait }
                    s.timerAt = deadline
                    return .setTimer
                }
                released?.resume()
                switch next {
                case .resume: c.resume()
                case .setTimer: setTimer(at: deadline)
                case .wait: break
                }
            }
        } onCancel: {
            // Releases the waiter, as a ring does.
            self.ring()
        }
    }

    /// A timer that fires early (a day at most, so the arithmetic cannot overflow) is set again.
    private func setTimer(at instant: ContinuousClock.Instant) {
        let delay = min(ContinuousClock.now.duration(to: instant), .seconds(86_400))
        let nanoseconds = max(0, delay.components.seconds * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000)
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(nanoseconds))) { [self] in
            timerFired(setFor: instant)
        }
    }

    private func timerFired(setFor instant: ContinuousClock.Instant) {
        let now = ContinuousClock.now
        enum Next { case expire(CheckedContinuation<Void, Never>), setTimer(ContinuousClock.Instant), nothing }
        let next: Next = state.withLock { s in
            if s.timerAt == instant { s.timerAt = nil }
            guard let waiter = s.waiter, let deadline = s.deadline else { return .nothing }
            if deadline <= now {
                s.waiter = nil
                s.deadline = nil
                return .expire(waiter)
            }
            // A later waiter than the one this timer was set for: one more timer, unless an
            // earlier one is still to fire.
            if let at = s.timerAt, at <= deadline { return .nothing }
            s.timerAt = deadline
            return .setTimer(deadline)
        }
        switch next {
        case .expire(let waiter): waiter.resume()
        case .setTimer(let at): setTimer(at: at)
        case .nothing: break
        }
    }
}
