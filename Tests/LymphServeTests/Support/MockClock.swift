/// A clock that moves only when a test moves it.
struct MockClock {
    struct Instant: InstantProtocol, CustomStringConvertible {
        var offset: Duration

        func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (a: Instant, b: Instant) -> Bool { a.offset < b.offset }
        var description: String { "t+\(offset)" }
    }

    private(set) var now = Instant(offset: .zero)

    mutating func advance(by duration: Duration) { now = now.advanced(by: duration) }

    /// The instant `duration` after the clock's start.
    static func at(_ duration: Duration) -> Instant { Instant(offset: duration) }
}
