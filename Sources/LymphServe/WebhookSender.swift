import AsyncHTTPClient
import Foundation
import Logging
import Lymph
import NIOCore
import NIOHTTP1
import Synchronization

/// `lymph send`: POSTs events (or captured deliveries) to a webhook receiver the way IMMUNE
/// would: `Content-Type: application/json`, `x-immune-signature` over the exact body bytes,
/// retrying connection errors and 5xx with exponential backoff (honouring `Retry-After`).
public final class WebhookSender: Sendable {
    public struct Options: Sendable {
        public var url: String
        public var secret: [UInt8]?
        public var concurrency = 8
        /// Requests per second at most (nil: as fast as the receiver answers).
        public var rate: Double?
        public var timeout: Duration = .seconds(10)
        public var retries = 5
        public var firstBackoff: Duration = .milliseconds(500)

        public init(url: String, secret: [UInt8]?) {
            self.url = url
            self.secret = secret
        }
    }

    public struct Summary: Sendable {
        public var sent = 0
        public var statuses: [Int: Int] = [:]
        /// Requests that never got an answer (connection errors after every retry).
        public var failed = 0
        public var retries = 0
        public var invalid = 0
        public var seconds = 0.0
        public var latencies: [Double] = []

        public var allAccepted: Bool { failed == 0 && invalid == 0 && statuses.keys.allSatisfy { (200..<300).contains($0) } }

        public func percentile(_ p: Double) -> Double? {
            guard !latencies.isEmpty else { return nil }
            let sorted = latencies.sorted()
            let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
            return sorted[max(0, min(sorted.count - 1, rank - 1))]
        }

        public var text: String {
            let status = statuses.keys.sorted().map { "\($0): \(statuses[$0]!)" }.joined(separator: ", ")
            var s = "sent \(sent) in \(String(format: "%.2f", seconds))s (\(String(format: "%.0f", seconds > 0 ? Double(sent) / seconds : 0))/s)"
            s += "; status \(status.isEmpty ? "none" : status)"
            s += "; retried \(retries); failed \(failed)"
            if invalid > 0 { s += "; not sent (not JSON) \(invalid)" }
            if let p50 = percentile(50), let p95 = percentile(95), let p99 = percentile(99) {
                s += String(format: "; latency p50 %.2f ms, p95 %.2f ms, p99 %.2f ms", p50 * 1000, p95 * 1000, p99 * 1000)
            }
            return s
        }
    }

    /// One request to send: the body and any headers it carried (a captured delivery).
    struct Outgoing: Sendable {
        let body: [UInt8]
        let headers: [(String, String)]
    }

    let options: Options
    let logger: Logger

    public init(options: Options, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    /// Sends every item `reader` yields; returns when all are answered or given up on.
    public func send(_ reader: ItemReader) async throws -> Summary {
        var configuration = HTTPClient.Configuration(timeout: .init(connect: .seconds(5), read: .seconds(Int64(options.timeout.components.seconds) + 1)))
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = max(1, options.concurrency)
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        let queue = SendQueue(reader: reader)
        let results = SummaryBox()
        let pacer = Pacer(rate: options.rate)
        let start = ContinuousClock.now
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<max(1, options.concurrency) {
                group.addTask {
                    while let item = queue.next() {
                        guard let outgoing = self.prepare(item) else {
                            results.state.withLock { $0.invalid += 1 }
                            continue
                        }
                        await pacer.wait()
                        let (status, retried, latency) = await self.deliver(outgoing, client: client)
                        results.state.withLock { s in
                            s.sent += 1
                            s.retries += retried
                            if let status { s.statuses[status, default: 0] += 1; s.latencies.append(latency) } else { s.failed += 1 }
                        }
                    }
                }
            }
        }
        try? await client.shutdown()
        var summary = results.state.withLock { $0 }
        let elapsed = ContinuousClock.now - start
        summary.seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        if let error = queue.error { throw error }
        return summary
    }

