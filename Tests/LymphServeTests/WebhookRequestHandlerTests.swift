import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import LymphServe

/// `WebhookRequestHandler` in an `EmbeddedChannel`: request parts in as NIO's decoder gives them,
/// answers out as they would reach NIO's encoder, the router and the socket recorded, the spool
/// faked, and time the embedded loop's own.
@Suite("WebhookRequestHandler")
struct WebhookRequestHandlerTests {
    @Test("a webhook is stored and answered 202 once its commit comes; the connection stays open")
    func webhookAnswered() throws {
        let h = try HandlerHarness()
        try h.read(Request.webhook("evt_1"))
        #expect(h.intake.admitted == ["evt_1"])
        #expect(try h.answers().isEmpty)
        h.intake.commitOldest()
        let answers = try h.answers()
        #expect(answers.map(\.status) == [202])
        #expect(answers.first?.body.contains(#""accepted":"evt_1""#) == true)
        #expect(answers.first?.ended == true && answers.first?.closes == false)
        #expect(h.intake.answered == [202])
        #expect(h.isOpen)
    }

    @Test("pipelined requests wait for the answer due before them: answers leave in request order, webhooks and router requests alike")
    func pipeliningKeepsOrder() throws {
        let h = try HandlerHarness()
        // One read holds a webhook, a router request and another webhook.
        try h.read(Request.webhook("evt_a") + Request.get("/healthz") + Request.webhook("evt_b"))
        #expect(h.intake.admitted == ["evt_a"])
        #expect(h.router.events == [.readComplete])
        // The first webhook's commit: its 202, then the router's request goes on.
        h.intake.commitOldest()
        #expect(try h.answers().map(\.status) == [202])
        #expect(h.router.events == [.readComplete, .head("GET /healthz"), .end, .readComplete])
        #expect(h.intake.admitted == ["evt_a"])
        // The router's answer lets the second webhook in.
        try h.routerAnswers(.ok, body: "ok")
        #expect(try h.answers().map(\.status) == [200])
        #expect(h.intake.admitted == ["evt_a", "evt_b"])
        h.intake.commitOldest()
        let last = try h.answers()
        #expect(last.map(\.status) == [202])
        #expect(last.first?.body.contains("evt_b") == true)
    }

    @Test("reads stop while parts wait, and resume once they are all handled")
    func readsHeldWhileWaiting() throws {
        let h = try HandlerHarness()
        try h.read(Request.webhook("evt_a") + Request.webhook("evt_b"))
        let before = h.socket.reads
        h.requestRead()
        #expect(h.socket.reads == before)
        h.intake.commitOldest()
        // evt_b is handed out (and waits for the spool): the held read goes out.
        #expect(h.intake.admitted == ["evt_a", "evt_b"])
        #expect(h.socket.reads == before + 1)
        h.requestRead()
        #expect(h.socket.reads == before + 2)
    }

    @Test("a client that sends without reading its answers: reads stop while the channel is not writable, and resume when it is")
    func readsHeldWhileAnswersPileUp() throws {
        let h = try HandlerHarness()
        // The channel says its buffer of answers is full: the client reads none of them.
        h.channel.isWritable = false
        h.channel.pipeline.fireChannelWritabilityChanged()
        let before = h.socket.reads
        h.requestRead()
        h.requestRead()
        #expect(h.socket.reads == before)
        h.channel.isWritable = true
        h.channel.pipeline.fireChannelWritabilityChanged()
        #expect(h.socket.reads == before + 1)
        h.requestRead()
        #expect(h.socket.reads == before + 2)
        #expect(h.isOpen)
    }

    @Test("1,024 parts may wait behind an answer; one more closes the connection, and none reaches the router")
    func floodClosesTheConnection() throws {
        let h = try HandlerHarness()
        try h.read(Request.webhook("evt_flood"))
        var parts: [HTTPServerRequestPart] = []
        for _ in 0..<512 { parts += Request.get("/healthz") }
        try h.read(parts)
        #expect(h.isOpen)
        try h.read([Request.head(.GET, "/healthz")])
        #expect(!h.isOpen)
        #expect(!h.router.events.contains { if case .head = $0 { true } else { false } })
    }

    @Test("a webhook sent with Connection: close gets the last answer; the connection closes once it is written, and what follows is never admitted")
    func connectionCloseOnAWebhook() throws {
        let h = try HandlerHarness()
        try h.read(Request.webhook("evt_last", headers: [("connection", "close")]) + Request.webhook("evt_after"))
        h.intake.commitOldest()
        let answers = try h.answers()
        #expect(answers.map(\.status) == [202])
        #expect(answers.first?.closes == true)
        #expect(!h.isOpen)
        #expect(h.intake.admitted == ["evt_last"])
    }

