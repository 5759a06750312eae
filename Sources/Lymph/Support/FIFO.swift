/// A first-in first-out queue with O(1) pops (plain arrays shift on `removeFirst`).
struct FIFO<Element> {
    private var items: [Element] = []
    private var head = 0

    var isEmpty: Bool { head == items.count }
    var count: Int { items.count - head }
    var first: Element? { isEmpty ? nil : items[head] }

    /// The position (0 for the first) of the first element that satisfies `predicate`.
    func firstIndex(where predicate: (Element) -> Bool) -> Int? {
        items[head...].firstIndex(where: predicate).map { $0 - head }
    }

    mutating func append(_ e: Element) { items.append(e) }
    mutating func append(contentsOf s: some Sequence<Element>) { items.append(contentsOf: s) }

    mutating func popFirst() -> Element? {
        guard head < items.count else { return nil }
        let e = items[head]
        head += 1
        if head == items.count {
            items.removeAll(keepingCapacity: true); head = 0
        } else if head > 1024 && head * 2 > items.count {
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