    /// An event line is sent as it is; a delivery (`{"headers", "body"}`) sends its body with
    /// its headers. With a secret, the body is (re)signed.
    func prepare(_ item: [UInt8]) -> Outgoing? {
        guard let document = try? JSONDocument(parsing: item), document.root.kind == .object else { return nil }
        var body = item
        var headers: [(String, String)] = []
        if let b = document.root.member("body"), let h = document.root.member("headers"), h.kind == .object, let bytes = b.stringBytes {
            body = JSONParser.unescape(bytes)
            let members: [(key: JSONValue, value: JSONValue)] = h.members.map { Array($0) } ?? []
            for (k, v) in members {
                guard let name = k.string, let value = v.string, name.lowercased() != "content-length" else { continue }
                headers.append((name.lowercased(), value))
            }
        }
        if let secret = options.secret {
            headers.removeAll { $0.0 == WebhookSignature.header }
            headers.append((WebhookSignature.header, WebhookSignature.sign(body, secret: secret)))
        }
        if !headers.contains(where: { $0.0 == "content-type" }) { headers.append(("content-type", "application/json")) }
        return Outgoing(body: body, headers: headers)
    }

    /// Final status (nil when every attempt failed to connect), retries used, and seconds from
    /// the first attempt to the final answer.
    func deliver(_ outgoing: Outgoing, client: HTTPClient) async -> (Int?, Int, Double) {
        var request = HTTPClientRequest(url: options.url)
        request.method = .POST
        for (k, v) in outgoing.headers { request.headers.add(name: k, value: v) }
        request.headers.add(name: "user-agent", value: "lymph-send/\(Lymph.version)")
        let start = ContinuousClock.now
        var delay = options.firstBackoff
        var attempt = 0
        while true {
            request.body = .bytes(outgoing.body)
            var status: Int?
            var retryAfter: Duration?
            do {
                let response = try await client.execute(request, timeout: .nanoseconds(Int64(options.timeout.components.seconds) * 1_000_000_000 + options.timeout.components.attoseconds / 1_000_000_000))
                status = Int(response.status.code)
                if let ra = response.headers.first(name: "retry-after"), let secs = Int(ra) { retryAfter = .seconds(min(secs, 60)) }
                _ = try? await response.body.collect(upTo: 64 * 1024)
            } catch {
                logger.debug("send failed: \(error)")
            }
            let retryable = status == nil || (status! >= 500 && status! < 600)
            if !retryable || attempt >= options.retries {
                let elapsed = ContinuousClock.now - start
                return (status, attempt, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            }
            attempt += 1
            try? await Task.sleep(for: max(delay, retryAfter ?? .zero))
            delay = min(delay * 2, .seconds(30))
        }
    }
}

final class SummaryBox: Sendable {
    let state = Mutex(WebhookSender.Summary())
}

/// Items from the reader, one at a time, for several senders.
final class SendQueue: @unchecked Sendable {
    let reader: ItemReader
    let lock = NSLock()
    var buffer: [RawItem] = []
    var index = 0
    var done = false
    var error: (any Error)?

    init(reader: ItemReader) { self.reader = reader }

    func next() -> [UInt8]? {
        lock.lock()
        defer { lock.unlock() }
        while index >= buffer.count {
            if done { return nil }
            do {
                guard let batch = try reader.nextBatch(control: nil) else { done = true; return nil }
                buffer = batch.items
                index = 0
            } catch {
                self.error = error
                done = true
                return nil
            }
        }
        defer { index += 1 }
        return Array(buffer[index].bytes)
    }
}

/// Spaces requests `1/rate` seconds apart across all senders.
final class Pacer: Sendable {
    let interval: Double?
    let next = Mutex(0.0)

    init(rate: Double?) { interval = rate.map { 1 / $0 } }

    func wait() async {
        guard let interval else { return }
        let now = Timestamp.now()
        let slot = next.withLock { n -> Double in
            let s = max(n, now)
            n = s + interval
            return s
        }
        if slot > now { try? await Task.sleep(for: .seconds(slot - now)) }
    }
}
