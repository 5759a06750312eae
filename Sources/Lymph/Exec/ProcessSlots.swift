import Synchronization

/// At most `limit` plugin processes at once across every batch in flight (`workers:`).
final class ProcessSlots: Sendable {
    struct State {
        var available: Int
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    let state: Mutex<State>

    init(_ limit: Int) { state = Mutex(State(available: limit)) }

    func acquire() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let granted = state.withLock { s in
                if s.available > 0 { s.available -= 1; return true }
                s.waiters.append(c)
                return false
            }
            if granted { c.resume() }
        }
    }

    func release() {
        let next: CheckedContinuation<Void, Never>? = state.withLock { s in
            if s.waiters.isEmpty { s.available += 1; return nil }
            return s.waiters.removeFirst()
        }
        next?.resume()
    }
}

/// One held slot, given back once: when the process ends or, failing that, when the run does.
final class SlotRelease: Sendable {
    let slots: ProcessSlots
    let released = Atomic<Bool>(false)

    init(_ slots: ProcessSlots) { self.slots = slots }

    func release() {
        if !released.exchange(true, ordering: .acquiringAndReleasing) { slots.release() }
    }
}
