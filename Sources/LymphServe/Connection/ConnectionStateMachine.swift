/// The rules of one webhook connection, as a value that takes events and returns what to do, in
/// the way Hummingbird's `HTTPConnectionStateHandler` drives its `StateMachine`.
/// `WebhookRequestHandler` tells it what the channel sees and carries out the actions; nothing
/// here touches a channel, so the rules are tested on their own, with a mock clock.
///
/// The rules it keeps:
/// - **Answers leave in request order** (HTTP pipelining), whoever gives them: the handler
///   (webhooks, from the spool's commit) or the router. A part read after a request that waits
///   for its answer waits its turn, and so does every part after it, until that answer's end is
///   written; then the waiting parts are handled in order until one request waits again.
/// - **Reads stop while parts wait** (`readRequested` holds the read), so at most one read's worth
///   waits. One read can still hold hundreds of tiny pipelined requests: past
///   `maxWaitingParts` the client is not a webhook sender, and the connection is closed.
/// - **Reads stop while the client does not take its answers** (the channel is not writable:
///   answers not yet sent fill its buffer past NIO's high-water mark). Answers that need no
///   spool (401, 400) are written at once, so a client that sends requests without reading what
///   comes back would otherwise pile them up in memory for as long as it keeps sending, a few
///   hundred bytes a request. Reading resumes when the buffer drains; a client that never
///   reads sends nothing more once the kernel's buffers fill, and the idle timeout closes it.
/// - **The decoder's error and the half-close wait in line too.** Passed on early, either would
///   make Hummingbird's read loop answer 400 or close the connection before the answer due. The
///   half-close also waits while a webhook's answer waits for the spool: a client that sends its
///   webhook and shuts down its side still waits for the 202.
/// - **An answer that ends the connection** (the request said `Connection: close`, or HTTP/1.0
///   without keep-alive; a 405 or 413; any answer while the server stops) is the last: nothing
///   the client sends after that request is handled. Given before its request was read whole,
///   it closes only the output at first, and the whole connection `lingerAfterEarlyClose` later:
///   closing a socket with unread input makes the kernel send a reset, which can destroy the
///   answer before the client reads it.
/// - **A body is counted as it arrives** (a chunked body has no declared length): past
///   `maxBody`, 413 before the rest is read.
/// - **Idle timeout**: a connection that has read nothing for `idleTimeout`, between requests
///   or stalled inside one, is closed; one that owes an answer is never idle.
/// - **Request deadline**: a request is read whole within `readLimit` (twice `idleTimeout`)
///   of its head, or the connection is closed: a client that sends its body a byte now and then,
///   never idle, would otherwise hold a connection for as long as it liked, and a few of them
///   every connection the server allows, before any signature is checked.
/// - **Graceful quiesce** (the server stops): an idle connection closes at once, a busy one
///   once nothing is left to read, answer or replay, after the last answer is sent.
///
/// `Part` is what waits its turn (NIO's request part, in the handler); `Instant` is the clock's
/// time, passed in with each event that needs it. No event allocates, but for the first part
/// that waits on a connection.
struct ConnectionStateMachine<Part, Instant: InstantProtocol> where Instant.Duration == Duration {
    /// Parts that may wait their turn; one more closes the connection.
    static var maxWaitingParts: Int { 1024 }
    /// How long after an early answer's close of the output the connection is dropped.
    static var lingerAfterEarlyClose: Duration { .seconds(2) }

    /// Where the connection is with its current request.
    enum State: Equatable {
        /// Between requests: no answer is owed, nothing of the next request has been read.
        case idle
        /// A request's head has been read, its end has not.
        case reading(Request)
        /// A request has been read whole; its answer is not written yet (the spool's commit,
        /// or the router's task).
        case answering(Route)
        /// The connection ends: the answer that closes it is written or on its way. Nothing
        /// the client sends after the request in hand is handled; `rest` says where the rest
        /// of that request goes when its end is not read yet.
        case closing(rest: Rest?)
        /// The channel is gone (or closed by this machine): nothing more is read, answered or
        /// timed.
        case closed
    }