    @Test("a router request with Connection: close: the connection closes once the router's answer is written")
    func connectionCloseOnARouterRequest() throws {
        let h = try HandlerHarness()
        try h.read(Request.get("/healthz", headers: [("connection", "close")]) + Request.webhook("evt_after"))
        #expect(h.isOpen)
        try h.routerAnswers()
        #expect(try h.answers().map(\.status) == [200])
        #expect(!h.isOpen)
        #expect(h.intake.admitted.isEmpty)
    }

    @Test("HTTP/1.0: a webhook without keep-alive is answered with Connection: close and the connection closes; with keep-alive it is told so and stays")
    func http10() throws {
        let plain = try HandlerHarness()
        try plain.read(Request.webhook("evt_http10", version: .http1_0))
        plain.intake.commitOldest()
        let closing = try plain.answers()
        #expect(closing.map(\.status) == [202] && closing.first?.closes == true)
        #expect(!plain.isOpen)

        let kept = try HandlerHarness()
        try kept.read(Request.webhook("evt_http10_ka", version: .http1_0, headers: [("connection", "keep-alive")]))
        kept.intake.commitOldest()
        let answer = try kept.answers().first
        #expect(answer?.status == 202)
        #expect(answer?.headers["connection"] == ["keep-alive"])
        #expect(kept.isOpen)
    }

    @Test("a client that half-closes after its webhook still gets the 202: the half-close reaches the router only after it")
    func halfCloseWaitsForTheAnswer() throws {
        let h = try HandlerHarness()
        try h.read(Request.webhook("evt_half"))
        h.fire(ChannelEvent.inputClosed)
        #expect(!h.router.events.contains(.inputClosed))
        h.intake.commitOldest()
        #expect(try h.answers().map(\.status) == [202])
        #expect(h.router.events.last == .inputClosed)
    }

    @Test("two pipelined webhooks, then a half-close: both are answered in order, then the half-close passes on")
    func halfCloseAfterPipelinedWebhooks() throws {
        let h = try HandlerHarness()
        try h.read(Request.webhook("evt_halfA") + Request.webhook("evt_halfB"))
        h.fire(ChannelEvent.inputClosed)
        h.intake.commitOldest()
        #expect(!h.router.events.contains(.inputClosed))
        h.intake.commitOldest()
        let answers = try h.answers()
        #expect(answers.map(\.status) == [202, 202])
        #expect(answers.map { $0.body.contains("evt_halfA") } == [true, false])
        #expect(answers.map { $0.body.contains("evt_halfB") } == [false, true])
        #expect(h.router.events.last == .inputClosed)
    }

    @Test("a half-close between requests passes on at once")
    func halfCloseWhenIdle() throws {
        let h = try HandlerHarness()
        h.fire(ChannelEvent.inputClosed)
        #expect(h.router.events == [.inputClosed])
    }

    @Test("the decoder's error waits behind the answer due: the webhook's 202 is written before the router sees the error")
    func decoderErrorWaitsItsTurn() throws {
        struct Garbage: Error {}
        let h = try HandlerHarness()
        try h.read(Request.webhook("evt_before_garbage"))
        h.channel.pipeline.syncOperations.fireErrorCaught(Garbage())
        #expect(!h.router.events.contains(.error))
        h.intake.commitOldest()
        #expect(try h.answers().map(\.status) == [202])
        #expect(Array(h.router.events.suffix(2)) == [.error, .readComplete])
    }

    @Test("idle timeout: a keep-alive connection left idle after its answer is closed when the timeout has passed, not before")
    func idleAfterAnswer() throws {
        let h = try HandlerHarness(idleTimeout: .seconds(1))
        try h.read(Request.webhook("evt_idle"))
        h.intake.commitOldest()
        #expect(try h.answers().map(\.status) == [202])
        h.advanceTime(by: .milliseconds(999))
        #expect(h.isOpen)
        h.advanceTime(by: .milliseconds(1))
        #expect(!h.isOpen)
    }

    @Test("idle timeout: a connection stalled inside a request (a head and no body) is closed; nothing is admitted")
    func idleInsideARequest() throws {
        let h = try HandlerHarness(idleTimeout: .seconds(1))
        h.advanceTime(by: .milliseconds(500))
        try h.read([Request.webhook("evt_stalled")[0]])
        h.advanceTime(by: .milliseconds(999))
        #expect(h.isOpen)
        h.advanceTime(by: .milliseconds(1))
        #expect(!h.isOpen)
        #expect(h.intake.admitted.isEmpty)
    }

