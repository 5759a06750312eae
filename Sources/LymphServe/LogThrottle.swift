import Foundation
import Synchronization

/// At most one log line a second for a condition that can repeat on every request (a full
/// spool under load): on one event loop, a slow stderr would otherwise slow every answer.
/// The line that gets through says how many were skipped.
final class LogThrottle: Sendable {
    let lastMillis = Atomic<Int64>(0)
    let skipped = Atomic<Int>(0)
    let intervalMillis: Int64

    init(interval: Duration = .seconds(1)) {
        intervalMillis = Int64(interval.wholeMilliseconds)
    }

    /// nil: skip this line; otherwise the number of lines skipped since the last one.
    func allow() -> Int? {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let last = lastMillis.load(ordering: .relaxed)
        guard now - last >= intervalMillis,
            lastMillis.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged
        else {
            skipped.add(1, ordering: .relaxed)
            return nil
        }
        return skipped.exchange(0, ordering: .relaxed)
    }
}
