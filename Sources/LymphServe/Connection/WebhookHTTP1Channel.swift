import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Hummingbird's HTTP/1 connection with two changes, both for the webhook's speed:
/// - `WebhookRequestHandler`, right after NIO's HTTP/1 decoder and encoder, answers the webhook
///   path itself; other requests go on through the HTTPTypes codec to the router as usual. It
///   also keeps the connection's rules (`ConnectionStateMachine`) for both: pipelined requests
///   in order, the idle timeout and graceful close that Hummingbird's
///   `HTTPConnectionStateHandler` keeps in `HTTP1Channel`.
/// - The connection's task prefers its own event loop as executor, so the router's requests
///   are handled on the thread that reads and writes the socket, with no hop to Swift's
///   global threads and back.
///
/// The rest is `HTTP1Channel.setup` as Hummingbird has it: the same decoder limits and codec.
struct WebhookHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>
    let responder: HTTPChannelHandler.Responder
    let server: WebhookServer

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let decoder = HTTP1Channel.Configuration().httpDecoder
            var limits = NIOHTTPDecoderLimitConfiguration()
            limits.maxHeaderFieldSize = decoder.maxHeaderFieldSize
            limits.maxHeaderListSize = decoder.maxHeaderListSize
            limits.maxHeaderFieldCount = decoder.maxHeaderFieldCount
            let pipeline = channel.pipeline.syncOperations
            try pipeline.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false,
                withOutboundHeaderValidation: false, withEncoderConfiguration: .init(),
                withDecoderLimitConfiguration: limits)
            let options = server.options
            try pipeline.addHandler(
                WebhookRequestHandler(
                    intake: server, path: options.path, maxBody: options.maxBody,
                    idleTimeout: options.idleTimeout, now: channel.eventLoop.now))
            try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    func handle(value: Value, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopTaskExecutor(value.channel.eventLoop)) {
            await handleHTTP(asyncChannel: value, logger: logger)
        }
    }
}