    @Test("idle timeout: a connection that owes an answer is not idle, however long the spool takes")
    func notIdleWhileOwingAnAnswer() throws {
        let h = try HandlerHarness(idleTimeout: .seconds(1))
        try h.read(Request.webhook("evt_slow_disk"))
        h.advanceTime(by: .seconds(10))
        #expect(h.isOpen)
        h.intake.commitOldest()
        #expect(try h.answers().map(\.status) == [202])
        h.advanceTime(by: .seconds(1))
        #expect(!h.isOpen)
    }

    @Test("quiesce closes an idle connection at once")
    func quiesceIdle() throws {
        let h = try HandlerHarness()
        try h.read(Request.webhook("evt_q"))
        h.intake.commitOldest()
        _ = try h.answers()
        h.fire(ChannelShouldQuiesceEvent())
        #expect(!h.isOpen)
    }

    @Test("quiesce while a webhook waits for the spool: its 202 says Connection: close, and the connection closes once it is written")
    func quiesceWhileStoring() throws {
        let h = try HandlerHarness()
        try h.read(Request.webhook("evt_in_flight"))
        h.fire(ChannelShouldQuiesceEvent())
        #expect(h.isOpen)
        h.intake.commitOldest()
        let answers = try h.answers()
        #expect(answers.map(\.status) == [202] && answers.first?.closes == true)
        #expect(!h.isOpen)
    }

    @Test("quiesce while the router owes an answer: the connection closes once that answer is written")
    func quiesceWhileTheRouterAnswers() throws {
        let h = try HandlerHarness()
        try h.read(Request.get("/metrics"))
        h.fire(ChannelShouldQuiesceEvent())
        #expect(h.isOpen)
        try h.routerAnswers()
        #expect(try h.answers().map(\.status) == [200])
        #expect(!h.isOpen)
    }

    @Test("quiesce during an upload the router answered before its end: the connection closes when the upload ends")
    func quiesceDuringAnAnsweredUpload() throws {
        let h = try HandlerHarness()
        try h.read([Request.head(.POST, "/elsewhere", headers: [("content-length", "2000")]), .body(ByteBuffer(repeating: 0x78, count: 1000))])
        try h.routerAnswers(.notFound)
        h.fire(ChannelShouldQuiesceEvent())
        #expect(h.isOpen)
        try h.read([.body(ByteBuffer(repeating: 0x78, count: 1000)), .end(nil)])
        #expect(!h.isOpen)
        #expect(h.router.events.filter { $0 != .readComplete } == [.head("POST /elsewhere"), .body(1000), .body(1000), .end])
    }

    @Test("a body over max_body is answered 413 before the rest is read: the output closes once it is written, the connection 2 s later")
    func bodyTooLarge() throws {
        let h = try HandlerHarness(maxBody: 10)
        try h.read([Request.head(.POST, "/webhooks", headers: [("transfer-encoding", "chunked")]), .body(ByteBuffer(string: "123456"))])
        try h.read([.body(ByteBuffer(string: "123456"))])
        let answers = try h.answers()
        #expect(answers.map(\.status) == [413])
        #expect(answers.first?.closes == true)
        #expect(answers.first?.body.contains("max_body") == true)
        #expect(h.socket.closes == [.output])
        try h.read([.body(ByteBuffer(string: "more")), .end(nil)] + Request.webhook("evt_after"))
        #expect(h.intake.admitted.isEmpty)
        h.advanceTime(by: .milliseconds(1999))
        #expect(h.isOpen)
        h.advanceTime(by: .milliseconds(1))
        #expect(!h.isOpen)
    }

    @Test("a webhook refused before its body (503 while stopping) keeps a keep-alive connection: the rest of its body is dropped and the next request handled")
    func refusedBeforeTheBody() throws {
        let h = try HandlerHarness()
        h.intake.refuse(with: WebhookAnswer(.serviceUnavailable, ["error": "shutting_down"], retryAfter: "5"))
        try h.read(Request.webhook("evt_refused"))
        let answers = try h.answers()
        #expect(answers.map(\.status) == [503])
        #expect(answers.first?.headers["retry-after"] == ["5"])
        #expect(answers.first?.closes == false)
        #expect(h.intake.admitted.isEmpty)
        h.intake.refuse(with: nil)
        try h.read(Request.webhook("evt_next"))
        #expect(h.intake.admitted == ["evt_next"])
    }

    @Test(
        "methods the server does not serve get 405 with Allow and a length; the output closes once it is written",
        arguments: [HTTPMethod.PUT, .DELETE, .OPTIONS, .PATCH, .TRACE])
    func unservedMethods(_ method: HTTPMethod) throws {
        let h = try HandlerHarness()
        try h.read([Request.head(method, "/webhooks", headers: [("content-length", "0")]), .end(nil)])
        let answers = try h.answers()
        #expect(answers.map(\.status) == [405])
        let answer = try #require(answers.first)
        #expect(answer.headers["allow"] == ["GET, POST"])
        #expect(answer.headers["content-length"] == [String(answer.body.utf8.count)])
        #expect(answer.closes && answer.ended)
        #expect(h.socket.closes == [.output])
        #expect(h.router.events == [.readComplete])
    }

