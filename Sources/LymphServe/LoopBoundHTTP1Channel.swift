import HummingbirdCore
import Logging
import NIOCore

/// Hummingbird's HTTP/1 connection, with the connection's task preferring its own event loop
/// as executor: requests on a connection are then handled on the thread that reads and writes
/// its socket, as in a plain NIO server. Without it, each request hops from the loop to Swift's
/// global threads and back; on two cores those hops cost more than the handler's own work.
struct LoopBoundHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value
    let http1: HTTP1Channel

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        http1.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopTaskExecutor(value.channel.eventLoop)) {
            await http1.handle(value: value, logger: logger)
        }
    }
}
