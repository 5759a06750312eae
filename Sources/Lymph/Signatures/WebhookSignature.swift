import Crypto
import Foundation

/// Signing webhooks as their senders do, in any `SignatureScheme`: what `lymph sign`,
/// `lymph send` and `lymph sample --sign` write. `SignatureVerifier` checks the same headers.
public enum WebhookSignature {
    /// `x-immune-signature`, the header IMMUNE's signature is sent in.
    public static let header = "x-immune-signature"

    /// IMMUNE's signature of `body` under `secret`: lowercase hex HMAC-SHA256.
    public static func sign(_ body: some Sequence<UInt8>, secret: [UInt8]) -> String {
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: secret))
        hmac.update(data: Array(body))
        return Hex.string(hmac.finalize())
    }

    /// The headers `scheme` sends with `body`, signed with `key` (made from the secret by
    /// `SignatureScheme.key(forSecret:)`). `id` is Standard Webhooks' `webhook-id`; `timestamp`
    /// (seconds since the epoch) is signed by Standard Webhooks and Stripe.
    public static func headers(
        _ scheme: SignatureScheme, key: [UInt8], body: ArraySlice<UInt8>, id: String, timestamp: Int
    ) -> [(name: String, value: String)] {
        switch scheme {
        case .immune:
            return [(header, Hex.string(KeyedMAC(key: key, algorithm: .sha256).mac(body: body)))]
        case .github:
            return [("X-Hub-Signature-256", "sha256=" + Hex.string(KeyedMAC(key: key, algorithm: .sha256).mac(body: body)))]
        case .hmac(let options):
            let mac = KeyedMAC(key: key, algorithm: options.algorithm).mac(body: body)
            return [(options.header, options.prefix + options.encoding.encode(mac))]
        case .standardWebhooks:
            let mac = KeyedMAC(key: key, algorithm: .sha256).mac(prefix: Array("\(id).\(timestamp).".utf8), body: body)
            return [("webhook-id", id), ("webhook-timestamp", String(timestamp)), ("webhook-signature", "v1," + SignatureEncoding.base64.encode(mac))]
        case .stripe:
            let mac = KeyedMAC(key: key, algorithm: .sha256).mac(prefix: Array("\(timestamp).".utf8), body: body)
            return [("Stripe-Signature", "t=\(timestamp),v1=\(Hex.string(mac))")]
        }
    }

    /// The id Standard Webhooks signs for `body`: the event's `id` when the body is a JSON
    /// object that has a string one (a retry then carries the same id), else a random `msg_` id.
    public static func messageID(for body: ArraySlice<UInt8>) -> String {
        if let document = try? JSONDocument(parsing: Array(body)), let id = document.root.member("id")?.string, !id.isEmpty {
            return id
        }
        var random = SystemRandomNumberGenerator()
        return "msg_" + Hex.string((0..<12).map { _ in UInt8.random(in: 0...255, using: &random) })
    }
}
