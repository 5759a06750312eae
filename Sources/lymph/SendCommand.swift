import ArgumentParser
import Foundation
import Logging
import Lymph
import LymphServe

struct SendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "POST events (or captured deliveries) to a webhook receiver, signed as IMMUNE (or --scheme) signs them.",
        discussion: """
            Each line is one request: an event is sent as its exact bytes; a delivery line \
            ({"headers", "body"}, as `lymph sample --sign` writes) sends its body with its headers. With \
            --secret the body is (re)signed. Connection errors, timeouts, answers cut short and 5xx \
            answers are retried with exponential backoff (honouring Retry-After). Redirects are not \
            followed: a 3xx is a request without a 2xx. A request that still gets no answer after its \
            retries stops the send (the receiver is taken as gone): nothing more is sent. A summary goes \
            to stderr: requests, statuses with the receiver's reasons ("401: 3 (bad_signature: 3)"), \
            requests with no answer and why, failed (every request without a 2xx), latency p50/p95/p99. \
            Exit 0 when every request got a 2xx, 1 otherwise.
            Example: lymph sample --count 1000 | lymph send http://127.0.0.1:8080/webhooks --secret env:S
            """
    )

    @Argument(help: "The receiver's URL.")
    var url: String

    @Argument(help: "Files of events or deliveries (NDJSON); stdin when none or '-'.", completion: .file())
    var inputs: [String] = []

    @Option(help: "Secret to sign with: env:NAME or file:PATH.")
    var secret: String?

    @OptionGroup var scheme: SchemeOptions

    @Option(help: "Requests in flight at once.")
    var concurrency: Int = 8

    @Option(help: "At most this many requests per second (e.g. 500 or 500/s).")
    var rate: String?

    @Option(help: "Retries of a request after a connection error, a timeout or a 5xx.")
    var retries: Int = 5

    @Option(help: "Time allowed for one attempt (connecting, the answer and its body), in seconds.")
    var timeout: Int = 10

    func validate() throws {
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else { throw ValidationError("URL must start with http:// or https://") }
        // The http stage's rule: a port no connection can have would fail every request, each retried.
        guard HTTPSpec.parse(url) != nil else { throw ValidationError("URL must name a host, and a port from 1 to 65535 if any") }
        // Never sent by the client: a receiver's 401 would be all the user saw.
        if HTTPSpec.hasCredentials(url) {
            throw ValidationError(
                "the URL carries a user or password, which lymph send does not send: give the URL without them, and an Authorization header in the deliveries' headers"
            )
        }
        guard (1...1024).contains(concurrency) else { throw ValidationError("--concurrency must be 1...1024") }
        guard (0...20).contains(retries) else { throw ValidationError("--retries must be 0...20") }
        guard (1...300).contains(timeout) else { throw ValidationError("--timeout must be 1...300 seconds") }
        if let rate, Self.parseRate(rate) == nil { throw ValidationError("--rate must be a positive number of requests per second, such as 500 or 500/s") }
        if let secret { try SecretOption.validate(secret) }
    }

    static func parseRate(_ text: String) -> Double? {
        let t = text.hasSuffix("/s") ? String(text.dropLast(2)) : text
        guard let r = Double(t), r > 0, r.isFinite else { return nil }
        return r
    }

    func run() async throws {
        let key = try secret.map { try scheme.key(secret: $0, command: "send") }
        let unreadable = ItemReader.checkReadable(inputs)
        if !unreadable.isEmpty {
            unreadable.forEach { Console.error("lymph send: \($0)") }
            throw ExitCode(2)
        }
        var options = WebhookSender.Options(url: url, secret: key)
        options.scheme = try scheme.parsed()
        options.concurrency = concurrency
        options.rate = rate.flatMap(Self.parseRate)
        options.retries = retries
        options.timeout = .seconds(timeout)
        let sender = WebhookSender(options: options, logger: Logger(label: "lymph.send"))
        let summary: WebhookSender.Summary
        let reader = ItemReader(paths: inputs, maxItemBytes: 64 << 20)
        // The first SIGINT/SIGTERM/SIGHUP stops reading: the requests in flight end and the
        // summary is printed (exit 128 + the signal); a second exits at once.
        let control = RunControl()
        let signals = SignalTrap(stopOn: SignalTrap.runSignals) { control.requestStop(signal: $0) }
        defer { signals.cancel() }
        do {
            summary = try await sender.send(reader, control: control)
        } catch {
            Console.error("lymph send: \(error)")
            throw ExitCode(2)
        }
        Console.error("lymph send: " + summary.text)
        if control.isStopRequested && !reader.finished {
            Console.error("lymph send: stopped by \(SignalTrap.name(control.stopSignal)): the rest of the input was not sent")
            throw ExitCode(128 + control.stopSignal)
        }
        if let failure = reader.failure {
            Console.error("lymph send: \(failure); reading stopped there: the lines before it were sent")
            throw ExitCode(1)
        }
        if !summary.allAccepted { throw ExitCode(1) }
    }
}
