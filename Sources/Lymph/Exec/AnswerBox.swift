import Synchronization

/// Collects the results of a batch's events from plugin processes (any order, any task) and
/// wakes the batch once every slot is filled.
final class AnswerBox: Sendable {
    struct State {
        var results: [Result<StageOutcome, ExecFailure>?]
        var remaining: Int
        var waiter: CheckedContinuation<Void, Never>?
    }

    let state: Mutex<State>
    /// The events being answered, by slot.
    let events: [Event]

    init(events: [Event]) {
        self.events = events
        state = Mutex(State(results: Array(repeating: nil, count: events.count), remaining: events.count))
    }

    func deliver(_ slot: Int, _ result: Result<StageOutcome, ExecFailure>) {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { s in
            guard s.results[slot] == nil else { return nil }
            s.results[slot] = result
            s.remaining -= 1
            if s.remaining == 0, let w = s.waiter { s.waiter = nil; return w }
            return nil
        }
        waiter?.resume()
    }

    /// Every result, in slot order, once all have arrived.
    func wait() async -> [Result<StageOutcome, ExecFailure>] {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { s in
                if s.remaining == 0 { return true }
                s.waiter = c
                return false
            }
            if ready { c.resume() }
        }
        return state.withLock { $0.results.map { $0! } }
    }
}

