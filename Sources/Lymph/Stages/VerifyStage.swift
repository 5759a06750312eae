import Crypto
import Foundation

/// Checks IMMUNE's webhook signature: `x-immune-signature` is the lowercase hex HMAC-SHA256 of
/// the raw body (an optional `sha256=` prefix is accepted). Several secrets allow rotation.
///
/// Fails closed: an event that did not arrive as a delivery has no signature and is rejected.
/// Messages say which check failed, never a secret or the expected signature.
public struct VerifyStage: Stage {
    public static let header = "x-immune-signature"

    /// Keyed HMAC states, copied per event so the key schedule is computed once.
    let keyed: [KeyedHMAC]
    let maxAge: Double?

    public init(secrets: [[UInt8]], maxAge: Double? = nil) {
        self.keyed = secrets.map { KeyedHMAC(HMAC<SHA256>(key: SymmetricKey(data: $0))) }
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
        // `lymph serve` checked this delivery with these secrets before spooling it.
        if delivery.prepared?.signatureChecked != true, let problem = checkSignature(delivery.headerBytes(Self.headerBytes), body: delivery.body) {
            return .fail(reason: problem.reason, message: problem.message)
        }
        // A spooled webhook is judged by when it arrived, not by when the worker reaches it:
        // a backlog (or a restart) must not turn accepted events into `too_old`.
        if let problem = checkAge(event.createdAtBytes, now: delivery.receivedAt ?? now) {
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
    /// request (`lymph serve` checks before storing anything); messages never hold a secret.
    public func checkSignature(_ header: ArraySlice<UInt8>?, body: ArraySlice<UInt8>) -> (reason: String, message: String)? {
        guard var signature = header else {
            return (Reason.missingSignature.rawValue, "no \(Self.header) header")
        }
        if signature.starts(with: Self.prefixBytes) { signature = signature.dropFirst(Self.prefixBytes.count) }
        guard let provided = Self.decodeHex(signature), provided.count == SHA256.byteCount else {
            return (Reason.malformedSignature.rawValue, "\(Self.header) is not 64 hex digits (optionally prefixed with sha256=)")
        }
        var matched = false
        for key in keyed where key.matches(provided, body: body) { matched = true }
        guard matched else {
            return (Reason.badSignature.rawValue, "\(Self.header) does not match the body under any configured secret (wrong secret, or the body was altered)")
        }
        return nil
    }

    static let headerBytes = Array(header.utf8)
    static let prefixBytes = Array("sha256=".utf8)

    static func decodeHex(_ utf8: ArraySlice<UInt8>) -> [UInt8]? {
        guard utf8.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        var i = utf8.startIndex
        while i < utf8.endIndex {
            let hi = JSONParser.hexValue(utf8[i]), lo = JSONParser.hexValue(utf8[i + 1])
            guard hi != 0xFF, lo != 0xFF else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}

/// An HMAC-SHA256 state with its key already absorbed.
///
/// `HMAC` keeps its digest context in a copy-on-write box that this type never mutates: every
/// use copies the state first, so sharing it between threads is safe.
struct KeyedHMAC: @unchecked Sendable {
    let prototype: HMAC<SHA256>

    init(_ prototype: HMAC<SHA256>) { self.prototype = prototype }

    /// Constant-time comparison of `provided` with the MAC of `body`.
    func matches(_ provided: [UInt8], body: ArraySlice<UInt8>) -> Bool {
        var h = prototype
        body.withUnsafeBytes { h.update(data: $0) }
        let mac = h.finalize()
        return mac.withUnsafeBytes { computed in
            guard computed.count == provided.count else { return false }
            var diff: UInt8 = 0
            for i in 0..<computed.count { diff |= computed[i] ^ provided[i] }
            return diff == 0
        }
    }
}
