import Synchronization

/// Wakes one waiter when there is something new; a ring with nobody waiting is kept for the
/// next wait. Used where a consumer would otherwise poll (the spool worker).
public final class Doorbell: Sendable {
    struct State {
        var rung = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    let state = Mutex(State())

    public init() {}

    public func ring() {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { s in
            if let w = s.waiter { s.waiter = nil; return w }
            s.rung = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns when rung (or already rung since the last wait), after `timeout`, or when the
    /// task is cancelled.
    public func wait(timeout: Duration) async {
        await withTaskCancellationHandler {
            await waitOrTimeout(timeout)
        } onCancel: {
            // Releases the waiter below; the sleeper is cancelled with the task and does not ring.
            self.ring()
        }
    }

    private func waitOrTimeout(_ timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    let now = self.state.withLock { s in
                        if s.rung { s.rung = false; return true }
                        s.waiter = c
                        return false
                    }
                    if now { c.resume() }
                }
            }
            group.addTask {
                // The timeout rings too, which releases the waiter above.
                if (try? await Task.sleep(for: timeout)) != nil { self.ring() }
            }
            await group.next()
            group.cancelAll()
            // If the ring came first, the sleeper was cancelled and does not ring; if the
            // timeout came first, it rang and the waiter took it.
            await group.waitForAll()
        }
    }
}
