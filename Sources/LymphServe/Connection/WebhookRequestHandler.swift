import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1

/// Answers POSTs to the webhook path on the connection's event loop, in the channel pipeline;
/// every other request passes on to Hummingbird's router.
///
/// Why a channel handler and not a route: the server's event loop is what bounds it, and a
/// route pays for the async bridge between the pipeline and the handler's task (NIOAsyncChannel's
/// streams, the task, its continuations) on every request. Here a request is read, verified,
/// queued for the spool and answered with plain channel calls, and the spool's commit answers it
/// from the loop.
///
/// It sits right after NIO's HTTP/1 decoder and encoder, before the conversion to HTTPTypes
/// that the router needs: a webhook is read from NIO's own request parts and answered with
/// them, without building `HTTPFields` from `HTTPHeaders` and checking each field. Being first,
/// it also keeps the connection's rules for both paths, which Hummingbird's
/// `HTTPConnectionStateHandler` keeps in its own channel (that handler would see only the
/// router's requests here): the order of answers under pipelining, `Connection: close`, the
/// half-close, the idle timeout and graceful close. Those rules are `ConnectionStateMachine`'s;
/// this handler tells it what the channel sees and carries out what it answers. It keeps
/// requests in order itself rather than with NIO's `HTTPServerPipelineHandler`, which stops and
/// restarts reading around every request (two `epoll_ctl` calls each): here only a client that
/// pipelines pays.
///
/// The intake decides on each webhook and stores it (`WebhookServer`; a fake in tests). It is
/// held as an existential, not a generic parameter: NIO calls a handler through its protocol
/// witnesses, and a generic class's witnesses run unspecialized, looking up generic metadata
/// on every part read.
final class WebhookRequestHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart
    typealias StateMachine = ConnectionStateMachine<HTTPServerRequestPart, LoopInstant>

    /// The webhook being read.
    struct Webhook {
        let start: ContinuousClock.Instant
        let version: HTTPVersion
        let headers: RequestHeaders
        var body: ByteBuffer?

        var reply: Reply { Reply(start: start, version: version) }

        mutating func append(_ chunk: ByteBuffer) {
            if body == nil { body = chunk } else { body!.writeImmutableBuffer(chunk) }
        }
    }

    /// What an answer needs of its request.
    struct Reply {
        let start: ContinuousClock.Instant
        let version: HTTPVersion
    }

    let intake: any WebhookIntake
    let path: String
    /// The webhook path's components ("/webhooks/" and "//webhooks" match "/webhooks", as in
    /// Hummingbird's router).
    let pathComponents: [Substring]
    var machine: StateMachine
    var webhook: Webhook?
    var date = HTTPDate()
    var idleCheck: Scheduled<Void>?
    /// The last answer's end written while stopping: the connection closes when it is sent
    /// (writes complete in order, so every answer before it is sent too).
    var lastAnswerSent: EventLoopFuture<Void>?

    /// `now`: the event loop's time when the connection was accepted.
    init(intake: any WebhookIntake, path: String, maxBody: Int, idleTimeout: Duration, now: NIODeadline) {
        self.intake = intake
        self.path = path
        pathComponents = path.split(separator: "/")
        machine = StateMachine(idleTimeout: idleTimeout, maxBody: maxBody, now: LoopInstant(now))
    }

    private func now(_ context: ChannelHandlerContext) -> LoopInstant { LoopInstant(context.eventLoop.now) }

    // MARK: - The channel

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { channelIsActive(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        channelIsActive(context: context)
        context.fireChannelActive()
    }

    private func channelIsActive(context: ChannelHandlerContext) {
        switch machine.channelActive() {
        case .scheduleIdleCheck(let deadline): scheduleIdleCheck(at: deadline, context: context)
        case .none: break
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        machine.channelInactive()
        cancelIdleCheck()
    }

    func channelInactive(context: ChannelHandlerContext) {
        machine.channelInactive()
        cancelIdleCheck()
        context.fireChannelInactive()
    }

    // MARK: - Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch machine.partRead(part, at: now(context)) {
        case .handle: handle(part, context: context)
        case .wait, .drop: break
        case .close: context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch machine.streamErrored(error) {
        case .passOn: context.fireErrorCaught(error)
        case .wait: break
        }
    }

    func read(context: ChannelHandlerContext) {
        switch machine.readRequested() {
        case .read: context.read()
        case .hold: break
        }
    }

    /// Reads are held while answers wait in the channel's buffer (see `ConnectionStateMachine`).
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        switch machine.writabilityChanged(isWritable: context.channel.isWritable) {
        case .read: context.read()
        case .hold: break
        }
        context.fireChannelWritabilityChanged()
    }

    /// The half-close and the server's quiesce go to the state machine; other events pass on.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            switch machine.quiesce() {
            case .closeWhenSent: closeWhenSent(context: context)
            case .none: break
            }
            return
        }
        if let event = event as? ChannelEvent, event == .inputClosed {
            switch machine.inputClosed() {
            case .passOn: break
            case .wait: return
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Handles a part read now, or one whose turn has come.
    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            let kind: StateMachine.Head
            // POST takes webhooks; GET reaches the router (health, metrics, the path's 405).
            if head.method != .POST && head.method != .GET {
                kind = .unservedMethod
            } else if head.method == .POST, isWebhookPath(head.uri) {
                // `isKeepAlive` also covers HTTP/1.0, which closes unless asked not to.
                kind = .webhook(closesAfter: !head.isKeepAlive)
            } else {
                kind = .router(closesAfter: !head.isKeepAlive)
            }
            switch machine.headRead(kind) {
            case .passOn:
                context.fireChannelRead(wrapInboundOut(part))
            case .readWebhook:
                let webhook = Webhook(start: .now, version: head.version, headers: RequestHeaders(head.headers))
                let expects = head.version.atLeastHTTP11 && webhook.headers.expect != nil
                if var answer = WebhookAnswer.refusing(webhook.headers, version: head.version) ?? intake.refuseBeforeBody(webhook.headers) {
                    // A client that waits to be told to send its body may send it or not once it is
                    // refused: what follows on the connection cannot be told apart from a request.
                    if expects { answer.closesConnection = true }
                    respond(answer, to: webhook.reply, context: context)
                } else {
                    // Told at once, rather than after the second or so a client waits before it
                    // sends the body anyway (curl, for a large body).
                    if expects {
                        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
                    }
                    self.webhook = webhook
                }
            case .refuse:
                respond(.methodNotAllowed, to: Reply(start: .now, version: head.version), context: context)
            }
        case .body(let chunk):
            switch machine.bodyRead(bytes: chunk.readableBytes) {
            case .passOn:
                context.fireChannelRead(wrapInboundOut(part))
            case .append:
                webhook?.append(chunk)
            case .tooLarge:
                guard let reply = webhook?.reply else { return }
                webhook = nil
                respond(.tooLarge(maxBody: machine.maxBody), to: reply, context: context)
            case .drop:
                break
            }
        case .end:
            switch machine.endRead() {
            case .passOn(let thenClose):
                context.fireChannelRead(wrapInboundOut(part))
                if thenClose { closeWhenSent(context: context) }
            case .admit:
                guard let webhook else { return }
                self.webhook = nil
                admit(webhook, context: context)
            case .drop(let thenClose):
                if thenClose { closeWhenSent(context: context) }
            }
        }
    }

    private func admit(_ webhook: Webhook, context: ChannelHandlerContext) {
        let body = webhook.body.map { Array($0.readableBytesView) } ?? []
        let reply = webhook.reply
        switch intake.admit(body: body, headers: webhook.headers) {
        case .answer(let answer):
            respond(answer, to: reply, context: context)
        case .store(let item, let id, let parsedBody):
            // The completion holds only what the answer needs: the body's buffer (a slice of
            // the decoder's, which can be much larger) is let go now, not after the commit.
            let loop = context.eventLoop
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            let intake = intake
            let itemBytes = WebhookServer.queuedSize(item, parsedBody)
            intake.append(item, body: parsedBody, on: loop) { outcome in
                let (handler, context) = bound.value
                handler.respond(intake.stored(outcome, id: id, itemBytes: itemBytes), to: reply, context: context)
            }
        }
    }

    // MARK: - Answering

    /// The router's answers pass here on their way out: the end of one lets the next request in.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        switch machine.routerAnswerEnds() {
        case .write:
            context.write(data, promise: promise)
        case .writeThenClose:
            let written = context.eventLoop.makePromise(of: Void.self)
            if let promise { written.futureResult.cascade(to: promise) }
            context.write(data, promise: written)
            let channel = context.channel
            context.flush()
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        case .writeAsLast:
            let written = context.eventLoop.makePromise(of: Void.self)
            if let promise { written.futureResult.cascade(to: promise) }
            context.write(data, promise: written)
            lastAnswerSent = written.futureResult
        }
        answerWritten(context: context)
    }

    /// Writes one of the handler's own answers, in the way the state machine says.
    private func respond(_ answer: WebhookAnswer, to reply: Reply, context: ChannelHandlerContext) {
        let action = machine.answerReady(closesConnection: answer.closesConnection)
        intake.answered(status: answer.status, since: reply.start)
        let closes: Bool
        switch action {
        case .write: closes = false
        case .writeThenClose, .writeThenCloseOutput: closes = true
        case .drop: return
        }
        var headers = HTTPHeaders([
            ("Content-Type", "application/json"), ("Content-Length", String(answer.body.count)),
            ("Date", date.now()), ("Server", "lymph"),
        ])
        if let retryAfter = answer.retryAfter { headers.add(name: "Retry-After", value: retryAfter) }
        if let allow = answer.allow { headers.add(name: "Allow", value: allow) }
        if let codings = answer.acceptEncoding { headers.add(name: "Accept-Encoding", value: codings) }
        if closes {
            headers.add(name: "Connection", value: "close")
        } else if reply.version == .http1_0 {
            headers.add(name: "Connection", value: "keep-alive")
        }
        let status = HTTPResponseStatus(statusCode: answer.status.code, reasonPhrase: answer.status.reasonPhrase)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: reply.version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: answer.body)))), promise: nil)
        guard closes else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            answerWritten(context: context)
            return
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        let channel = context.channel
        if case .writeThenClose = action {
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        } else {
            // The client sees the end of the answer; what it still sends is never read into
            // memory, and the connection is dropped a little later.
            written.futureResult.whenComplete { _ in
                channel.close(mode: .output, promise: nil)
                channel.eventLoop.scheduleTask(in: TimeAmount(StateMachine.lingerAfterEarlyClose)) { channel.close(promise: nil) }
            }
        }
    }

    /// An answer's end is written and the connection stays: requests that waited meanwhile are
    /// handled now, in order, until one waits for its answer again.
    private func answerWritten(context: ChannelHandlerContext) {
        switch machine.answerWritten(at: now(context)) {
        case .replay: break
        case .none: return
        }
        while true {
            switch machine.nextToReplay() {
            case .part(let part):
                handle(part, context: context)
            case .error(let error):
                context.fireErrorCaught(error)
            case .done(let after):
                // The async channel hands what it was given (parts, or the error) to the router
                // at the end of a read.
                if after.fireReadComplete { context.fireChannelReadComplete() }
                if after.resumeReading { context.read() }
                if after.passInputClosed { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
                switch after.then {
                case .closeWhenSent: closeWhenSent(context: context)
                case .scheduleIdleCheck(let deadline): scheduleIdleCheck(at: deadline, context: context)
                case .none: break
                }
                return
            }
        }
    }

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

    // MARK: - The idle timer

    /// One timer at a time: one that fires early (the connection was active since) is set again
    /// for the state machine's deadline then.
    private func scheduleIdleCheck(at deadline: LoopInstant, context: ChannelHandlerContext) {
        guard idleCheck == nil else { return }
        idleCheck = context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(deadline: deadline.deadline) { [self] in
            idleCheck = nil
            guard context.channel.isActive else { return }
            switch machine.idleCheckDue(at: now(context)) {
            case .close: context.close(promise: nil)
            case .scheduleIdleCheck(let deadline): scheduleIdleCheck(at: deadline, context: context)
            case .none: break
            }
        }
    }

    private func cancelIdleCheck() {
        idleCheck?.cancel()
        idleCheck = nil
    }

    // MARK: - Routing

    private func isWebhookPath(_ target: String) -> Bool {
        // The path exactly as configured (what senders use) without splitting it.
        if target == path { return true }
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
