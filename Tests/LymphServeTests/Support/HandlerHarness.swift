import NIOCore
import NIOEmbedded
import NIOHTTP1

@testable import LymphServe

/// What reaches the router's side of the pipeline (Hummingbird's codec and NIOAsyncChannel in
/// the server), in order.
final class RouterRecorder: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart

    enum Event: Equatable {
        case head(String)
        case body(Int)
        case end
        case readComplete
        case inputClosed
        case error
    }

    var events: [Event] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): events.append(.head("\(head.method) \(head.uri)"))
        case .body(let chunk): events.append(.body(chunk.readableBytes))
        case .end: events.append(.end)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) { events.append(.readComplete) }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { events.append(.inputClosed) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { events.append(.error) }
}

/// The socket's side: counts the reads asked for, and records closes. A close of the output
/// only is recorded and not carried out (EmbeddedChannel would close the whole channel), so a
/// test sees the full close that follows it.
final class SocketRecorder: ChannelOutboundHandler {
    typealias OutboundIn = HTTPServerResponsePart

    var reads = 0
    var closes: [CloseMode] = []

    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        closes.append(mode)
        if mode == .output {
            promise?.succeed(())
        } else {
            context.close(mode: mode, promise: promise)
        }
    }
}

/// One answer the handler or the router wrote.
struct Answer {
    var status: Int
    var headers: HTTPHeaders
    var body = ""
    var ended = false

    var closes: Bool { headers["connection"].contains { $0.lowercased() == "close" } }
}

/// `WebhookRequestHandler` in an `EmbeddedChannel`, between a socket and a router that record
/// what they see, with a `FakeIntake` for the server.
final class HandlerHarness {
    let loop = EmbeddedEventLoop()
    let channel: EmbeddedChannel
    let intake = FakeIntake()
    let router = RouterRecorder()
    let socket = SocketRecorder()

    init(maxBody: Int = 1 << 20, idleTimeout: Duration = .seconds(30)) throws {
        let handler = WebhookRequestHandler(intake: intake, path: "/webhooks", maxBody: maxBody, idleTimeout: idleTimeout, now: loop.now)
        channel = EmbeddedChannel(handlers: [socket, handler, router], loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
    }

    var isOpen: Bool { channel.isActive }

    /// The parts, as one read from the socket.
    func read(_ parts: [HTTPServerRequestPart]) throws {
        for part in parts { channel.pipeline.syncOperations.fireChannelRead(NIOAny(part)) }
        channel.pipeline.syncOperations.fireChannelReadComplete()
        try channel.throwIfErrorCaught()
    }

    func fire(_ event: Any) {
        channel.pipeline.syncOperations.fireUserInboundEventTriggered(event)
    }

    /// The channel asks to read the socket again (as NIO does after each read).
    func requestRead() { channel.read() }

    /// The router answers its oldest request.
    func routerAnswers(_ status: HTTPResponseStatus = .ok, body: String = "") throws {
        try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: status)))
        if !body.isEmpty { try channel.writeOutbound(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: body)))) }
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
    }

    /// The answers written since the last call, in order.
    func answers() throws -> [Answer] {
        var out: [Answer] = []
        while let part = try channel.readOutbound(as: HTTPServerResponsePart.self) {
            switch part {
            case .head(let head): out.append(Answer(status: Int(head.status.code), headers: head.headers))
            case .body(.byteBuffer(let buffer)): out[out.count - 1].body += String(buffer: buffer)
            case .body: break
            case .end: out[out.count - 1].ended = true
            }
        }
        return out
    }

    func advanceTime(by amount: TimeAmount) { loop.advanceTime(by: amount) }
}

/// Request parts, as NIO's decoder gives them.
enum Request {
    static func webhook(_ id: String, path: String = "/webhooks", version: HTTPVersion = .http1_1, headers: [(String, String)] = []) -> [HTTPServerRequestPart]
    {
        let head = HTTPRequestHead(
            version: version, method: .POST, uri: path,
            headers: HTTPHeaders([("content-length", String(id.utf8.count))] + headers))
        return [.head(head), .body(ByteBuffer(string: id)), .end(nil)]
    }

    static func get(_ uri: String, headers: [(String, String)] = []) -> [HTTPServerRequestPart] {
        [.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: HTTPHeaders(headers))), .end(nil)]
    }

    static func head(_ method: HTTPMethod, _ uri: String, headers: [(String, String)] = []) -> HTTPServerRequestPart {
        .head(HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: HTTPHeaders(headers)))
    }
}
