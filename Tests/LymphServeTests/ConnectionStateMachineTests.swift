import Testing

@testable import LymphServe

/// The connection's rules on their own: events in, actions out, time from a mock clock. Parts
/// are strings here: "router", "webhook" and "unserved" are heads, "body:N" a body chunk of N
/// bytes, "end" a request's end.
@Suite("ConnectionStateMachine")
struct ConnectionStateMachineTests {
    typealias Machine = ConnectionStateMachine<String, MockClock.Instant>

    static func machine(idleTimeout: Duration = .seconds(30), maxBody: Int = 100) -> Machine {
        Machine(idleTimeout: idleTimeout, maxBody: maxBody, now: MockClock.at(.zero))
    }

    // MARK: - Idle timeout

    @Test("a connection that reads nothing is closed at the idle timeout")
    func idleFromTheStart() {
        var m = Self.machine()
        #expect(m.channelActive() == .scheduleIdleCheck(at: MockClock.at(.seconds(30))))
        #expect(m.idleCheckDue(at: MockClock.at(.seconds(30))) == .close)
        #expect(m.state == .closed)
    }

    @Test("a part read pushes the idle deadline back: the timer is set again for it")
    func activityMovesTheDeadline() {
        var m = Self.machine()
        var clock = MockClock()
        clock.advance(by: .seconds(10))
        #expect(m.partRead("router", at: clock.now) == .handle)
        #expect(m.headRead(.router(closesAfter: false)) == .passOn)
        clock.advance(by: .seconds(20))
        #expect(m.idleCheckDue(at: clock.now) == .scheduleIdleCheck(at: MockClock.at(.seconds(40))))
    }

    @Test("a client stalled inside a request is idle: closed at the timeout")
    func stalledInsideARequest() {
        var m = Self.machine()
        #expect(m.partRead("webhook", at: MockClock.at(.seconds(1))) == .handle)
        #expect(m.headRead(.webhook(closesAfter: false)) == .readWebhook)
        #expect(m.idleCheckDue(at: MockClock.at(.seconds(31))) == .close)
    }

    @Test("a body sent a byte now and then is never idle, but the request must be read whole within twice the idle timeout of its head")
    func tricklingBodyMeetsTheReadDeadline() {
        var m = Self.machine(idleTimeout: .seconds(5), maxBody: 1000)
        #expect(m.partRead("webhook", at: MockClock.at(.seconds(1))) == .handle)
        #expect(m.headRead(.webhook(closesAfter: false)) == .readWebhook)
        // A byte every 2 s; each check finds the connection not idle, and sets the next at the
        // idle deadline or the request's (11 s), whichever is first.
        for (byte, check, next) in [(3, 6, 8), (5, 8, 10), (7, 10, 11)] {
            #expect(m.partRead("body:1", at: MockClock.at(.seconds(byte))) == .handle)
            #expect(m.bodyRead(bytes: 1) == .append)
            #expect(m.idleCheckDue(at: MockClock.at(.seconds(check))) == .scheduleIdleCheck(at: MockClock.at(.seconds(next))))
        }
        #expect(m.partRead("body:1", at: MockClock.at(.seconds(9))) == .handle)
        #expect(m.bodyRead(bytes: 1) == .append)
        #expect(m.idleCheckDue(at: MockClock.at(.seconds(11))) == .close)
        #expect(m.state == .closed)
    }

    @Test("a request read whole within the deadline is answered as ever, and the next request gets a deadline of its own")
    func readDeadlinePerRequest() {
        var m = Self.machine(idleTimeout: .seconds(5))
        Self.readWebhook(&m, at: MockClock.at(.seconds(1)))
        #expect(m.answerReady(closesConnection: false) == .write)
        #expect(m.answerWritten(at: MockClock.at(.seconds(2))) == .replay)
        _ = Self.finishReplay(&m)
        #expect(m.partRead("webhook", at: MockClock.at(.seconds(9))) == .handle)
        #expect(m.headRead(.webhook(closesAfter: false)) == .readWebhook)
        #expect(m.partRead("body:1", at: MockClock.at(.seconds(13))) == .handle)
        #expect(m.bodyRead(bytes: 1) == .append)
        // 13 s after the first request's head, 4 s after this one's: neither deadline is near.
        #expect(m.idleCheckDue(at: MockClock.at(.seconds(14))) == .scheduleIdleCheck(at: MockClock.at(.seconds(18))))
        #expect(m.idleCheckDue(at: MockClock.at(.seconds(18))) == .close)
    }

