import AsyncHTTPClient
import Foundation
import NIOCore
import Synchronization

/// Where an http stage sends: the URL's host, resolved and checked by the SSRF guard before
/// each connection, a client (and its bounded connection pool) per address it connects to, and
/// the back-off shared by all the stage's requests while the destination keeps failing.
///
/// Each client is pinned to the address that was checked (AsyncHTTPClient's `dnsOverride`,
/// which keeps the host name for TLS), so a name that resolves elsewhere between the check and
/// the connection cannot slip past the guard.
final class HTTPDestination: Sendable {
    let host: String
    let allowPrivate: Bool
    let concurrency: Int
    let timeout: Double
    /// A resolution is reused this long (seconds): at thousands of requests a second, one
    /// `getaddrinfo` a second is enough to follow a name that moves.
    static let resolutionLifetime = 1.0
    /// Clients kept for addresses the name resolved to; the oldest is shut down past this.
    static let maxClients = 4

    private struct State {
        var clients: [(key: String, client: HTTPClient)] = []
        var resolved: (addresses: [DestinationAddress], at: Double)?
        /// Consecutive attempts that failed in a way that is retried, and when the next may start.
        var failures = 0
        var notBefore = 0.0
    }
    private let state = Mutex(State())

    init(host: String, allowPrivate: Bool, concurrency: Int, timeout: Double) {
        self.host = host
        self.allowPrivate = allowPrivate
        self.concurrency = concurrency
        self.timeout = timeout
    }

    /// Why a request may not be sent.
    enum Refusal: Error {
        /// The guard refused the address (`http_forbidden_address`).
        case forbidden(String)
        /// The name does not resolve (retried, like a connection error).
        case unresolved(String)
    }

    /// The client to send the next request with.
    func client() async throws(Refusal) -> HTTPClient {
        // An address literal, or a stage allowed to reach private addresses: no resolution of
        // ours (the client resolves a name itself).
        if let literal = DestinationAddress(literal: host) {
            if !allowPrivate, let why = literal.refusal { throw .forbidden("\(host) is a \(why) address") }
            return client(for: "", address: nil)
        }
        if allowPrivate { return client(for: "", address: nil) }
        let addresses = try await addresses()
        // Every address, not only the one connected to: a name that mixes an inward address
        // among public ones is one an attacker can steer (round robin, a resolver's reordering).
        for address in addresses {
            if let why = address.refusal { throw .forbidden("\(host) resolves to \(address), a \(why) address") }
        }
        let address = addresses[0]
        return client(for: address.description, address: address)
    }

    private func addresses() async throws(Refusal) -> [DestinationAddress] {
        let now = Date().timeIntervalSince1970
        if let cached = state.withLock({ $0.resolved }), now - cached.at < Self.resolutionLifetime { return cached.addresses }
        let host = self.host
        // getaddrinfo blocks: not on one of Swift's cooperative threads.
        let result: Result<[DestinationAddress], DestinationAddress.ResolveError> = await withCheckedContinuation { c in
            DispatchQueue.global().async { c.resume(returning: Result { () throws(DestinationAddress.ResolveError) in try DestinationAddress.resolve(host) }) }
        }
        switch result {
        case .success(let addresses):
            state.withLock { $0.resolved = (addresses, now) }
            return addresses
        case .failure(let error):
            throw .unresolved(error.message)
        }
    }

    private func client(for key: String, address: DestinationAddress?) -> HTTPClient {
        var evicted: HTTPClient?
        let client = state.withLock { s -> HTTPClient in
            if let found = s.clients.first(where: { $0.key == key }) { return found.client }
            var configuration = HTTPClient.Configuration()
            configuration.redirectConfiguration = .disallow
            configuration.timeout = .init(connect: .milliseconds(Int64(min(timeout, 10) * 1000)), read: .milliseconds(Int64(timeout * 1000)))
            configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency)
            // A refused connection or a certificate that does not verify fails the attempt at
            // once, with its reason; the stage's retries (with their backoff) are the only ones.
            configuration.connectionPool.retryConnectionEstablishment = false
            if let address { configuration.dnsOverride = [host: address.description] }
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            s.clients.append((key, client))
            if s.clients.count > Self.maxClients { evicted = s.clients.removeFirst().client }
            return client
        }
        if let evicted { Task { try? await evicted.shutdown() } }
        return client
    }

    // MARK: - Back-off

    /// Waits while the destination is backing off after repeated failures, so requests that
    /// are retried together do not hammer it.
    /// Waits until requests may go to the destination again; no longer than the stop grace of a
    /// stopping run (`control`).
    func waitTurn(control: RunControl? = nil) async {
        let wait = state.withLock { $0.notBefore } - Date().timeIntervalSince1970
        guard wait > 0 else { return }
        if let control { await control.pause(seconds: wait) } else { try? await Task.sleep(for: .milliseconds(Int(wait * 1000))) }
    }

    /// An attempt failed in a way that is retried: after three in a row, every request waits
    /// (twice as long each time, up to `cap`), `retryAfter` (the server's) at least.
    func failed(base: Double, cap: Double, retryAfter: Double?) {
        state.withLock { s in
            s.failures += 1
            var pause = s.failures >= 3 ? min(cap, base * pow(2, Double(min(s.failures - 3, 16)))) : 0
            if let retryAfter { pause = max(pause, min(retryAfter, cap)) }
            if pause > 0 { s.notBefore = max(s.notBefore, Date().timeIntervalSince1970 + pause) }
        }
    }

    /// A request got an answer that is not retried: the destination is up.
    func answered() {
        state.withLock { s in
            s.failures = 0
            s.notBefore = 0
        }
    }

    /// Shuts every client down.
    func shutdown() async {
        let clients = state.withLock { s in
            defer { s.clients = [] }
            return s.clients.map(\.client)
        }
        for client in clients { try? await client.shutdown() }
    }

    /// A run that stops on an error (`on_error: stop`, a full disk) drops its stages without
    /// `finish`: the clients still open are shut down here, in the background (the shutdown
    /// holds each client until it is done).
    deinit {
        for entry in state.withLock({ $0.clients }) { entry.client.shutdown { _ in } }
    }
}
