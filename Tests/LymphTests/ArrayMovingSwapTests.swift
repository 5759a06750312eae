import Synchronization
import Testing
@testable import Lymph

@Suite("moving swaps of an array's elements")
struct ArrayMovingSwapTests {
    /// Counts its instances, so a lost or doubled element shows.
    final class Tracked: Sendable {
        static let count = Mutex<Int>(0)
        static var live: Int { count.withLock { $0 } }
        let n: Int
        init(_ n: Int) {
            self.n = n
            Self.count.withLock { $0 += 1 }
        }
        deinit { Self.count.withLock { $0 -= 1 } }
    }

    @Test("swapByMoving and reverseByMoving reorder as swapAt and reverse do, each element kept once, and leave a shared copy alone")
    func reorders() {
        let before = Tracked.live
        do {
            var a = (0..<7).map { Tracked($0) }
            let shared = a
            a.swapByMoving(1, 5)
            a.swapByMoving(3, 3)
            #expect(a.map(\.n) == [0, 5, 2, 3, 4, 1, 6])
            #expect(shared.map(\.n) == [0, 1, 2, 3, 4, 5, 6])
            a.reverseByMoving()
            #expect(a.map(\.n) == [6, 1, 4, 3, 2, 5, 0])
            var even = (0..<4).map { Tracked($0) }
            even.reverseByMoving()
            #expect(even.map(\.n) == [3, 2, 1, 0])
            var one = [Tracked(9)]
            one.reverseByMoving()
            var none: [Tracked] = []
            none.reverseByMoving()
            #expect(one.map(\.n) == [9] && none.isEmpty)
            #expect(Tracked.live - before == 12)
        }
        #expect(Tracked.live == before)
    }
}