    @Test("a connection that owes an answer is never idle; the answer's end starts the timer again")
    func owingAnAnswerIsNotIdle() {
        var m = Self.machine()
        Self.readWebhook(&m, at: MockClock.at(.seconds(1)))
        #expect(m.idleCheckDue(at: MockClock.at(.seconds(120))) == .none)
        #expect(m.answerReady(closesConnection: false) == .write)
        #expect(m.answerWritten(at: MockClock.at(.seconds(121))) == .replay)
        let after = Self.finishReplay(&m)
        #expect(after.then == .scheduleIdleCheck(at: MockClock.at(.seconds(151))))
        #expect(m.idleCheckDue(at: MockClock.at(.seconds(151))) == .close)
    }

    // MARK: - Pipelining

    @Test("parts read while an answer is due wait their turn, and so does the read after them")
    func partsWaitBehindAnAnswer() {
        var m = Self.machine()
        Self.readWebhook(&m)
        for part in ["router", "end", "webhook", "body:5", "end"] { #expect(m.partRead(part, at: MockClock.at(.seconds(2))) == .wait) }
        #expect(m.waitingCount == 5)
        #expect(m.readRequested() == .hold)
    }

    @Test("once the answer is written, waiting parts come back in order until a request waits for its answer again")
    func replayStopsAtTheNextAnswerDue() {
        var m = Self.machine()
        Self.readWebhook(&m)
        for part in ["router", "end", "webhook", "body:5", "end"] { _ = m.partRead(part, at: MockClock.at(.seconds(2))) }
        _ = m.readRequested()
        #expect(m.answerReady(closesConnection: false) == .write)
        #expect(m.answerWritten(at: MockClock.at(.seconds(3))) == .replay)
        var handed: [String] = []
        let after = Self.replay(&m, handed: &handed)
        // The router's request is handed out; the webhook behind it waits for the router's answer.
        #expect(handed == ["router", "end"])
        #expect(m.state == .answering(.router(closesAfter: false)))
        #expect(m.waitingCount == 3)
        #expect(after == .init(fireReadComplete: true, resumeReading: false, passInputClosed: false, then: .scheduleIdleCheck(at: MockClock.at(.seconds(33)))))
        // The router answers: the webhook's turn, and the line is empty, so reading resumes.
        #expect(m.routerAnswerEnds() == .write)
        #expect(m.answerWritten(at: MockClock.at(.seconds(4))) == .replay)
        handed = []
        let last = Self.replay(&m, handed: &handed)
        #expect(handed == ["webhook", "body:5", "end"])
        #expect(m.state == .answering(.webhook(closesAfter: false)))
        #expect(last.fireReadComplete && last.resumeReading)
        #expect(m.readRequested() == .read)
    }

    @Test("reads stop while the channel is not writable (answers the client does not take), and the held read goes out when it is again")
    func readsHeldWhileOutputBlocked() {
        var m = Self.machine()
        #expect(m.writabilityChanged(isWritable: false) == .hold)
        #expect(m.readRequested() == .hold)
        #expect(m.writabilityChanged(isWritable: true) == .read)
        #expect(m.readRequested() == .read)
        // No read held: writability coming back asks for none.
        #expect(m.writabilityChanged(isWritable: false) == .hold)
        #expect(m.writabilityChanged(isWritable: true) == .hold)
    }

    @Test("waiting parts handed out while the channel is not writable leave the read held until it is")
    func replayKeepsTheReadHeldWhileOutputBlocked() {
        var m = Self.machine()
        Self.readWebhook(&m)
        for part in ["router", "end"] { _ = m.partRead(part, at: MockClock.at(.seconds(2))) }
        #expect(m.readRequested() == .hold)
        #expect(m.writabilityChanged(isWritable: false) == .hold)
        #expect(m.answerReady(closesConnection: false) == .write)
        #expect(m.answerWritten(at: MockClock.at(.seconds(3))) == .replay)
        var handed: [String] = []
        let after = Self.replay(&m, handed: &handed)
        #expect(handed == ["router", "end"])
        #expect(!after.resumeReading)
        // The router's answer is written too; the buffer drains: now the read goes out.
        #expect(m.routerAnswerEnds() == .write)
        _ = m.answerWritten(at: MockClock.at(.seconds(4)))
        #expect(m.writabilityChanged(isWritable: true) == .read)
    }

    @Test("an answer written while waiting parts are handed out does not start a second round")
    func noNestedReplay() {
        var m = Self.machine()
        Self.readWebhook(&m)
        for part in ["webhook", "body:5", "end", "router", "end"] { _ = m.partRead(part, at: MockClock.at(.seconds(2))) }
        _ = m.answerReady(closesConnection: false)
        #expect(m.answerWritten(at: MockClock.at(.seconds(3))) == .replay)
        for expected in ["webhook", "body:5"] {
            guard case .part(let part) = m.nextToReplay() else { Issue.record("nothing handed out"); return }
            #expect(part == expected)
            _ = Self.handle(&m, part)
        }
        guard case .part("end") = m.nextToReplay() else { Issue.record("no end"); return }
        #expect(m.endRead() == .admit)
        // Admitted and answered at once (a 401, say), during the replay.
        #expect(m.answerReady(closesConnection: false) == .write)
        #expect(m.answerWritten(at: MockClock.at(.seconds(3))) == .none)
        var handed: [String] = []
        _ = Self.replay(&m, handed: &handed)
        #expect(handed == ["router", "end"])
    }

    @Test("past 1,024 waiting parts the connection is closed, and nothing more is taken")
    func flood() {
        var m = Self.machine()
        Self.readWebhook(&m)
        for i in 0..<Machine.maxWaitingParts { #expect(m.partRead(i % 2 == 0 ? "router" : "end", at: MockClock.at(.seconds(2))) == .wait) }
        #expect(m.partRead("router", at: MockClock.at(.seconds(2))) == .close)
        #expect(m.state == .closed)
        #expect(m.waitingCount == 0)
        #expect(m.partRead("end", at: MockClock.at(.seconds(2))) == .drop)
        #expect(m.answerReady(closesConnection: false) == .drop)
    }

    // MARK: - Connection: close

    @Test("a webhook that asks to close gets the last answer: it closes once written, and what follows is dropped")
    func webhookAsksToClose() {
        var m = Self.machine()
        Self.readWebhook(&m, closesAfter: true)
        #expect(m.partRead("router", at: MockClock.at(.seconds(2))) == .wait)
        #expect(m.answerReady(closesConnection: false) == .writeThenClose)
        #expect(m.state == .closing(rest: nil))
        #expect(m.waitingCount == 0)
        #expect(m.partRead("end", at: MockClock.at(.seconds(2))) == .drop)
    }

    @Test("a router request that asks to close: its answer's end closes the connection")
    func routerRequestAsksToClose() {
        var m = Self.machine()
        #expect(m.partRead("router", at: MockClock.at(.seconds(1))) == .handle)
        #expect(m.headRead(.router(closesAfter: true)) == .passOn)
        #expect(m.endRead() == .passOn(thenClose: false))
        #expect(m.partRead("webhook", at: MockClock.at(.seconds(1))) == .wait)
        #expect(m.routerAnswerEnds() == .writeThenClose)
        #expect(m.state == .closing(rest: nil))
        #expect(m.waitingCount == 0)
        #expect(m.partRead("end", at: MockClock.at(.seconds(1))) == .drop)
    }

    @Test("the router answering a closing request before its end: the rest still goes to the router, later requests do not")
    func routerAnswersEarlyAndCloses() {
        var m = Self.machine()
        _ = m.partRead("router", at: MockClock.at(.seconds(1)))
        _ = m.headRead(.router(closesAfter: true))
        #expect(m.routerAnswerEnds() == .writeThenClose)
        #expect(m.state == .closing(rest: .toRouter))
        #expect(m.partRead("body:10", at: MockClock.at(.seconds(1))) == .handle)
        #expect(m.bodyRead(bytes: 10) == .passOn)
        #expect(m.endRead() == .passOn(thenClose: false))
        #expect(m.partRead("router", at: MockClock.at(.seconds(1))) == .drop)
    }

    // MARK: - Answers before the body

    @Test("a body is counted as it arrives: max_body bytes pass, one more is 413, which closes the output and drops the rest")
    func bodyOverTheLimit() {
        var m = Self.machine(maxBody: 100)
        _ = m.partRead("webhook", at: MockClock.at(.seconds(1)))
        _ = m.headRead(.webhook(closesAfter: false))
        #expect(m.bodyRead(bytes: 60) == .append)
        #expect(m.bodyRead(bytes: 40) == .append)
        #expect(m.bodyRead(bytes: 1) == .tooLarge)
        #expect(m.answerReady(closesConnection: true) == .writeThenCloseOutput)
        #expect(m.state == .closing(rest: .dropped))
        #expect(m.bodyRead(bytes: 1000) == .drop)
        #expect(m.endRead() == .drop(thenClose: false))
        #expect(m.partRead("webhook", at: MockClock.at(.seconds(1))) == .drop)
    }

    @Test("a method the server does not serve is refused at its head; the answer closes the output")
    func unservedMethod() {
        var m = Self.machine()
        _ = m.partRead("unserved", at: MockClock.at(.seconds(1)))
        #expect(m.headRead(.unservedMethod) == .refuse)
        #expect(m.answerReady(closesConnection: true) == .writeThenCloseOutput)
        #expect(m.state == .closing(rest: .dropped))
    }

    @Test("an answer before the body that need not close (503 while stopping, keep-alive) drops the rest of the request and keeps the connection")
    func earlyAnswerKeepsTheConnection() {
        var m = Self.machine()
        _ = m.partRead("webhook", at: MockClock.at(.seconds(1)))
        _ = m.headRead(.webhook(closesAfter: false))
        #expect(m.answerReady(closesConnection: false) == .write)
        #expect(m.state == .reading(.discarding))
        #expect(m.answerWritten(at: MockClock.at(.seconds(1))) == .replay)
        _ = Self.finishReplay(&m)
        #expect(m.partRead("body:50", at: MockClock.at(.seconds(1))) == .handle)
        #expect(m.bodyRead(bytes: 50) == .drop)
        #expect(m.endRead() == .drop(thenClose: false))
        #expect(m.state == .idle)
        #expect(m.partRead("webhook", at: MockClock.at(.seconds(2))) == .handle)
    }

    // MARK: - Half-close and the decoder's error

    @Test("a half-close while a webhook waits for the spool waits for its answer")
    func halfCloseWaitsForTheSpool() {
        var m = Self.machine()
        Self.readWebhook(&m)
        #expect(m.inputClosed() == .wait)
        _ = m.answerReady(closesConnection: false)
        _ = m.answerWritten(at: MockClock.at(.seconds(2)))
        #expect(Self.finishReplay(&m).passInputClosed)
    }

    @Test("a half-close between requests, or while the router owes an answer, passes on at once")
    func halfClosePassesWhenNothingIsHeld() {
        var idle = Self.machine()
        #expect(idle.inputClosed() == .passOn)
        var router = Self.machine()
        _ = router.partRead("router", at: MockClock.at(.seconds(1)))
        _ = router.headRead(.router(closesAfter: false))
        _ = router.endRead()
        #expect(router.inputClosed() == .passOn)
    }

    @Test("a half-close behind waiting parts passes on only once they are all handled")
    func halfCloseBehindWaitingParts() {
        var m = Self.machine()
        Self.readWebhook(&m)
        for part in ["webhook", "body:5", "end"] { _ = m.partRead(part, at: MockClock.at(.seconds(2))) }
        #expect(m.inputClosed() == .wait)
        _ = m.answerReady(closesConnection: false)
        _ = m.answerWritten(at: MockClock.at(.seconds(3)))
        var handed: [String] = []
        // The second webhook now waits for the spool: the half-close still waits.
        #expect(!Self.replay(&m, handed: &handed).passInputClosed)
        _ = m.answerReady(closesConnection: false)
        _ = m.answerWritten(at: MockClock.at(.seconds(4)))
        #expect(Self.finishReplay(&m).passInputClosed)
    }

    @Test("the decoder's error waits in line behind the answer due; nothing after it is handed out")
    func decoderErrorWaitsInLine() {
        struct Garbage: Error {}
        var m = Self.machine()
        Self.readWebhook(&m)
        #expect(m.partRead("router", at: MockClock.at(.seconds(2))) == .wait)
        #expect(m.streamErrored(Garbage()) == .wait)
        _ = m.answerReady(closesConnection: false)
        _ = m.answerWritten(at: MockClock.at(.seconds(3)))
        guard case .part("router") = m.nextToReplay() else { Issue.record("the router's head first"); return }
        _ = m.headRead(.router(closesAfter: false))
        guard case .error(let error) = m.nextToReplay() else { Issue.record("then the error"); return }
        #expect(error is Garbage)
        guard case .done(let after) = m.nextToReplay() else { Issue.record("then nothing"); return }
        #expect(after.fireReadComplete)
        #expect(m.waitingCount == 0)
    }

    @Test("the decoder's error passes on at once when nothing waits, and while closing")
    func decoderErrorPassesOn() {
        struct Garbage: Error {}
        var m = Self.machine()
        #expect(m.streamErrored(Garbage()) == .passOn)
        Self.readWebhook(&m, closesAfter: true)
        _ = m.answerReady(closesConnection: false)
        #expect(m.streamErrored(Garbage()) == .passOn)
    }

    // MARK: - Quiesce

    @Test("quiesce closes an idle connection at once")
    func quiesceIdle() {
        var m = Self.machine()
        #expect(m.quiesce() == .closeWhenSent)
        #expect(m.partRead("webhook", at: MockClock.at(.seconds(1))) == .drop)
    }

    @Test("quiesce while a webhook waits for the spool: its answer closes the connection")
    func quiesceWhileStoring() {
        var m = Self.machine()
        Self.readWebhook(&m)
        #expect(m.quiesce() == .none)
        #expect(m.answerReady(closesConnection: false) == .writeThenClose)
    }

    @Test("quiesce while the router owes an answer: that answer is the last, and the connection closes once it is sent")
    func quiesceWhileTheRouterAnswers() {
        var m = Self.machine()
        _ = m.partRead("router", at: MockClock.at(.seconds(1)))
        _ = m.headRead(.router(closesAfter: false))
        _ = m.endRead()
        #expect(m.quiesce() == .none)
        #expect(m.routerAnswerEnds() == .writeAsLast)
        _ = m.answerWritten(at: MockClock.at(.seconds(2)))
        #expect(Self.finishReplay(&m).then == .closeWhenSent)
    }

    @Test("quiesce during an upload the router already answered: the connection closes when the upload ends")
    func quiesceDuringAnAnsweredUpload() {
        var m = Self.machine()
        _ = m.partRead("router", at: MockClock.at(.seconds(1)))
        _ = m.headRead(.router(closesAfter: false))
        #expect(m.routerAnswerEnds() == .write)
        _ = m.answerWritten(at: MockClock.at(.seconds(1)))
        #expect(Self.finishReplay(&m).then == .scheduleIdleCheck(at: MockClock.at(.seconds(31))))
        #expect(m.quiesce() == .none)
        _ = m.partRead("body:10", at: MockClock.at(.seconds(2)))
        #expect(m.bodyRead(bytes: 10) == .passOn)
        _ = m.partRead("end", at: MockClock.at(.seconds(2)))
        #expect(m.endRead() == .passOn(thenClose: true))
        #expect(m.state == .closing(rest: nil))
    }

    // MARK: - Closed

    @Test("once the channel is gone nothing is read, answered or timed")
    func closed() {
        var m = Self.machine()
        Self.readWebhook(&m)
        m.channelInactive()
        #expect(m.partRead("router", at: MockClock.at(.seconds(2))) == .drop)
        #expect(m.answerReady(closesConnection: false) == .drop)
        #expect(m.idleCheckDue(at: MockClock.at(.seconds(100))) == .none)
        #expect(m.channelActive() == .none)
        #expect(m.quiesce() == .none)
    }

    // MARK: - Helpers

    /// A webhook read whole (head, 10 bytes, end) and admitted: its answer is due.
    static func readWebhook(_ m: inout Machine, closesAfter: Bool = false, at now: MockClock.Instant = MockClock.at(.seconds(1))) {
        #expect(m.partRead("webhook", at: now) == .handle)
        #expect(m.headRead(.webhook(closesAfter: closesAfter)) == .readWebhook)
        #expect(m.partRead("body:10", at: now) == .handle)
        #expect(m.bodyRead(bytes: 10) == .append)
        #expect(m.partRead("end", at: now) == .handle)
        #expect(m.endRead() == .admit)
    }

    /// Handles a part handed back, as the handler does.
    @discardableResult
    static func handle(_ m: inout Machine, _ part: String) -> String {
        switch part {
        case "router": return "\(m.headRead(.router(closesAfter: false)))"
        case "webhook": return "\(m.headRead(.webhook(closesAfter: false)))"
        case "unserved": return "\(m.headRead(.unservedMethod))"
        case "end": return "\(m.endRead())"
        default: return "\(m.bodyRead(bytes: Int(part.dropFirst(5)) ?? 0))"
        }
    }

    /// Hands out and handles waiting parts until the replay is done.
    static func replay(_ m: inout Machine, handed: inout [String]) -> Machine.AfterReplay {
        for _ in 0...Machine.maxWaitingParts + 1 {
            switch m.nextToReplay() {
            case .part(let part):
                handed.append(part)
                handle(&m, part)
            case .error:
                handed.append("error")
            case .done(let after):
                return after
            }
        }
        Issue.record("the replay did not end")
        return .init()
    }

    /// A replay in which nothing is expected to be handed out.
    static func finishReplay(_ m: inout Machine) -> Machine.AfterReplay {
        var handed: [String] = []
        let after = replay(&m, handed: &handed)
        #expect(handed.isEmpty)
        return after
    }
}
