import AsyncHTTPClient
import Foundation
import Logging
import Lymph
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// `lymph send`: POSTs events (or captured deliveries) to a webhook receiver the way IMMUNE
/// would: `Content-Type: application/json`, `x-immune-signature` over the exact body bytes,
/// retrying connection errors, timeouts and 5xx with exponential backoff (honouring `Retry-After`).
///
/// Every wait is bounded: an attempt (connecting, the answer and its body) has `timeout`, the
/// connection `connectTimeout` of it, a backoff at most 30 s (`Retry-After` at most 60 s). When
/// a request still gets no answer after its retries the receiver is taken as gone: nothing more
/// is sent, and `send` returns the summary so far (`stopped`). So once the receiver goes away,
/// `send` ends within one request's attempts and backoffs, however much input is left.
public final class WebhookSender: Sendable {
    public struct Options: Sendable {
        public var url: String
        /// The HMAC key to sign with (made from the secret for `scheme`); nil sends as read.
        public var secret: [UInt8]?
        /// How requests are signed.
        public var scheme: SignatureScheme = .immune
        public var concurrency = 8
        /// Requests per second at most (nil: as fast as the receiver answers).
        public var rate: Double?
        /// One attempt: connecting, sending, the answer and its body.
        public var timeout: Duration = .seconds(10)
        /// Connecting, within `timeout`.
        public var connectTimeout: Duration = .seconds(5)
        public var retries = 5
        public var firstBackoff: Duration = .milliseconds(500)

        public init(url: String, secret: [UInt8]?) {
            self.url = url
            self.secret = secret
        }
    }

    public struct Summary: Sendable {
        /// Requests sent (each line once, however many attempts it took).
        public var sent = 0
        /// Final statuses, and for each the receiver's reasons (the `error` member of a JSON
        /// answer) with their counts: at most `maxReasons` a status, the rest as `other`.
        public var statuses: [Int: Int] = [:]
        public var reasons: [Int: [String: Int]] = [:]
        /// Requests that never got an answer, by the error of their last attempt
        /// (`connection refused to 127.0.0.1:9`); at most `maxReasons`, the rest as `other`.
        public var unanswered: [String: Int] = [:]
        public var retries = 0
        /// Lines not sent, because no request could be made of them (not JSON, or a delivery
        /// whose headers HTTP cannot carry), by why; and where the first of them is.
        public var invalid = 0
        public var notSent: [String: Int] = [:]
        public var firstNotSent: String?
        /// The first's place in the input (lines are prepared by several tasks at once).
        var firstNotSentNumber = Int.max
        public var seconds = 0.0
        public var latencies: [Double] = []
        /// Set when the receiver was taken as gone (a request got no answer after its
        /// retries): why. Nothing was sent after it.
        public var stopped: String?

        public static let maxReasons = 16

        public init() {}

        /// Requests that did not get a 2xx: another status, or no answer at all.
        public var failed: Int {
            statuses.filter { !(200..<300).contains($0.key) }.values.reduce(0, +) + unanswered.values.reduce(0, +)
        }

        /// Every line was sent and got a 2xx.
        public var allAccepted: Bool { failed == 0 && invalid == 0 && stopped == nil }

        mutating func record(status: Int, reason: String?) {
            statuses[status, default: 0] += 1
            if let reason { Self.count(reason, in: &reasons[status, default: [:]]) }
        }

        mutating func record(unanswered reason: String) {
            Self.count(reason, in: &unanswered)
        }

        mutating func record(notSent reason: String, at position: String, number: Int) {
            invalid += 1
            Self.count(reason, in: &notSent)
            if number < firstNotSentNumber {
                firstNotSentNumber = number
                firstNotSent = position
            }
        }

        static func count(_ reason: String, in counts: inout [String: Int]) {
            let key = counts[reason] != nil || counts.count < maxReasons ? reason : "other"
            counts[key, default: 0] += 1
        }

        public func percentile(_ p: Double) -> Double? {
            guard !latencies.isEmpty else { return nil }
            let sorted = latencies.sorted()
            let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
            return sorted[max(0, min(sorted.count - 1, rank - 1))]
        }

        /// `reason: count, ...`, the most frequent first.
        static func list(_ counts: [String: Int]) -> String {
            counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
        }

