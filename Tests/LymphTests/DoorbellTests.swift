import Foundation
import Testing
@testable import Lymph

/// Upper bounds are generous: the other suites run alongside and can hold Swift's cooperative
/// threads (two on this machine) for seconds, which delays any waiter's resumption. Each test
/// makes the wrong outcome take ten times its bound or more (a wait of 600 s, say).
@Suite("doorbell", .timeLimit(.minutes(3)))
struct DoorbellTests {
    static let bound: Duration = .seconds(60)

    /// Returns once a wait is in place on `bell`.
    func untilWaiting(_ bell: Doorbell) async {
        while bell.state.withLock({ $0.waiter == nil }) { try? await Task.sleep(for: .milliseconds(5)) }
    }

    func elapsed(_ body: () async -> Void) async -> Duration {
        let start = ContinuousClock.now
        await body()
        return ContinuousClock.now - start
    }

    @Test("a wait nobody rings ends at its timeout, not before")
    func timesOut() async {
        let bell = Doorbell()
        let took = await elapsed { await bell.wait(timeout: .milliseconds(150)) }
        #expect(took >= .milliseconds(150))
        #expect(took < Self.bound)
    }

    @Test("a ring before the wait is kept for it; a ring during the wait ends it long before its timeout")
    func rings() async {
        let bell = Doorbell()
        bell.ring()
        #expect(await elapsed { await bell.wait(timeout: .seconds(600)) } < Self.bound)
        // The kept ring was used up: the next wait times out.
        #expect(await elapsed { await bell.wait(timeout: .milliseconds(100)) } >= .milliseconds(100))
        let ringer = Task {
            try? await Task.sleep(for: .milliseconds(50))
            bell.ring()
        }
        #expect(await elapsed { await bell.wait(timeout: .seconds(600)) } < Self.bound)
        await ringer.value
    }

    @Test("a short wait after a long one that was rung still ends at its own timeout (the long one's timer is still set)")
    func shortAfterLong() async {
        let bell = Doorbell()
        let ringer = Task {
            try? await Task.sleep(for: .milliseconds(50))
            bell.ring()
        }
        _ = await elapsed { await bell.wait(timeout: .seconds(600)) }
        await ringer.value
        let took = await elapsed { await bell.wait(timeout: .milliseconds(100)) }
        #expect(took >= .milliseconds(100))
        #expect(took < Self.bound)
    }

    @Test("a wait rung early, then a longer one: the first wait's timer fires before the second's deadline and is set again for it")
    func timerSetAgain() async {
        // lymph serve's worker under load: a commit rings its 200 ms wait early, and its next
        // wait ends later than the timer still set for the first. The ring comes once the first
        // wait is in place; its timeout is long enough that a busy machine does not let it
        // expire first (if it did, the kept ring is cleared and the second wait still counts).
        let bell = Doorbell()
        let first = Task { await bell.wait(timeout: .seconds(1)) }
        await untilWaiting(bell)
        bell.ring()
        await first.value
        bell.state.withLock { $0.rung = false }
        let took = await elapsed { await bell.wait(timeout: .milliseconds(1500)) }
        #expect(took >= .milliseconds(1500))
        #expect(took < Self.bound)
    }

    @Test("a second wait releases the first instead of leaving it waiting forever")
    func secondWaitReleasesFirst() async {
        let bell = Doorbell()
        let first = Task { await bell.wait(timeout: .seconds(600)) }
        await untilWaiting(bell)
        let start = ContinuousClock.now
        let second = Task { await bell.wait(timeout: .seconds(600)) }
        await first.value
        #expect(ContinuousClock.now - start < Self.bound)
        bell.ring()
        await second.value
    }

    @Test("a wait in a task already cancelled returns at once")
    func alreadyCancelled() async {
        let bell = Doorbell()
        let start = ContinuousClock.now
        let waiter = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            await bell.wait(timeout: .seconds(600))
        }
        await waiter.value
        #expect(ContinuousClock.now - start < Self.bound)
    }

    @Test("waits one after another, each timing out, each end on time (one timer serves them in turn)")
    func successiveTimeouts() async {
        let bell = Doorbell()
        for _ in 0..<5 {
            let took = await elapsed { await bell.wait(timeout: .milliseconds(40)) }
            #expect(took >= .milliseconds(40))
            #expect(took < Self.bound)
        }
    }

    @Test("cancelling the waiting task ends the wait")
    func cancelled() async {
        let bell = Doorbell()
        let start = ContinuousClock.now
        let waiter = Task { await bell.wait(timeout: .seconds(600)) }
        await untilWaiting(bell)
        waiter.cancel()
        await waiter.value
        #expect(ContinuousClock.now - start < Self.bound)
    }
}
