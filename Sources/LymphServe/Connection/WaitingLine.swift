/// A first-in, first-out line that lets go of each element as it is taken. It allocates only
/// once something waits, and keeps its space while it is used (a pipelining client fills and
/// empties it again and again).
struct WaitingLine<Element> {
    private var slots: [Element?] = []
    /// The first slot still holding an element.
    private var first = 0

    var count: Int { slots.count - first }
    var isEmpty: Bool { first == slots.count }

    mutating func append(_ element: Element) {
        // Taken slots are reused once they are most of the array.
        if first >= 32 && first * 2 >= slots.count {
            slots.removeFirst(first)
            first = 0
        }
        slots.append(element)
    }

    mutating func popFirst() -> Element? {
        guard first < slots.count else { return nil }
        let element = slots[first].take()
        first += 1
        if first == slots.count {
            slots.removeAll(keepingCapacity: true)
            first = 0
        }
        return element
    }

    /// Empties the line and frees its space.
    mutating func removeAll() {
        guard !slots.isEmpty || slots.capacity > 0 else { return }
        slots = []
        first = 0
    }
}
