/// Checks a webhook's signature under one scheme against one or more secrets (several allow
/// rotation). Every comparison is constant-time; messages name the header and the check that
/// failed, never a secret or the expected signature.
public struct SignatureVerifier: Sendable {
    public let scheme: SignatureScheme
    let keys: [KeyedMAC]
    /// Seconds a signed timestamp may be from the time of the check, either way (Standard
    /// Webhooks, Stripe).
    public let tolerance: Double
    /// The scheme's header names as bytes, looked up once per check.
    let names: [[UInt8]]

    /// The default tolerance, as Standard Webhooks' and Stripe's libraries have it.
    public static let defaultTolerance: Double = 300

    /// A verifier for `keys`, each already made from its secret (`SignatureScheme.key(forSecret:)`).
    public init(scheme: SignatureScheme, keys: [[UInt8]], tolerance: Double = SignatureVerifier.defaultTolerance) {
        self.scheme = scheme
        self.keys = keys.map { KeyedMAC(key: $0, algorithm: scheme.algorithm) }
        self.tolerance = tolerance
        names = scheme.headerNames.map { Array($0.utf8) }
    }

    /// Why a check failed: a reason code and a message a person can act on.
    public typealias Problem = (reason: String, message: String)

    /// Why the webhook's signature does not verify, or nil when it does. `header` gives a
    /// header's value by its lowercased name (nil when absent); `now` is what signed timestamps
    /// are judged against (when the webhook arrived, for a spooled or captured one).
    public func check(header: ([UInt8]) -> ArraySlice<UInt8>?, body: ArraySlice<UInt8>, now: Double) -> Problem? {
        switch scheme {
        case .immune: return checkImmune(header(names[0]), body: body)
        case .github: return checkGitHub(header(names[0]), body: body)
        case .hmac(let options): return checkGeneric(header(names[0]), options: options, body: body)
        case .standardWebhooks:
            return checkStandardWebhooks(id: header(names[0]), timestamp: header(names[1]), signatures: header(names[2]), body: body, now: now)
        case .stripe: return checkStripe(header(names[0]), body: body, now: now)
        }
    }

    // MARK: - Schemes

    private func checkImmune(_ header: ArraySlice<UInt8>?, body: ArraySlice<UInt8>) -> Problem? {
        guard var signature = header else { return missing(WebhookSignature.header) }
        if signature.starts(with: Self.sha256Prefix) { signature = signature.dropFirst(Self.sha256Prefix.count) }
        guard let provided = Hex.decode(signature), provided.count == 32 else {
            // `lymph serve` joins a header sent twice with ", ": say so rather than "not hex".
            if signature.contains(UInt8(ascii: ",")) {
                return (
                    Reason.malformedSignature.rawValue,
                    "\(WebhookSignature.header) holds more than one value (the header sent twice?): send one signature"
                )
            }
            return (Reason.malformedSignature.rawValue, "\(WebhookSignature.header) is not 64 hex digits (optionally prefixed with sha256=)")
        }
        return keys.contains { $0.matchesSHA256(provided, body: body) } ? nil : bad(WebhookSignature.header)
    }

    private func checkGitHub(_ header: ArraySlice<UInt8>?, body: ArraySlice<UInt8>) -> Problem? {
        let name = "X-Hub-Signature-256"
        guard let signature = header else { return missing(name) }
        guard signature.starts(with: Self.sha256Prefix), let provided = Hex.decode(signature.dropFirst(Self.sha256Prefix.count)),
            provided.count == 32
        else {
            return (Reason.malformedSignature.rawValue, "\(name) is not sha256= followed by 64 hex digits")
        }
        return keys.contains { $0.matchesSHA256(provided, body: body) } ? nil : bad(name)
    }

    private func checkGeneric(_ header: ArraySlice<UInt8>?, options: SignatureScheme.GenericHMAC, body: ArraySlice<UInt8>) -> Problem? {
        guard var signature = header else { return missing(options.header) }
        let prefix = Array(options.prefix.utf8)
        let shape =
            "\(options.header) is not \(options.prefix.isEmpty ? "" : "\(options.prefix) followed by ")the \(options.encoding.rawValue) \(options.algorithm.rawValue) HMAC"
        guard signature.starts(with: prefix) else { return (Reason.malformedSignature.rawValue, shape) }
        signature = signature.dropFirst(prefix.count)
        guard let provided = options.encoding.decode(signature), provided.count == options.algorithm.byteCount else {
            return (Reason.malformedSignature.rawValue, shape)
        }
        return keys.contains { KeyedMAC.equal($0.mac(body: body), provided) } ? nil : bad(options.header)
    }