        /// One line: `sent 3 in 0.02s (150/s); status 202: 1, 401: 2 (bad_signature: 2); retried 0; failed 2; ...`.
        public var text: String {
            let status: String = statuses.keys.sorted().map { code -> String in
                let why = reasons[code].map { " (\(Self.list($0)))" } ?? ""
                return "\(code): \(statuses[code]!)\(why)"
            }.joined(separator: ", ")
            let lost = unanswered.values.reduce(0, +)
            var s = "sent \(sent) in \(String(format: "%.2f", seconds))s (\(String(format: "%.0f", seconds > 0 ? Double(sent) / seconds : 0))/s)"
            if !status.isEmpty || lost == 0 { s += "; status \(status.isEmpty ? "none" : status)" }
            if lost > 0 { s += "; no answer: \(lost) (\(Self.list(unanswered)))" }
            s += "; retried \(retries); failed \(failed)"
            if invalid > 0 { s += "; not sent \(invalid) (\(Self.list(notSent)); the first at \(firstNotSent ?? "?"))" }
            if let stopped { s += "; gave up: \(stopped), nothing more sent" }
            if let p50 = percentile(50), let p95 = percentile(95), let p99 = percentile(99) {
                s += String(format: "; latency p50 %.2f ms, p95 %.2f ms, p99 %.2f ms", p50 * 1000, p95 * 1000, p99 * 1000)
            }
            return s
        }
    }

    /// How one request ended: the final status (with the receiver's reason), or why no answer
    /// came; the retries it used; seconds from its first attempt to the end.
    struct Outcome: Sendable {
        enum End: Sendable {
            case answered(status: Int, reason: String?)
            case unanswered(reason: String)
        }

        var end: End
        var retries: Int
        var seconds: Double
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

    /// Sends every item `reader` yields; returns when all are answered or given up on, or once
    /// the receiver is taken as gone (`Summary.stopped`) or `control` asks for a stop, and the
    /// requests in flight have ended.
    public func send(_ reader: ItemReader, control: RunControl? = nil) async throws -> Summary {
        let connect = min(options.connectTimeout, options.timeout)
        var configuration = HTTPClient.Configuration(timeout: .init(connect: Self.timeAmount(connect), read: Self.timeAmount(options.timeout)))
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = max(1, options.concurrency)
        // A refused connection fails the request at once; the retries here (with their
        // backoff and their count in the summary) are the only ones.
        configuration.connectionPool.retryConnectionEstablishment = false
        // A redirect is the receiver's answer, not a delivery: followed, a 301/302/303 would
        // turn into a GET without the body, and a 307/308 would post the signed body elsewhere.
        configuration.redirectConfiguration = .disallow
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        let queue = SendQueue(reader: reader, control: control)
        let results = SummaryBox()
        let pacer = Pacer(rate: options.rate)
        let start = ContinuousClock.now
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<max(1, options.concurrency) {
                group.addTask {
                    while let (item, number) = queue.next() {
                        let outgoing: Outgoing
                        switch self.prepare(Array(item.bytes), oversize: item.oversize) {
                        case .success(let prepared): outgoing = prepared
                        case .failure(let unsendable):
                            // The line's fault, not the receiver's: counted with where it is,
                            // and the lines after it are sent.
                            results.state.withLock { s in
                                s.record(notSent: unsendable.reason, at: PrintableText.of(item.source.description, limit: 300), number: number)
                            }
                            continue
                        }
                        await pacer.wait()
                        if queue.isStopped { break }
                        let outcome = await self.deliver(outgoing, client: client, stop: queue)
                        results.state.withLock { s in
                            s.sent += 1
                            s.retries += outcome.retries
                            switch outcome.end {
                            case .answered(let status, let reason):
                                s.record(status: status, reason: reason)
                                s.latencies.append(outcome.seconds)
                            case .unanswered(let reason):
                                s.record(unanswered: reason)
                                if s.stopped == nil {
                                    s.stopped = "\(reason) after \(outcome.retries) \(outcome.retries == 1 ? "retry" : "retries")"
                                    queue.stop()
                                }
                            }
                        }
                    }
                }
            }
        }
        try? await client.shutdown()
        var summary = results.state.withLock { $0 }
        let elapsed = ContinuousClock.now - start
        summary.seconds = Self.seconds(elapsed)
        if let error = queue.error { throw error }
        return summary
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    static func timeAmount(_ d: Duration) -> TimeAmount {
        .nanoseconds(d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000)
    }

    /// Why no request can be made of a line.
    struct Unsendable: Error {
        let reason: String
    }