    @Test("an answer the handler gives at once (400) lets the next pipelined request in")
    func immediateAnswerKeepsTheLineMoving() throws {
        let h = try HandlerHarness()
        try h.read(Request.webhook("evt_first") + Request.webhook("not json") + Request.get("/healthz"))
        h.intake.commitOldest()
        #expect(try h.answers().map(\.status) == [202, 400])
        #expect(h.router.events.filter { $0 != .readComplete } == [.head("GET /healthz"), .end])
    }

    @Test("Expect: 100-continue is answered 100 Continue at once, before the body comes; the webhook is then read and answered as any other")
    func expectContinue() throws {
        let h = try HandlerHarness()
        let parts = Request.webhook("evt_continue", headers: [("expect", "100-Continue")])
        try h.read([parts[0]])
        let interim = try h.answers()
        #expect(interim.map(\.status) == [100])
        #expect(interim.first?.ended == false && interim.first?.body == "")
        try h.read(Array(parts.dropFirst()))
        #expect(h.intake.admitted == ["evt_continue"])
        h.intake.commitOldest()
        #expect(try h.answers().map(\.status) == [202])
        #expect(h.isOpen)
    }

    @Test("HTTP/1.0's Expect is ignored: no 100 Continue, the webhook is read")
    func expectIgnoredForHTTP10() throws {
        let h = try HandlerHarness()
        try h.read(Request.webhook("evt_old", version: .http1_0, headers: [("expect", "100-continue"), ("connection", "keep-alive")]))
        #expect(h.intake.admitted == ["evt_old"])
        h.intake.commitOldest()
        #expect(try h.answers().map(\.status) == [202])
    }

    @Test("a webhook refused before its body that waited for 100 Continue gets no 100, and the connection closes: the client may or may not send the body")
    func expectContinueRefused() throws {
        let h = try HandlerHarness()
        h.intake.refuse(with: WebhookAnswer(.serviceUnavailable, ["error": "shutting_down"], retryAfter: "5"))
        try h.read([Request.webhook("evt_wait", headers: [("expect", "100-continue")])[0]])
        let answers = try h.answers()
        #expect(answers.map(\.status) == [503])
        #expect(answers.first?.closes == true)
        #expect(h.socket.closes == [.output])
    }

    @Test(
        "a webhook's head asking for what the server does not do is answered before its body, with a reason",
        arguments: [
            ([("transfer-encoding", "gzip, chunked")], 501, "unsupported_transfer_coding", true),
            ([("content-length", "12"), ("content-encoding", "gzip")], 415, "unsupported_content_coding", false),
            ([("content-length", "12"), ("expect", "200-ok")], 417, "expectation_failed", true),
            ([], 411, "length_required", false),
        ])
    func refusedHeads(_ headers: [(String, String)], _ status: Int, _ reason: String, _ closes: Bool) throws {
        let h = try HandlerHarness()
        try h.read([Request.head(.POST, "/webhooks", headers: headers)])
        let answers = try h.answers()
        #expect(answers.map(\.status) == [status])
        #expect(answers.first?.body.contains(#""error":"\#(reason)""#) == true)
        #expect(answers.first?.closes == closes)
        #expect(h.intake.admitted.isEmpty)
        if status == 415 { #expect(answers.first?.headers["accept-encoding"] == ["identity"]) }
        guard !closes else { return }
        // The rest of that request is dropped; the next one is read.
        try h.read((status == 411 ? [] : [.body(ByteBuffer(string: "123456789012"))]) + [.end(nil)] + Request.webhook("evt_next"))
        #expect(h.intake.admitted == ["evt_next"])
    }

    @Test("a chunked webhook, and one whose Content-Encoding says identity, are read as before")
    func acceptedCodings() throws {
        let h = try HandlerHarness()
        try h.read([
            Request.head(.POST, "/webhooks", headers: [("Transfer-Encoding", " Chunked ")]), .body(ByteBuffer(string: "evt_chunked")), .end(nil),
        ])
        #expect(h.intake.admitted == ["evt_chunked"])
        h.intake.commitOldest()
        try h.read(Request.webhook("evt_identity", headers: [("content-encoding", "identity")]))
        h.intake.commitOldest()
        #expect(h.intake.admitted == ["evt_chunked", "evt_identity"])
        #expect(try h.answers().map(\.status) == [202, 202])
    }
}
