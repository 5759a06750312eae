extension Array {
    /// Exchanges the elements at `i` and `j` by moving them. `MutableCollection.swapAt` copies
    /// both through the subscript, and a copy of an event retains everything it holds (its
    /// bytes, its tape, its delivery, its claims), then lets it go again.
    mutating func swapByMoving(_ i: Int, _ j: Int) {
        precondition(indices.contains(i) && indices.contains(j), "index out of range")
        guard i != j else { return }
        withUnsafeMutableBufferPointer { buffer in
            let a = buffer.baseAddress! + i
            let b = buffer.baseAddress! + j
            let held = a.move()
            a.moveInitialize(from: b, count: 1)
            b.initialize(to: held)
        }
    }

    /// `reverse()`, with the elements moved (see `swapByMoving`).
    mutating func reverseByMoving() {
        withUnsafeMutableBufferPointer { buffer in
            guard var low = buffer.baseAddress, buffer.count > 1 else { return }
            var high = low + (buffer.count - 1)
            while low < high {
                let held = low.move()
                low.moveInitialize(from: high, count: 1)
                high.initialize(to: held)
                low += 1
                high -= 1
            }
        }
    }
}
