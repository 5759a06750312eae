import Hummingbird
import NIOCore

/// The request context: Hummingbird's basics plus the connection, so a handler that refuses a
/// body (413) can close the connection instead of letting the server read the rest of it.
public struct ServeContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
