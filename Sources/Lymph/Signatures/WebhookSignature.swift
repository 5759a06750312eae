import Crypto

/// IMMUNE's webhook signature: the lowercase hex HMAC-SHA256 of the raw body, sent in
/// `x-immune-signature` (the `immune` scheme; `VerifyStage` checks it).
public enum WebhookSignature {
    /// `x-immune-signature`, the header the signature is sent in.
    public static let header = VerifyStage.header

    /// The signature of `body` under `secret`: lowercase hex HMAC-SHA256, as IMMUNE sends it.
    public static func sign(_ body: some Sequence<UInt8>, secret: [UInt8]) -> String {
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: secret))
        hmac.update(data: Array(body))
        return Hex.string(hmac.finalize())
    }
}
