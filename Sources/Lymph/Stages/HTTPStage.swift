import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// Sends each event to a URL and passes it on once the destination answered 2xx.
///
/// Up to `concurrency` requests are in flight; outcomes keep the events' order, and batches go
/// through one at a time, so the output order is the input order. Every attempt carries
/// `Idempotency-Key: <event id>` (and, signed, the same Standard Webhooks `webhook-id`), so a
/// receiver can drop a retry as a duplicate. Connection errors, timeouts, 408, 429 and 5xx are
/// retried with exponential back-off and full jitter (Retry-After honoured, a minute at most);
/// any other 4xx fails at once (`http_status`), and a request still failing after its retries is
/// `http_unavailable`, which a replay delivers again once the destination is back. Messages name
/// the host, never the URL (a chat webhook's URL is its secret), and what they quote of an answer
/// has the secrets the requests carried redacted (`Redactor.sent`).
public final class HTTPStage: Stage {
    let spec: HTTPSpec
    let url: String
    let host: String
    let method: HTTPMethod
    let headers: [(String, String)]
    let signer: (scheme: SignatureScheme, key: [UInt8])?
    let stageName: String
    let destination: HTTPDestination
    let logger: Logger
    /// The secrets the requests carry, and their parts, taken out of quoted answers.
    let redactor: Redactor

    /// The most of a refused answer quoted in its dead letter.
    static let quotedBytes = 512
    /// The most of an answer's body read before the connection is given up.
    static let maxAnswerBytes = 64 << 10
    /// The longest back-off, and the most of a Retry-After honoured.
    static let maxBackoff = 60.0

    init(
        spec: HTTPSpec, url: String, host: String, headers: [(String, String)], signer: (SignatureScheme, [UInt8])?, stageName: String,
        redactor: Redactor = Redactor([])
    ) {
        self.spec = spec
        self.redactor = redactor
        self.url = url
        self.host = host
        method = HTTPMethod(rawValue: spec.method)
        self.headers = headers
        self.signer = signer.map { (scheme: $0.0, key: $0.1) }
        self.stageName = stageName
        destination = HTTPDestination(host: host, allowPrivate: spec.allowPrivate, concurrency: spec.concurrency, timeout: spec.timeout)
        var logger = Logger(label: "lymph.http")
        logger[metadataKey: "stage"] = "\(stageName)"
        self.logger = logger
    }

    /// Batches one at a time: requests leave in input order, a batch's up to `concurrency` at once.
    public var runsConcurrently: Bool { false }

    public func process(_ events: [Event], context: StageContext) async throws -> [StageOutcome] {
        var results = [HTTPFailure??](repeating: nil, count: events.count)
        let limit = spec.concurrency
        await withTaskGroup(of: (Int, HTTPFailure?).self) { group in
            var inFlight = 0
            for (index, event) in events.enumerated() {
                if inFlight == limit, let (done, result) = await group.next() {
                    results[done] = .some(result)
                    inFlight -= 1
                }
                group.addTask { (index, await self.deliver(event, control: context.control)) }
                inFlight += 1
            }
            for await (done, result) in group { results[done] = .some(result) }
        }
        var outcomes: [StageOutcome] = []
        outcomes.reserveCapacity(events.count)
        for (index, result) in results.enumerated() {
            guard let failure = result ?? nil else {
                outcomes.append(.pass)
                continue
            }
            switch spec.onError {
            case .deadLetter:
                outcomes.append(.fail(failure.reason, message: failure.message))
            case .drop:
                logger.warning("event \(events[index].id) dropped (on_error: drop): \(failure.message)")
                outcomes.append(.drop(.onErrorDrop))
            case .stop:
                throw StageStopped(stage: stageName, event: events[index], message: failure.message)
            }
        }
        return outcomes
    }

    /// Why an event was not delivered.
    struct HTTPFailure: Error {
        let reason: Reason
        let message: String
    }