    /// The request being read.
    enum Request: Equatable {
        /// For Hummingbird's router: its parts pass on. `answered`: the router has written its
        /// answer already (a 404 to an upload, say).
        case router(closesAfter: Bool, answered: Bool)
        /// A webhook, answered here; its body counted so far.
        case webhook(closesAfter: Bool, bodyBytes: Int)
        /// Answered before its end was read (413, 405, 503): the rest is dropped.
        case discarding

        var closesAfter: Bool {
            switch self {
            case .router(let closesAfter, _), .webhook(let closesAfter, _): closesAfter
            case .discarding: false
            }
        }
    }

    /// Who owes the answer of a request read whole.
    enum Route: Equatable {
        case router(closesAfter: Bool)
        case webhook(closesAfter: Bool)

        var closesAfter: Bool {
            switch self {
            case .router(let closesAfter), .webhook(let closesAfter): closesAfter
            }
        }
    }

    /// Where the rest of the request in hand goes once the connection is closing.
    enum Rest: Equatable {
        case toRouter
        case dropped
    }

    /// A request's head as the handler classifies it. `closesAfter`: the connection ends after
    /// its answer (NIO's `isKeepAlive` is false: `Connection: close`, or HTTP/1.0 without
    /// keep-alive).
    enum Head: Equatable {
        case router(closesAfter: Bool)
        case webhook(closesAfter: Bool)
        /// A method the server does not serve (CONNECT, TRACE, PUT...).
        case unservedMethod
    }

    /// What waits its turn: a request part, or the decoder's error in its place in the stream.
    enum Waiting {
        case part(Part)
        case error(any Error)
    }

    let idleTimeout: Duration
    let maxBody: Int
    private(set) var state = State.idle
    /// The server is stopping: every answer closes the connection, and it closes when done.
    private(set) var quiescing = false
    /// What waits for the current answer: parts (in order), a read, the half-close.
    private var waiting = WaitingLine<Waiting>()
    private var readHeld = false
    /// The channel is not writable: a read asked for is held until it is again.
    private var outputBlocked = false
    private var inputClosedHeld = false
    /// Set while waiting parts are handed out: an answer written meanwhile (the handler answers
    /// some requests at once) must not start another round.
    private var replay: Replay?
    /// When a part was last read or an answer last written.
    private var lastActive: Instant
    /// When the request being read began (its head was handled).
    private var requestStarted: Instant

    /// `now`: when the connection was accepted (its idle time counts from there).
    init(idleTimeout: Duration, maxBody: Int, now: Instant) {
        self.idleTimeout = idleTimeout
        self.maxBody = maxBody
        lastActive = now
        requestStarted = now
    }

    /// How long a request may take to be read whole, from its head to its end.
    var readLimit: Duration { idleTimeout * 2 }

    /// Parts waiting their turn (for tests and diagnostics).
    var waitingCount: Int { waiting.count }

    // MARK: - The channel

    enum ActiveAction: Equatable {
        case scheduleIdleCheck(at: Instant)
        case none
    }

    /// The channel is active (or the handler joined an active one): the idle timer starts.
    func channelActive() -> ActiveAction {
        state == .closed ? .none : .scheduleIdleCheck(at: idleDeadline)
    }

    /// The channel is gone.
    mutating func channelInactive() {
        state = .closed
        waiting.removeAll()
    }

    enum IdleCheckAction: Equatable {
        case close
        case scheduleIdleCheck(at: Instant)
        case none
    }

    /// The idle timer fired. A connection that owes an answer is not idle (the answer's end
    /// starts the timer again); one that has read nothing for the timeout, in a request or
    /// between two, is closed.
    mutating func idleCheckDue(at now: Instant) -> IdleCheckAction {
        switch state {
        case .closed, .answering: return .none
        case .idle, .reading, .closing: break
        }
        guard now >= idleDeadline || now >= readDeadline else { return .scheduleIdleCheck(at: nextCheck) }
        state = .closed
        waiting.removeAll()
        return .close
    }

    private var idleDeadline: Instant { lastActive.advanced(by: idleTimeout) }