    /// An event line is sent as it is; a delivery (`{"headers", "body"}`) sends its body with
    /// its headers. With a secret, the body is (re)signed. A line that is not a JSON object, or
    /// a delivery with a header HTTP cannot carry, is no request: sent, the client would refuse
    /// it on every attempt, and that would read as a receiver that does not answer.
    func prepare(_ item: [UInt8], oversize: Bool = false) -> Result<Outgoing, Unsendable> {
        if oversize { return .failure(Unsendable(reason: "longer than a line may be")) }
        guard let document = try? JSONDocument(parsing: item), document.root.kind == .object else {
            return .failure(Unsendable(reason: "not a JSON object"))
        }
        var body = item
        var headers: [(String, String)] = []
        if let b = document.root.member("body"), let h = document.root.member("headers"), h.kind == .object, let bytes = b.stringBytes {
            body = JSONParser.unescape(bytes)
            let members: [(key: JSONValue, value: JSONValue)] = h.members.map { Array($0) } ?? []
            for (k, v) in members {
                let name = k.string ?? ""
                // Names only: a header's value may be a credential, and a name that is no token
                // may hold one (`Authorization: Bearer …` written as the name): only its part up to
                // the first byte a name cannot have is shown.
                guard Self.isFieldName(name) else {
                    let valid = String(decoding: name.utf8.prefix(while: Self.isTokenByte), as: UTF8.self)
                    return .failure(Unsendable(reason: "header name '\(valid.prefix(40))…' is not an HTTP field name (it holds a byte a name cannot have)"))
                }
                let shown = PrintableText.of(name, limit: 40)
                guard let value = v.string else { return .failure(Unsendable(reason: "header '\(shown)' is not a string")) }
                guard Self.isFieldValue(value) else {
                    return .failure(Unsendable(reason: "header '\(shown)' holds a line break or another control character"))
                }
                if name.lowercased() == "content-length" { continue }
                headers.append((name.lowercased(), value))
            }
        }
        if let secret = options.secret {
            let names = Set(options.scheme.headerNames)
            headers.removeAll { names.contains($0.0) }
            let signed = WebhookSignature.headers(
                options.scheme, key: secret, body: body[...], id: WebhookSignature.messageID(for: body[...]), timestamp: Int(Date().timeIntervalSince1970))
            for (name, value) in signed { headers.append((name.lowercased(), value)) }
        }
        if !headers.contains(where: { $0.0 == "content-type" }) { headers.append(("content-type", "application/json")) }
        return .success(Outgoing(body: body, headers: headers))
    }

    /// An HTTP token (RFC 9110 5.1): letters, digits and `!#$%&'*+-.^_`|~`.
    static func isFieldName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy(isTokenByte)
    }

    static func isTokenByte(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || "!#$%&'*+-.^_`|~".utf8.contains(c)
    }

    /// A field value (RFC 9110 5.5): no control character but the tab, and no DEL.
    static func isFieldValue(_ value: String) -> Bool {
        value.utf8.allSatisfy { c in c == 0x09 || (c >= 0x20 && c != 0x7F) }
    }

    /// Sends one request, retrying connection errors, timeouts and 5xx while retries are left
    /// and `stop` has not been asked for.
    func deliver(_ outgoing: Outgoing, client: HTTPClient, stop: SendQueue) async -> Outcome {
        var request = HTTPClientRequest(url: options.url)
        request.method = .POST
        for (k, v) in outgoing.headers { request.headers.add(name: k, value: v) }
        request.headers.add(name: "user-agent", value: "lymph-send/\(Lymph.version)")
        let start = ContinuousClock.now
        var delay = options.firstBackoff
        var attempt = 0
        while true {
            request.body = .bytes(outgoing.body)
            let end: Outcome.End
            var retryAfter: Duration?
            do {
                let deadline = ContinuousClock.now + options.timeout
                let response = try await client.execute(request, timeout: Self.timeAmount(options.timeout))
                if let ra = response.headers.first(name: "retry-after"), let secs = Int(ra) { retryAfter = .seconds(min(max(secs, 0), 60)) }
                switch await Self.collect(response.body, upTo: 64 * 1024, by: deadline) {
                case .whole(let body):
                    end = .answered(status: Int(response.status.code), reason: Self.reason(inAnswer: body))
                case .tooLarge:
                    end = .answered(status: Int(response.status.code), reason: nil)
                case .cutShort:
                    // Not a whole answer: the receiver may not have finished taking the request.
                    end = .unanswered(
                        reason:
                            "answer \(response.status.code) cut short (its body did not all come within \(options.timeout.components.seconds)s) from \(target)")
                }
            } catch {
                logger.debug("send failed: \(error)")
                end = .unanswered(reason: Self.describe(error, target: target, timeout: options.timeout))
            }
            let retryable: Bool
            switch end {
            case .answered(let status, _): retryable = (500..<600).contains(status)
            case .unanswered: retryable = true
            }
            if !retryable || attempt >= options.retries || stop.isStopped {
                return Outcome(end: end, retries: attempt, seconds: Self.seconds(ContinuousClock.now - start))
            }
            attempt += 1
            try? await Task.sleep(for: max(delay, retryAfter ?? .zero))
            delay = min(delay * 2, .seconds(30))
        }
    }