    /// One event, its retries included; nil once delivered.
    func deliver(_ event: Event, control: RunControl? = nil) async -> HTTPFailure? {
        // The id goes in headers (Idempotency-Key, webhook-id): one no header can carry would
        // fail every attempt the same way.
        if event.id.unicodeScalars.contains(where: { ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7F }) {
            return HTTPFailure(
                reason: .invalidField,
                message: "stage '\(stageName)': the event's id holds a control character (a line break?), which its Idempotency-Key header cannot carry")
        }
        let body: [UInt8]
        switch spec.body {
        case .event:
            body = Array(event.document.bytes)
        case .template(let template):
            body = template.render(event)
            guard (try? JSONParser.validate(body[...])) != nil else {
                return HTTPFailure(
                    reason: .httpTemplate,
                    message:
                        "stage '\(stageName)': the template gave invalid JSON for this event (a placeholder outside quotes whose value is missing or not a number?)"
                )
            }
        }
        var attempt = 0
        // The last retried attempt's problem: a retry the stop grace ends before it is made
        // reports it.
        var lastProblem = ""
        while true {
            await destination.waitTurn(control: control)
            if attempt > 0, control?.stopGraceEnded == true {
                control?.workCutShort()
                return HTTPFailure(
                    reason: .httpUnavailable,
                    message:
                        "stage '\(stageName)': \(host) did not accept the event after \(attempt) attempt\(attempt == 1 ? "" : "s"): \(lastProblem) (not retried: the run was stopping)"
                )
            }
            let outcome = await attemptOnce(event: event, body: body, control: control)
            switch outcome {
            case .delivered:
                destination.answered()
                return nil
            case .refused(let failure):
                return failure
            case .stopped:
                control?.workCutShort()
                return HTTPFailure(
                    reason: .httpUnavailable,
                    message:
                        "stage '\(stageName)': the request to \(host) was stopped because the run is ending (it may have arrived: a replay sends it again with the same Idempotency-Key)"
                )
            case .retry(let message, let retryAfter):
                lastProblem = message
                destination.failed(base: spec.backoff, cap: Self.maxBackoff, retryAfter: retryAfter)
                func gaveUp(_ why: String = "") -> HTTPFailure {
                    HTTPFailure(
                        reason: .httpUnavailable,
                        message:
                            "stage '\(stageName)': \(host) did not accept the event after \(attempt + 1) attempt\(attempt == 0 ? "" : "s"): \(message)\(why)")
                }
                func stopped() -> HTTPFailure {
                    control?.workCutShort()
                    return gaveUp(" (not retried: the run was stopping)")
                }
                // Cancelled (a server's shutdown past its bound): the run is ending.
                if Task.isCancelled { return stopped() }
                guard attempt < spec.retries else { return gaveUp() }
                if control?.stopGraceEnded == true { return stopped() }
                // Exponential, with full jitter (retries of many events spread out), a minute at most.
                var delay = Double.random(in: 0...min(Self.maxBackoff, spec.backoff * pow(2, Double(min(attempt, 16)))))
                if let retryAfter { delay = max(delay, min(retryAfter, Self.maxBackoff)) }
                if let control { await control.pause(seconds: delay) } else { try? await Task.sleep(for: .milliseconds(Int(delay * 1000))) }
                if control?.stopGraceEnded == true { return stopped() }
                attempt += 1
            }
        }
    }

    enum Attempt {
        case delivered
        case refused(HTTPFailure)
        case retry(String, retryAfter: Double?)
        /// The stop grace of a stopping run ended while the request waited for its answer.
        case stopped
    }