    /// While a request is read, when it must have been read whole; otherwise never.
    private var readDeadline: Instant {
        if case .reading = state { return requestStarted.advanced(by: readLimit) }
        return idleDeadline
    }

    /// The earlier of the two.
    private var nextCheck: Instant { min(idleDeadline, readDeadline) }

    // MARK: - Reading

    enum PartReadAction: Equatable {
        /// Handle it now: `headRead`, `bodyRead` or `endRead`.
        case handle
        /// It waits its turn (kept here; `nextToReplay` hands it back).
        case wait
        /// It comes after the answer that ends the connection.
        case drop
        /// Too many parts wait: close the connection.
        case close
    }

    /// A request part was read from the socket.
    mutating func partRead(_ part: Part, at now: Instant) -> PartReadAction {
        lastActive = now
        switch state {
        case .closed, .closing(rest: nil): return .drop
        case .idle, .reading, .answering, .closing(rest: .some): break
        }
        guard mustWait else { return .handle }
        guard waiting.count < Self.maxWaitingParts else {
            state = .closed
            waiting.removeAll()
            return .close
        }
        waiting.append(.part(part))
        return .wait
    }

    /// Parts wait already, or the request before is read and waits for its answer.
    private var mustWait: Bool {
        if !waiting.isEmpty { return true }
        if case .answering = state { return true }
        return false
    }

    enum HeadAction: Equatable {
        /// Pass it on to the router; its body and end follow it.
        case passOn
        /// Read the webhook's body. The handler may still refuse it first (503 while stopping,
        /// 413 for a declared length): `answerReady` while reading answers before the body.
        case readWebhook
        /// Answer 405 now (`answerReady`); the connection then closes.
        case refuse
    }

    /// A request's head is handled (read now, or its turn came).
    mutating func headRead(_ head: Head) -> HeadAction {
        requestStarted = lastActive
        switch head {
        case .router(let closesAfter):
            state = .reading(.router(closesAfter: closesAfter, answered: false))
            return .passOn
        case .webhook(let closesAfter):
            state = .reading(.webhook(closesAfter: closesAfter, bodyBytes: 0))
            return .readWebhook
        case .unservedMethod:
            // CONNECT would make the rest of the connection a tunnel the router never answers
            // properly, and TRACE would echo the request back.
            state = .reading(.discarding)
            return .refuse
        }
    }

    enum BodyAction: Equatable {
        case passOn
        /// Add it to the webhook's body.
        case append
        /// Past `maxBody`: answer 413 now (`answerReady`).
        case tooLarge
        case drop
    }

    /// A chunk of a request's body is handled.
    mutating func bodyRead(bytes: Int) -> BodyAction {
        switch state {
        case .reading(.router), .closing(rest: .toRouter):
            return .passOn
        case .reading(.webhook(let closesAfter, let bodyBytes)):
            let total = bodyBytes + bytes
            guard total <= maxBody else { return .tooLarge }
            state = .reading(.webhook(closesAfter: closesAfter, bodyBytes: total))
            return .append
        case .idle, .reading(.discarding), .answering, .closing(rest: .dropped), .closing(rest: nil), .closed:
            return .drop
        }
    }

    enum EndAction: Equatable {
        /// Pass it on to the router; with `thenClose`, close the connection after it once the
        /// last answer is sent (the server is stopping and nothing is left to do).
        case passOn(thenClose: Bool)
        /// The webhook is read whole: admit it; its answer comes with `answerReady`.
        case admit
        case drop(thenClose: Bool)
    }

    /// A request's end is handled.
    mutating func endRead() -> EndAction {
        switch state {
        case .reading(.router(let closesAfter, let answered)):
            state = answered ? .idle : .answering(.router(closesAfter: closesAfter))
            return .passOn(thenClose: closeIfDone())
        case .reading(.webhook(let closesAfter, _)):
            state = .answering(.webhook(closesAfter: closesAfter))
            return .admit
        case .reading(.discarding):
            state = .idle
            return .drop(thenClose: closeIfDone())
        case .closing(rest: .toRouter):
            state = .closing(rest: nil)
            return .passOn(thenClose: false)
        case .closing(rest: .dropped):
            state = .closing(rest: nil)
            return .drop(thenClose: false)
        case .idle, .answering, .closing(rest: nil), .closed:
            return .drop(thenClose: false)
        }
    }

