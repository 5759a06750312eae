/// The `serve:` section of a pipeline file: limits for `lymph serve` (the command line may
/// override `listen` and `path`).
public struct ServeSettings: Sendable, Equatable {
    /// `listen:`: `HOST:PORT` to listen on (an IPv6 host in brackets).
    public var listen = "127.0.0.1:8080"
    /// `path:`: the URL path webhooks are posted to.
    public var path = "/webhooks"
    /// Largest request body read; a bigger one gets 413 without being read.
    public var maxBody = 1 << 20
    /// Entries the spool may hold before requests get 503.
    public var maxSpool = 100_000
    /// Open connections at once; further ones wait in the listen backlog.
    public var maxConnections = 1024
    /// Seconds a connection may read nothing (between requests, or inside one) before it is
    /// closed; one waiting for its answer is never idle.
    public var idleTimeout = 30.0

    /// The keys of the `serve:` section.
    static let keys = ["listen", "path", "max_body", "max_spool", "max_connections", "idle_timeout"]

    /// The defaults, for a pipeline file without `serve:`.
    public init() {}

    /// The keys whose values differ from `other`'s, in the section's order.
    public func changedKeys(from other: ServeSettings) -> [String] {
        let changed = [
            listen != other.listen, path != other.path, maxBody != other.maxBody, maxSpool != other.maxSpool,
            maxConnections != other.maxConnections, idleTimeout != other.idleTimeout,
        ]
        return zip(Self.keys, changed).filter(\.1).map(\.0)
    }

    /// Why `text` cannot be the webhook path, or nil. Compared as the server compares paths, by
    /// their components (`/metrics/` and `//healthz` are the server's own routes, and a second
    /// route there stopped the process at start), and plain: Hummingbird reads `:name`, `{name}`
    /// and `*` in a route as parameters and wildcards.
    public static func pathProblem(_ text: String) -> String? {
        guard text.hasPrefix("/") else { return "must start with '/', such as /webhooks" }
        let components = text.split(separator: "/")
        if components.count == 1, let own = ["healthz", "metrics"].first(where: { $0 == components[0] }) {
            return "\(text.cutForMessage()) is the server's own GET route /\(own); choose another, such as /webhooks"
        }
        // Before any part of it is quoted in a message.
        if text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) { return "must not contain control characters" }
        if let odd = components.first(where: { $0.hasPrefix(":") || $0.contains(where: { "*{}?#".contains($0) || $0.isWhitespace }) }) {
            return "must be a plain path: '\(String(odd).cutForMessage())' holds a character the router reads as a pattern, a query or a space"
        }
        return nil
    }

    /// `HOST:PORT` (an IPv6 host in brackets) into its parts.
    public static func parseListen(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        guard let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port), !host.isEmpty else { return nil }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }
}