    /// `host:port` of the URL, for messages.
    var target: String {
        guard let url = URL(string: options.url), let host = url.host else { return options.url }
        return "\(host):\(url.port ?? (url.scheme == "https" ? 443 : 80))"
    }

    /// How an answer's body came.
    enum Body: Sendable {
        /// All of it, within the limit.
        case whole([UInt8])
        /// Longer than the limit (the rest was not read).
        case tooLarge
        /// Not all of it by the deadline, or the connection ended before its end.
        case cutShort
    }

    /// The body, up to `limit` bytes, as it came by `deadline` (a body that trickles in must not
    /// hold the request past its timeout).
    static func collect(_ body: HTTPClientResponse.Body, upTo limit: Int, by deadline: ContinuousClock.Instant) async -> Body {
        await withTaskGroup(of: Body.self) { group in
            group.addTask {
                do {
                    return .whole(Array(try await body.collect(upTo: limit).readableBytesView))
                } catch is NIOTooManyBytesError {
                    return .tooLarge
                } catch {
                    return .cutShort
                }
            }
            group.addTask {
                try? await Task.sleep(until: deadline)
                return .cutShort
            }
            let first = await group.next() ?? .cutShort
            group.cancelAll()
            return first
        }
    }

    /// The `error` member of a JSON answer (`{"error": "bad_signature", ...}`), cut to 64
    /// characters, control characters shown as `?`.
    static func reason(inAnswer body: [UInt8]) -> String? {
        guard let document = try? JSONDocument(parsing: body[...]), let text = document.root.member("error")?.string, !text.isEmpty else { return nil }
        return PrintableText.of(text, limit: 64)
    }

    /// Why an attempt got no answer, in a few words: `connection refused to 127.0.0.1:9`.
    static func describe(_ error: any Error, target: String, timeout: Duration) -> String {
        if let e = error as? HTTPClientError {
            switch e {
            case .connectTimeout: return "connect timeout to \(target)"
            case .deadlineExceeded, .readTimeout: return "no answer within \(timeout.components.seconds)s from \(target)"
            case .remoteConnectionClosed: return "connection closed by \(target) before the answer"
            default: return "\(e) (\(target))"
            }
        }
        if let e = error as? ChannelError, case .connectTimeout = e { return "connect timeout to \(target)" }
        switch ConnectionFailure(error) {
        case .refused?: return "connection refused to \(target)"
        case .unreachable?: return "\(target) is unreachable"
        case .timedOut?: return "connect timeout to \(target)"
        case .reset?: return "connection reset by \(target)"
        case .unresolved(let host)?: return "cannot resolve \(host)"
        case .other(let text)?: return "\(text) (\(target))"
        case nil: return "\(error) (\(target))"
        }
    }
}

final class SummaryBox: Sendable {
    let state = Mutex(WebhookSender.Summary())
}

/// Items from the reader, one at a time, for several senders.
final class SendQueue: @unchecked Sendable {
    let reader: ItemReader
    let control: RunControl?
    let lock = NSLock()
    var buffer: [RawItem] = []
    var index = 0
    /// Items handed out so far.
    var handedOut = 0
    var done = false
    var error: (any Error)?
    private let stopped = Atomic(false)

    init(reader: ItemReader, control: RunControl? = nil) {
        self.reader = reader
        self.control = control
    }

    /// No more items are handed out (the receiver is gone); items in flight are not retried.
    func stop() { stopped.store(true, ordering: .relaxed) }
    var isStopped: Bool { stopped.load(ordering: .relaxed) }

    /// The next item, and its number in the input (from 0); nil after the last.
    func next() -> (RawItem, Int)? {
        lock.lock()
        defer { lock.unlock() }
        while index >= buffer.count || isStopped || control?.isStopRequested == true {
            if done || isStopped || control?.isStopRequested == true { return nil }
            do {
                guard let batch = try reader.nextBatch(control: control) else { done = true; return nil }
                buffer = batch.items
                index = 0
            } catch {
                self.error = error
                done = true
                return nil
            }
        }
        defer {
            index += 1
            handedOut += 1
        }
        return (buffer[index], handedOut)
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