    func attemptOnce(event: Event, body: [UInt8], control: RunControl? = nil) async -> Attempt {
        let client: HTTPClient
        do {
            client = try await destination.client()
        } catch {
            switch error {
            case .forbidden(let why):
                return .refused(
                    HTTPFailure(reason: .httpForbiddenAddress, message: "stage '\(stageName)': refused to connect: \(why) (allow_private: true allows it)"))
            case .unresolved(let why):
                return .retry(why, retryAfter: nil)
            }
        }
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "user-agent", value: "lymph/\(Lymph.version)")
        request.headers.add(name: "idempotency-key", value: event.id)
        for (name, value) in headers {
            if name.lowercased() == "content-type" { request.headers.remove(name: "content-type") }
            request.headers.add(name: name, value: value)
        }
        if let signer {
            // Signed at each attempt (a retry's timestamp is its own), always with the event's id.
            let signed = WebhookSignature.headers(signer.scheme, key: signer.key, body: body[...], id: event.id, timestamp: Int(Date().timeIntervalSince1970))
            for (name, value) in signed {
                request.headers.remove(name: name)
                request.headers.add(name: name, value: value)
            }
        }
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            // Read with room for a secret that straddles the cut, redacted, then cut.
            let answer = try await Self.exchange(
                client, request, timeoutMillis: Int64(spec.timeout * 1000), quoting: Self.quotedBytes + redactor.longest, control: control)
            let status = answer.status
            if (200..<300).contains(status) { return .delivered }
            // Shown in logs (on_error: drop) and dead letters: no line breaks or escapes of the
            // receiver's, and none of the secrets the request carried.
            let text = PrintableText.of(
                redactor(String(decoding: answer.quoted, as: UTF8.self)).trimmingCharacters(in: .whitespacesAndNewlines), limit: Self.quotedBytes)
            let said = "\(host) answered \(status)\(text.isEmpty ? "" : ": \(text)")"
            // 5xx only: a code past 599 is no HTTP status, refused at once like any other.
            if status == 408 || status == 429 || (500...599).contains(status) {
                return .retry(said, retryAfter: answer.retryAfter.flatMap { Double($0.trimmingCharacters(in: .whitespaces)) })
            }
            destination.answered()
            return .refused(HTTPFailure(reason: .httpStatus, message: "stage '\(stageName)': \(said)"))
        } catch is StopGraceEnded {
            return .stopped
        } catch {
            return .retry("\(host): \(redactor(Self.describe(error)))", retryAfter: nil)
        }
    }

    /// What an attempt needs of an answer.
    struct Answer: Sendable {
        let status: Int
        let retryAfter: String?
        /// The start of its body, for a refusal's message.
        let quoted: [UInt8]
    }

    /// The whole attempt, from the request to the answer's last byte read, took longer than `timeout`.
    struct AttemptTimedOut: Error {}

    /// A stopping run's grace ended while the attempt waited (`RunControl.stopGrace`): a request
    /// with a long `timeout` must not hold the stop for all of it.
    struct StopGraceEnded: Error {}

    /// Sends the request and reads the answer, all within the timeout. The client's own deadline
    /// ends when the answer's head arrives, and after it only a gap longer than the read timeout
    /// between two bytes ends the body: a receiver that sends a byte now and then would hold the
    /// stage (and, under `lymph serve`, the spool behind it) for as long as it liked.
    static func exchange(
        _ client: HTTPClient, _ request: HTTPClientRequest, timeoutMillis: Int64, quoting: Int = quotedBytes, control: RunControl? = nil
    ) async throws -> Answer {
        try await withThrowingTaskGroup(of: Answer?.self) { group in
            group.addTask {
                let response = try await client.execute(request, timeout: .milliseconds(timeoutMillis))
                var quoted: [UInt8] = []
                var read = 0
                for try await chunk in response.body {
                    if quoted.count < quoting { quoted.append(contentsOf: chunk.readableBytesView.prefix(quoting - quoted.count)) }
                    read += chunk.readableBytes
                    if read > maxAnswerBytes { break }
                }
                return Answer(status: Int(response.status.code), retryAfter: response.headers.first(name: "retry-after"), quoted: quoted)
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(timeoutMillis))
                return nil
            }
            if let control {
                group.addTask {
                    while !control.stopGraceEnded { try await Task.sleep(for: .milliseconds(100)) }
                    throw StopGraceEnded()
                }
            }
            // The first to finish decides; the other is cancelled (the client cancels the request).
            defer { group.cancelAll() }
            guard let first = try await group.next(), let answer = first else { throw AttemptTimedOut() }
            return answer
        }
    }

    /// An error of the client, said briefly.
    static func describe(_ error: any Error) -> String {
        if error is AttemptTimedOut { return "no whole answer within the timeout" }
        // The parser's own words ("invalid constant string") do not say that it was the answer.
        if let e = error as? HTTPParserError { return "the answer is not HTTP (\(e))" }
        if let failure = ConnectionFailure(error) { return "\(failure)" }
        if let e = error as? HTTPClientError {
            switch e {
            case .deadlineExceeded, .readTimeout: return "no answer within the timeout"
            case .connectTimeout: return "could not connect within the timeout"
            default: return "\(e)"
            }
        }
        return "\(error)"
    }

    public func finish() async throws {
        await destination.shutdown()
    }
}
