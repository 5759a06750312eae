import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1

/// Answers POSTs to the webhook path on the connection's event loop, in the channel pipeline;
/// every other request passes on to Hummingbird's router.
///
/// Why not a router handler: the server's one event loop is what bounded it (85–90% busy at
/// 13,000 requests/s), and much of its time went to the async bridge between the pipeline and
/// the handler's task (NIOAsyncChannel's streams, the task, its continuations), not to the
/// webhook. Here a request is read, verified, queued for the spool and answered with plain
/// channel calls, and the spool's commit answers it from the loop. In alternating runs the
/// loop's CPU per request fell from 60–79 µs to 46–50 µs.
///
/// Answers leave in request order, whichever path gives them: a request that arrives before
/// the previous one is answered (HTTP pipelining) is held here, with further reads, until that
/// answer is written. NIO's `HTTPServerPipelineHandler` does the same, but it also stops and
/// restarts reading around every request (two `epoll_ctl` calls each, about 4% of the loop's
/// time); clients that do not pipeline (webhook senders, wrk) never pay for it here.
///
/// It sits right after NIO's HTTP/1 decoder and encoder, before the conversion to HTTPTypes
/// that the router needs: a webhook is read from NIO's own request parts and answered with
/// them. That conversion (building `HTTPFields` from `HTTPHeaders`, checking each field) was a
/// tenth of the event loop's time. Being first, it also keeps the connection's idle timeout and
/// graceful close, which Hummingbird's `HTTPConnectionStateHandler` keeps in its own channel:
/// that handler would see only the router's requests here.
final class WebhookRequestHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    enum State {
        case idle
        /// A request for the router: its parts pass on.
        case passing
        /// A webhook's body is being read.
        case reading(Webhook)
        /// Answered before its body was read (413, 503): the rest of the request is dropped.
        case discarding
        /// Read and admitted: the answer waits for the spool's commit.
        case storing
    }

    /// What waits its turn: a request part, or the decoder's error in its place in the stream
    /// (Hummingbird answers that 400 and closes, which must not overtake an answer due).
    enum Held {
        case part(HTTPServerRequestPart)
        case error(any Error)
    }

    struct Webhook {
        let start: ContinuousClock.Instant
        let version: HTTPVersion
        let headers: RequestHeaders
        let closeAfter: Bool
        var body: ByteBuffer?

        var reply: Reply { Reply(start: start, version: version, closeAfter: closeAfter) }
    }

    /// What a webhook's answer needs of its request.
    struct Reply {
        let start: ContinuousClock.Instant
        let version: HTTPVersion
        let closeAfter: Bool
    }

    let server: WebhookServer
    static let maxHeldParts = 1024
    /// POST takes webhooks; GET reaches the router (health, metrics, the path's 405).
    static let servedMethods: [HTTPMethod] = [.GET, .POST]
    /// The webhook path's components ("/webhooks/" and "//webhooks" match "/webhooks", as in
    /// Hummingbird's router).
    let pathComponents: [Substring]
    var state = State.idle
    /// The current request's `.end` has not been read yet.
    var requestOpen = false
    /// The current request's answer has not been written to its end yet.
    var awaitingAnswer = false
    /// Parts of requests that came before the current one was answered, in order.
    var held = CircularBuffer<Held>()
    /// The connection is ending after the current answer (it closes, or the client asked):
    /// whatever the client sends after that request is dropped, never admitted or stored.
    var closing = false
    /// The router's current request carries `Connection: close`.
    var routerRequestCloses = false
    /// A read withheld while `held` has parts: the socket is not read until they are handled.
    var readHeld = false
    /// Handling held parts (an answer written meanwhile must not start another round).
    var replaying = false
    /// A half-close that arrived while an answer was due or parts were held; passed on after.
    var inputClosedHeld = false
    var date = HTTPDate()
    /// A connection that reads nothing for this long, and owes no answer, is closed.
    let idleTimeout: TimeAmount
    /// When a request part was last read or an answer last written.
    var lastActive = NIODeadline.now()
    var idleCheck: Scheduled<Void>?
    /// The server is stopping: the connection closes once nothing is left to answer.
    var quiescing = false
    /// The last answer's end written while stopping: the connection closes when it is sent
    /// (writes complete in order, so every answer before it is sent too).
    var lastAnswerSent: EventLoopFuture<Void>?
    /// The channel is gone: no timer is scheduled for it any more.
    var inactive = false

    init(server: WebhookServer) {
        self.server = server
        pathComponents = server.options.path.split(separator: "/")
        idleTimeout = TimeAmount(server.options.idleTimeout)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { scheduleIdleCheck(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        scheduleIdleCheck(context: context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        inactive = true
        idleCheck?.cancel()
        idleCheck = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        lastActive = .now()
        if closing && !requestOpen { return }
        // A later request, read before this one's answer: it waits its turn.
        if mustWait {
            // Reads stop while parts wait, but one read can hold hundreds of tiny pipelined
            // requests; past this many parts the client is not a webhook sender.
            guard held.count < Self.maxHeldParts else {
                context.close(promise: nil)
                return
            }
            held.append(.part(part))
            return
        }
        handle(part, context: context)
    }

    private var mustWait: Bool { !held.isEmpty || (awaitingAnswer && !requestOpen) }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if mustWait && !closing {
            held.append(.error(error))
            return
        }
        context.fireErrorCaught(error)
    }

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            requestOpen = true
            awaitingAnswer = true
            guard Self.servedMethods.contains(head.method) else {
                // CONNECT would make the rest of the connection a tunnel the router never
                // answers properly, and TRACE would echo the request back: every method the
                // server does not serve gets a 405 with its length, and the connection closes.
                state = .discarding
                respond(server.methodNotAllowed(), to: Reply(start: .now, version: head.version, closeAfter: true), requestRead: false, context: context)
                return
            }
            guard head.method == .POST, isWebhookPath(head.uri) else {
                state = .passing
                // NIO's reading of `Connection` (a `close` token, or HTTP/1.0 without keep-alive).
                routerRequestCloses = !head.isKeepAlive
                context.fireChannelRead(wrapInboundOut(part))
                return
            }
            // `isKeepAlive` also covers HTTP/1.0, which closes unless asked not to.
            let webhook = Webhook(start: .now, version: head.version, headers: RequestHeaders(head.headers), closeAfter: !head.isKeepAlive)
            if let answer = server.refuseBeforeBody(webhook.headers) {
                state = .discarding
                respond(answer, to: webhook.reply, requestRead: false, context: context)
            } else {
                state = .reading(webhook)
            }
        case .body(let chunk):
            switch state {
            case .passing:
                context.fireChannelRead(wrapInboundOut(part))
            case .reading(var webhook):
                // Counted while reading (a chunked body has no declared length): past the
                // limit, 413.
                let size = (webhook.body?.readableBytes ?? 0) + chunk.readableBytes
                guard size <= server.options.maxBody else {
                    state = .discarding
                    respond(server.tooLarge(), to: webhook.reply, requestRead: false, context: context)
                    return
                }
                state = .idle  // drops the state's reference, so the append below does not copy
                if webhook.body == nil { webhook.body = chunk } else { webhook.body!.writeImmutableBuffer(chunk) }
                state = .reading(webhook)
            case .idle, .discarding, .storing:
                break
            }
        case .end:
            requestOpen = false
            // Answered before its end was read (a 404 to an upload, say): nothing is left.
            defer { if quiescing && !busy && !closing { closeWhenSent(context: context) } }
            switch state {
            case .passing:
                state = .idle
                context.fireChannelRead(wrapInboundOut(part))
            case .reading(let webhook):
                state = .storing
                admit(webhook, context: context)
            case .discarding:
                state = .idle
            case .idle, .storing:
                break
            }
        }
    }

    private func admit(_ webhook: Webhook, context: ChannelHandlerContext) {
        let body = webhook.body.map { Array($0.readableBytesView) } ?? []
        let reply = webhook.reply
        switch server.admit(body: body, headers: webhook.headers) {
        case .answer(let answer):
            state = .idle
            respond(answer, to: reply, requestRead: true, context: context)
        case .store(let item, let id, let parsedBody):
            // The completion holds only what the answer needs: the body's buffer (a slice of
            // the decoder's, which can be much larger) is let go now, not after the commit.
            let loop = context.eventLoop
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            let server = server
            let itemBytes = WebhookServer.queuedSize(item, parsedBody)
            server.writer.append(item, body: parsedBody, on: loop) { outcome in
                let (handler, context) = bound.value
                handler.state = .idle
                handler.respond(server.stored(outcome, id: id, itemBytes: itemBytes), to: reply, requestRead: true, context: context)
            }
        }
    }

    /// The router's answers pass here on their way out: the end of one lets the next request in.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        // The connection ends after a request that asked to close (Hummingbird closes too,
        // but only for an exact `Connection: close`, not for HTTP/1.0).
        guard quiescing || routerRequestCloses else {
            context.write(data, promise: promise)
            answerWritten(context: context)
            return
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        if let promise { written.futureResult.cascade(to: promise) }
        context.write(data, promise: written)
        if routerRequestCloses {
            closing = true
            let channel = context.channel
            context.flush()
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        } else {
            lastAnswerSent = written.futureResult
        }
        answerWritten(context: context)
    }

    /// Reads stop only while parts are held, so at most one read's worth ever waits here.
    func read(context: ChannelHandlerContext) {
        if held.isEmpty { context.read() } else { readHeld = true }
    }

    /// A client that sends its webhook and then shuts down its side of the connection still
    /// waits for the answer. Passed on while the answer waits for the spool (or while requests
    /// wait their turn here), the half-close would end Hummingbird's read loop, which then
    /// closes the connection before the 202.
    ///
    /// The server stopping (`ChannelShouldQuiesceEvent`) closes an idle connection at once and a
    /// busy one after its last answer, as `HTTPConnectionStateHandler` does.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            quiescing = true
            if !busy { closeWhenSent(context: context) }
            return
        }
        if let event = event as? ChannelEvent, event == .inputClosed, mustHoldInputClosed {
            inputClosedHeld = true
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// A request is being read, or waits for its answer, or waits its turn.
    private var busy: Bool { requestOpen || awaitingAnswer || !held.isEmpty }

    /// Closes the connection once the last answer written while stopping is sent (at once when
    /// there is none: answers written before are flushed first, as Hummingbird does).
    private func closeWhenSent(context: ChannelHandlerContext) {
        let channel = context.channel
        context.flush()
        if let sent = lastAnswerSent {
            sent.whenComplete { _ in channel.close(promise: nil) }
        } else {
            channel.close(promise: nil)
        }
    }

    private func scheduleIdleCheck(context: ChannelHandlerContext) {
        guard idleCheck == nil, !inactive else { return }
        idleCheck = context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(deadline: lastActive + idleTimeout) { [self] in
            idleCheck = nil
            idleCheckDue(context: context)
        }
    }

    /// A connection waiting for an answer is never idle (the answer's end checks again); one
    /// that has read nothing for the timeout, in or between requests, is closed.
    private func idleCheckDue(context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        if awaitingAnswer && !requestOpen { return }
        if NIODeadline.now() >= lastActive + idleTimeout {
            context.close(promise: nil)
        } else {
            scheduleIdleCheck(context: context)
        }
    }

    private var mustHoldInputClosed: Bool {
        if !held.isEmpty { return true }
        if case .storing = state { return true }
        return false
    }

    func channelInactive(context: ChannelHandlerContext) {
        held.removeAll()
        inactive = true
        idleCheck?.cancel()
        idleCheck = nil
        context.fireChannelInactive()
    }

    /// The current request's answer is written: requests held meanwhile are handled now, in
    /// order, until one waits for its answer again.
    private func answerWritten(context: ChannelHandlerContext) {
        awaitingAnswer = false
        lastActive = .now()
        guard !replaying else { return }
        replaying = true
        var replayed = false
        while !closing, !(awaitingAnswer && !requestOpen), let next = held.popFirst() {
            switch next {
            case .part(let part):
                handle(part, context: context)
                replayed = true
            case .error(let error):
                // The stream is broken from here on: the router answers 400 and closes.
                context.fireErrorCaught(error)
                replayed = true
                held.removeAll()
            }
        }
        if closing { held.removeAll() }
        replaying = false
        // The async channel hands what it was given (parts, or the error) to the router at the
        // end of a read.
        if replayed { context.fireChannelReadComplete() }
        if held.isEmpty && readHeld {
            readHeld = false
            context.read()
        }
        if inputClosedHeld && !mustHoldInputClosed {
            inputClosedHeld = false
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
        if quiescing && !busy && !closing {
            closeWhenSent(context: context)
            return
        }
        // Also while the next request is being read (a client that stalls in it is idle), and
        // while stopping.
        scheduleIdleCheck(context: context)
    }

    /// `requestRead`: the whole request has been read. An answer given before that (413, or
    /// 503 while stopping) that closes the connection closes only the output at first: closing
    /// a socket with unread input makes the kernel send a reset, which can destroy the answer
    /// before the client reads it.
    private func respond(_ answer: WebhookAnswer, to webhook: Reply, requestRead: Bool, context: ChannelHandlerContext) {
        var headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", String(answer.body.count)),
                                   ("Date", date.now()), ("Server", "lymph")])
        if let retryAfter = answer.retryAfter { headers.add(name: "Retry-After", value: retryAfter) }
        if let allow = answer.allow { headers.add(name: "Allow", value: allow) }
        // While stopping, the client is told the connection ends with this answer.
        let closes = answer.closesConnection || webhook.closeAfter || quiescing
        if closes {
            headers.add(name: "Connection", value: "close")
        } else if webhook.version == .http1_0 {
            headers.add(name: "Connection", value: "keep-alive")
        }
        let status = HTTPResponseStatus(statusCode: answer.status.code, reasonPhrase: answer.status.reasonPhrase)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: webhook.version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: answer.body)))), promise: nil)
        server.answered(status: answer.status, since: webhook.start)
        guard closes else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            answerWritten(context: context)
            return
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        closing = true
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        awaitingAnswer = false
        held.removeAll()
        let channel = context.channel
        if requestRead {
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        } else {
            // The client sees the end of the answer; what it still sends is never read into
            // memory, and the connection is dropped two seconds later.
            written.futureResult.whenComplete { _ in
                channel.close(mode: .output, promise: nil)
                channel.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
            }
        }
    }

    private func isWebhookPath(_ target: String) -> Bool {
        // The path exactly as configured (what senders use) without splitting it.
        if target == server.options.path { return true }
        var target = target[...]
        // The absolute form (`http://host:port/webhooks`), which a proxy may send.
        if !target.hasPrefix("/"), let scheme = target.range(of: "://") {
            let rest = target[scheme.upperBound...]
            target = rest.firstIndex(of: "/").map { rest[$0...] } ?? "/"
        }
        let path = target.utf8.firstIndex(of: UInt8(ascii: "?")).map { target[..<$0] } ?? target[...]
        return path.split(separator: "/").elementsEqual(pathComponents)
    }
}
