import Foundation

/// Checks each delivery's webhook signature in its scheme (IMMUNE's by default:
/// `x-immune-signature`, the lowercase hex HMAC-SHA256 of the raw body, `sha256=` optional).
/// Several secrets allow rotation.
///
/// Fails closed: an event that did not arrive as a delivery has no signature and is rejected.
/// Messages say which check failed, never a secret or the expected signature.
public struct VerifyStage: Stage {
    public static let header = WebhookSignature.header

    /// The scheme and its keys.
    public let verifier: SignatureVerifier
    let maxAge: Double?

    /// IMMUNE's scheme over `secrets`.
    public init(secrets: [[UInt8]], maxAge: Double? = nil) {
        self.init(verifier: SignatureVerifier(scheme: .immune, keys: secrets), maxAge: maxAge)
    }

    /// A stage that checks with `verifier`, and `created_at` against `maxAge` when given.
    public init(verifier: SignatureVerifier, maxAge: Double? = nil) {
        self.verifier = verifier
        self.maxAge = maxAge
    }

    public func process(_ events: [Event], context: StageContext) async throws -> [StageOutcome] {
        events.map { check($0, now: context.now) }
    }

    func check(_ event: Event, now: Double) -> StageOutcome {
        guard let delivery = event.delivery else {
            return .fail(
                .unsigned,
                message: "event arrived without a signature (a plain event line, not a delivery with headers and body); verify rejects unsigned events")
        }
        // A spooled webhook is judged by when it arrived, not by when the worker reaches it:
        // a backlog (or a restart) must not turn accepted events into `too_old`.
        let arrived = delivery.receivedAt ?? now
        // `lymph serve` checked this delivery with these secrets before spooling it.
        if delivery.prepared?.signatureChecked != true,
            let problem = verifier.check(header: { delivery.headerBytes($0) }, body: delivery.body, now: arrived)
        {
            return .fail(reason: problem.reason, message: problem.message)
        }
        // `created_at` is read only when there is an age to check it against.
        if maxAge != nil, let problem = checkAge(event.createdAtBytes, now: arrived) {
            return .fail(reason: problem.reason, message: problem.message)
        }
        return .pass
    }

    /// Why `created_at` is outside `max_age` of `now` (nil when it is within, or no max_age).
    public func checkAge(_ createdAt: ArraySlice<UInt8>?, now: Double) -> (reason: String, message: String)? {
        guard let maxAge else { return nil }
        let created = createdAt.flatMap(Timestamp.parse) ?? 0
        if created < now - maxAge {
            return (Reason.tooOld.rawValue, "created_at is older than max_age (\(Int(maxAge))s): a late delivery or a replay")
        }
        if created > now + maxAge {
            return (Reason.inFuture.rawValue, "created_at is more than max_age (\(Int(maxAge))s) in the future: check the sender's clock")
        }
        return nil
    }

    /// Why a signature does not verify, or nil when it does. For callers that hold the raw
    /// request (`lymph serve` checks before storing anything): `header` gives a header's value
    /// by its lowercased name. Messages never hold a secret.
    public func checkSignature(header: ([UInt8]) -> ArraySlice<UInt8>?, body: ArraySlice<UInt8>, now: Double) -> (reason: String, message: String)? {
        verifier.check(header: header, body: body, now: now)
    }
}
