import HTTPTypes
import Lymph
import NIOCore

/// What `WebhookRequestHandler` asks of the server: its decisions on a webhook, and the spool
/// that stores it. `WebhookServer` is the intake in use; tests give the handler one of their
/// own. A class, so the handler holds it as one reference. Every call is made on the
/// connection's event loop and must not block it.
protocol WebhookIntake: AnyObject, Sendable {
    /// The answer due before the body is read (503 while stopping, 413 for a declared length
    /// over the limit); nil when the body should be read.
    func refuseBeforeBody(_ headers: RequestHeaders) -> WebhookAnswer?

    /// A complete webhook: answer it at once, or store it. A `.store` holds its place against
    /// the spool's bounds until `stored` is called with its outcome.
    func admit(body: [UInt8], headers: RequestHeaders) -> WebhookAdmission

    /// Queues an admitted webhook's spool entry; `completion` runs on `loop` once it is
    /// committed, or has failed, or missed the spool's deadline.
    func append(_ item: [UInt8], body: JSONDocument?, on loop: any EventLoop, completion: @escaping SpoolWriter.Completion)

    /// The answer once the spool has had its say on an admitted webhook (202, or 503).
    func stored(_ outcome: Result<Int64, any Error>, id: String, itemBytes: Int) -> WebhookAnswer

    /// Counts a webhook request's answer and its time.
    func answered(status: HTTPResponse.Status, since start: ContinuousClock.Instant)
}

extension WebhookServer: WebhookIntake {
    func append(_ item: [UInt8], body: JSONDocument?, on loop: any EventLoop, completion: @escaping SpoolWriter.Completion) {
        writer.append(item, body: body, on: loop, completion: completion)
    }
}
