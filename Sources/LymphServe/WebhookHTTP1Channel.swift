import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Hummingbird's HTTP/1 connection with two changes, both for the webhook's speed:
/// - `WebhookRequestHandler` in the pipeline answers the webhook path itself; other requests
///   reach the router as usual. It also keeps pipelined requests in order between the two.
/// - The connection's task prefers its own event loop as executor, so the router's requests
///   are handled on the thread that reads and writes the socket, with no hop to Swift's
///   global threads and back.
///
/// The rest is `HTTP1Channel.setup` as Hummingbird has it: the same decoder limits, codec, idle
/// timeout and graceful shutdown (`HTTPConnectionStateHandler` closes an idle connection at
/// once and a busy one after its last answer; it sits before the webhook handler, so it sees
/// every request and answer).
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
            try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false,
                                                     withOutboundHeaderValidation: false, withEncoderConfiguration: .init(),
                                                     withDecoderLimitConfiguration: limits)
            try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try pipeline.addHandler(HTTPConnectionStateHandler(idleTimeout: server.options.idleTimeout, logger: logger))
            try pipeline.addHandler(WebhookRequestHandler(server: server))
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    func handle(value: Value, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopTaskExecutor(value.channel.eventLoop)) {
            await handleHTTP(asyncChannel: value, logger: logger)
        }
    }
}
