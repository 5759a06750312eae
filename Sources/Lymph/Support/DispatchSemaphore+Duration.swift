import Dispatch

extension DispatchSemaphore {
    /// Waits for a signal at most `limit`; whether one came.
    func wait(within limit: Duration) -> Bool {
        let ns = limit.components.seconds * 1_000_000_000 + limit.components.attoseconds / 1_000_000_000
        return wait(timeout: .now() + .nanoseconds(Int(max(0, ns)))) == .success
    }
}