    private func checkStandardWebhooks(
        id: ArraySlice<UInt8>?, timestamp: ArraySlice<UInt8>?, signatures: ArraySlice<UInt8>?, body: ArraySlice<UInt8>, now: Double
    ) -> Problem? {
        guard let id else { return missing("webhook-id") }
        guard let timestamp else { return missing("webhook-timestamp") }
        guard let signatures else { return missing("webhook-signature") }
        guard let seconds = Self.seconds(timestamp) else {
            return (Reason.malformedSignature.rawValue, "webhook-timestamp is not a whole number of seconds since the epoch")
        }
        // Space-separated `version,signature` pairs; versions other than v1 are ignored.
        var provided: [[UInt8]] = []
        for token in signatures.split(separator: UInt8(ascii: " ")) where token.starts(with: Self.v1Comma) {
            if let mac = SignatureEncoding.base64.decode(token.dropFirst(Self.v1Comma.count)), mac.count == 32 { provided.append(mac) }
        }
        guard !provided.isEmpty else {
            return (Reason.malformedSignature.rawValue, "webhook-signature holds no v1,<base64 HMAC-SHA256> signature")
        }
        var signed: [UInt8] = Array(id)
        signed.append(UInt8(ascii: "."))
        signed.append(contentsOf: timestamp)
        signed.append(UInt8(ascii: "."))
        let matched = keys.contains { key in
            let mac = key.mac(prefix: signed, body: body)
            return provided.contains { KeyedMAC.equal(mac, $0) }
        }
        guard matched else { return bad("webhook-signature") }
        return checkTimestamp(seconds, header: "webhook-timestamp", now: now)
    }

    private func checkStripe(_ header: ArraySlice<UInt8>?, body: ArraySlice<UInt8>, now: Double) -> Problem? {
        let name = "Stripe-Signature"
        guard let header else { return missing(name) }
        var timestamp: ArraySlice<UInt8>?
        var provided: [[UInt8]] = []
        for item in header.split(separator: UInt8(ascii: ",")) {
            let pair = item.drop { $0 == 0x20 }
            guard let equals = pair.firstIndex(of: UInt8(ascii: "=")) else { continue }
            let key = pair[..<equals], value = pair[(equals + 1)...]
            if key.elementsEqual("t".utf8), timestamp == nil {
                timestamp = value
            } else if key.elementsEqual("v1".utf8), let mac = Hex.decode(value), mac.count == 32 {
                provided.append(mac)
            }
        }
        guard let timestamp, let seconds = Self.seconds(timestamp), !provided.isEmpty else {
            return (Reason.malformedSignature.rawValue, "\(name) needs t=<seconds since the epoch> and at least one v1=<64 hex digits>")
        }
        var signed = Array(timestamp)
        signed.append(UInt8(ascii: "."))
        let matched = keys.contains { key in
            let mac = key.mac(prefix: signed, body: body)
            return provided.contains { KeyedMAC.equal(mac, $0) }
        }
        guard matched else { return bad(name) }
        return checkTimestamp(seconds, header: name, now: now)
    }

    // MARK: - Parts

    private func checkTimestamp(_ seconds: Double, header: String, now: Double) -> Problem? {
        if seconds < now - tolerance {
            return (Reason.tooOld.rawValue, "\(header)'s timestamp is more than \(Int(tolerance))s old (tolerance): a late delivery or a replay")
        }
        if seconds > now + tolerance {
            return (Reason.inFuture.rawValue, "\(header)'s timestamp is more than \(Int(tolerance))s in the future (tolerance): check the sender's clock")
        }
        return nil
    }

    private func missing(_ header: String) -> Problem {
        (Reason.missingSignature.rawValue, "no \(header) header (the \(scheme.name) scheme)")
    }

    private func bad(_ header: String) -> Problem {
        (Reason.badSignature.rawValue, "\(header) does not match the body under any configured secret (wrong secret, or the body was altered)")
    }

    /// Whole seconds, ASCII digits only (at most 12: a timestamp, not a number to overflow on).
    static func seconds(_ text: ArraySlice<UInt8>) -> Double? {
        guard !text.isEmpty, text.count <= 12 else { return nil }
        var value = 0
        for b in text {
            guard b >= 0x30 && b <= 0x39 else { return nil }
            value = value * 10 + Int(b - 0x30)
        }
        return Double(value)
    }

    static let sha256Prefix = Array("sha256=".utf8)
    static let v1Comma = Array("v1,".utf8)
}
