/// Counts for one stage over a run (or one batch, before they are merged).
public struct StageStats: Sendable, Equatable {
    /// Events the stage handled (events skipped by `when:` are not counted here).
    public var received = 0
    /// Events that went on (a stage that fans out counts every event it emits).
    public var emitted = 0
    /// Events that did not match `when:` and went on untouched.
    public var skipped = 0
    /// Replayed events that resume at a later stage and went past this one untouched.
    public var resumedPast = 0
    /// Events dropped, by reason (`duplicate`, `stale`, a filter's failing condition).
    public var dropped: [String: Int] = [:]
    /// Events the stage sent to the dead letters.
    public var deadLetters = 0

    /// All counts zero.
    public init() {}

    /// Events dropped, whatever the reason.
    public var droppedTotal: Int { dropped.values.reduce(0, +) }

    mutating func merge(_ other: StageStats) {
        received += other.received
        emitted += other.emitted
        skipped += other.skipped
        resumedPast += other.resumedPast
        deadLetters += other.deadLetters
        for (k, v) in other.dropped { dropped[k, default: 0] += v }
    }
}