    enum ReadAction: Equatable {
        case read
        /// Parts wait: the socket is read again once they are handled.
        case hold
    }

    /// The channel asks to read the socket again.
    mutating func readRequested() -> ReadAction {
        guard !waiting.isEmpty || outputBlocked else { return .read }
        readHeld = true
        return .hold
    }

    /// The channel's writability changed: `.read` when a read held for it goes out now.
    mutating func writabilityChanged(isWritable: Bool) -> ReadAction {
        outputBlocked = !isWritable
        guard isWritable, readHeld, waiting.isEmpty else { return .hold }
        readHeld = false
        return .read
    }

    enum PassOrWait: Equatable {
        case passOn
        /// Kept here; passed on in its turn.
        case wait
    }

    /// The decoder failed (the bytes are not HTTP). In line behind an answer due, its 400 must
    /// not overtake that answer.
    mutating func streamErrored(_ error: any Error) -> PassOrWait {
        switch state {
        case .closing, .closed: return .passOn
        case .idle, .reading, .answering: break
        }
        guard mustWait else { return .passOn }
        waiting.append(.error(error))
        return .wait
    }

    /// The client shut down its side of the connection.
    mutating func inputClosed() -> PassOrWait {
        guard mustHoldInputClosed else { return .passOn }
        inputClosedHeld = true
        return .wait
    }

    /// Passed on while parts wait, or while a webhook waits for the spool, the half-close would
    /// end Hummingbird's read loop, which then closes the connection before the answer.
    private var mustHoldInputClosed: Bool {
        if !waiting.isEmpty { return true }
        if case .answering(.webhook) = state { return true }
        return false
    }

    // MARK: - Answering

    enum AnswerAction: Equatable {
        /// Write it and keep the connection; then `answerWritten`.
        case write
        /// Write it saying `Connection: close`; close once it is sent.
        case writeThenClose
        /// Write it saying `Connection: close`; once it is sent close the output, and the
        /// whole connection `lingerAfterEarlyClose` later (the request was not read whole).
        case writeThenCloseOutput
        /// The connection is gone.
        case drop
    }

    /// An answer of the handler's own is ready: a webhook's, or a refusal. `closesConnection`:
    /// the answer itself ends the connection (405, 413).
    mutating func answerReady(closesConnection: Bool) -> AnswerAction {
        switch state {
        case .reading(let request):
            // Before the request's end: what is left of it is dropped.
            guard closesConnection || request.closesAfter || quiescing else {
                state = .reading(.discarding)
                return .write
            }
            state = .closing(rest: .dropped)
            waiting.removeAll()
            return .writeThenCloseOutput
        case .answering(let route):
            guard closesConnection || route.closesAfter || quiescing else {
                state = .idle
                return .write
            }
            state = .closing(rest: nil)
            waiting.removeAll()
            return .writeThenClose
        case .idle:
            // No answer of the handler's is due here; written as one would be.
            guard closesConnection || quiescing else { return .write }
            state = .closing(rest: nil)
            waiting.removeAll()
            return .writeThenClose
        case .closing:
            return .writeThenClose
        case .closed:
            return .drop
        }
    }

    enum RouterEndAction: Equatable {
        case write
        /// Close once it is sent (the request asked to close: Hummingbird closes only for an
        /// exact `Connection: close`, not for HTTP/1.0).
        case writeThenClose
        /// Write it and keep its write's future: while stopping, the connection closes once
        /// the last answer is sent.
        case writeAsLast
    }

    /// The router's answer ends (its `.end` passes on its way out); `answerWritten` follows.
    mutating func routerAnswerEnds() -> RouterEndAction {
        var closes = false
        switch state {
        case .reading(.router(let closesAfter, answered: false)):
            closes = closesAfter
            state = closesAfter ? .closing(rest: .toRouter) : .reading(.router(closesAfter: false, answered: true))
        case .answering(.router(let closesAfter)):
            closes = closesAfter
            state = closesAfter ? .closing(rest: nil) : .idle
        case .idle, .reading, .answering(.webhook), .closing, .closed:
            // Not the answer of a router request in hand: Hummingbird's 400 for a broken stream.
            break
        }
        if closes {
            waiting.removeAll()
            return .writeThenClose
        }
        return quiescing ? .writeAsLast : .write
    }

