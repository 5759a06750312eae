import NIOCore

/// An event loop's time (`EventLoop.now`) as the connection state machine's instant. On
/// `EmbeddedEventLoop` that is the loop's own clock, which tests move forward.
struct LoopInstant: InstantProtocol {
    let deadline: NIODeadline

    init(_ deadline: NIODeadline) { self.deadline = deadline }

    func advanced(by duration: Duration) -> LoopInstant { LoopInstant(deadline + TimeAmount(duration)) }

    func duration(to other: LoopInstant) -> Duration { .nanoseconds((other.deadline - deadline).nanoseconds) }

    static func < (a: LoopInstant, b: LoopInstant) -> Bool { a.deadline < b.deadline }
}
