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

/// A first-in first-out queue with O(1) pops (plain arrays shift on `removeFirst`).
struct FIFO<Element> {
    private var items: [Element] = []
    private var head = 0

    var isEmpty: Bool { head == items.count }
    var count: Int { items.count - head }
    var first: Element? { isEmpty ? nil : items[head] }

    mutating func append(_ e: Element) { items.append(e) }
    mutating func append(contentsOf s: some Sequence<Element>) { items.append(contentsOf: s) }

    mutating func popFirst() -> Element? {
        guard head < items.count else { return nil }
        let e = items[head]
        head += 1
        if head == items.count { items.removeAll(keepingCapacity: true); head = 0 } else if head > 1024 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        return e
    }

    /// Puts `elements` before everything queued, keeping their order.
    mutating func prepend(_ elements: [Element]) {
        guard !elements.isEmpty else { return }
        items = elements + items[head...]
        head = 0
    }

    mutating func removeAll() -> [Element] {
        let all = Array(items[head...])
        items.removeAll()
        head = 0
        return all
    }
}