    enum AnswerWrittenAction: Equatable {
        /// Hand out the waiting parts with `nextToReplay` until it says `.done`.
        case replay
        /// A replay is under way (this answer was written during it): it goes on.
        case none
    }

    /// An answer's end was written, and the connection stays (after `.write`, and after every
    /// `RouterEndAction`).
    mutating func answerWritten(at now: Instant) -> AnswerWrittenAction {
        lastActive = now
        guard replay == nil else { return .none }
        replay = Replay()
        return .replay
    }

    enum ReplayStep {
        /// Handle this part now, as if just read (`headRead`, `bodyRead`, `endRead`).
        case part(Part)
        /// Pass the decoder's error on; nothing after it is handled.
        case error(any Error)
        /// Nothing more can be handed out: carry out `AfterReplay`, in its fields' order.
        case done(AfterReplay)
    }

    private struct Replay {
        /// A part or an error was handed out.
        var delivered = false
    }

    /// What follows a replay, in this order.
    struct AfterReplay: Equatable {
        /// Parts were handed out: the router's channel takes them at the end of a read.
        var fireReadComplete = false
        /// The read held while parts waited.
        var resumeReading = false
        /// The half-close held back.
        var passInputClosed = false
        var then = Then.none

        enum Then: Equatable {
            /// Stopping and done: close once the last answer is sent.
            case closeWhenSent
            case scheduleIdleCheck(at: Instant)
            case none
        }
    }

    /// The next waiting part whose turn has come, in order, until one request waits for its
    /// answer again, or the connection is closing.
    mutating func nextToReplay() -> ReplayStep {
        switch state {
        case .idle, .reading:
            guard let next = waiting.popFirst() else { break }
            replay?.delivered = true
            switch next {
            case .part(let part):
                return .part(part)
            case .error(let error):
                // The stream is broken from here on: the router answers 400 and closes.
                waiting.removeAll()
                return .error(error)
            }
        case .closing, .closed:
            waiting.removeAll()
        case .answering:
            break
        }
        var after = AfterReplay(fireReadComplete: replay?.delivered ?? false)
        replay = nil
        if waiting.isEmpty && readHeld && !outputBlocked {
            readHeld = false
            after.resumeReading = true
        }
        if inputClosedHeld && !mustHoldInputClosed {
            inputClosedHeld = false
            after.passInputClosed = true
        }
        if closeIfDone() {
            after.then = .closeWhenSent
        } else if state != .closed {
            // Also while the next request is being read (a client that stalls in it is idle),
            // and while closing.
            after.then = .scheduleIdleCheck(at: idleDeadline)
        }
        return .done(after)
    }

    // MARK: - Stopping

    enum QuiesceAction: Equatable {
        /// Close once the last answer is sent (at once when there is none).
        case closeWhenSent
        case none
    }

    /// The server is stopping (`ChannelShouldQuiesceEvent`).
    mutating func quiesce() -> QuiesceAction {
        quiescing = true
        if case .closed = state { return .none }
        guard !busy else { return .none }
        state = .closing(rest: nil)
        return .closeWhenSent
    }

    /// A request is being read, or waits for its answer, or parts wait their turn.
    private var busy: Bool {
        if !waiting.isEmpty { return true }
        switch state {
        case .reading, .answering, .closing(rest: .some): return true
        case .idle, .closing(rest: nil), .closed: return false
        }
    }

    /// While stopping, a connection with nothing left to do closes (it moves to `closing`).
    private mutating func closeIfDone() -> Bool {
        guard quiescing, !busy else { return false }
        switch state {
        case .closing, .closed: return false
        case .idle, .reading, .answering: break
        }
        state = .closing(rest: nil)
        return true
    }
}
