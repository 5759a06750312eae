import Foundation

/// How a sender signs its webhooks: which headers carry the signature, which bytes are signed,
/// and how the MAC is written. `verify`, `lymph sign` and `lymph send` take one by name.
public enum SignatureScheme: Sendable, Equatable, CustomStringConvertible {
    /// IMMUNE's: `x-immune-signature` is the hex HMAC-SHA256 of the body (`sha256=` optional).
    case immune
    /// Standard Webhooks (Svix and many vendors): `webhook-id`, `webhook-timestamp` and
    /// `webhook-signature` (`v1,<base64>`, space-separated), over `id.timestamp.body`, with a
    /// `whsec_` base64 secret.
    case standardWebhooks
    /// GitHub's: `X-Hub-Signature-256: sha256=<hex>` over the body.
    case github
    /// Stripe's: `Stripe-Signature: t=<ts>,v1=<hex>[,v1=...]` over `t.body`.
    case stripe
    /// Any HMAC of the body in one header, with the options given.
    case hmac(GenericHMAC)

    /// The generic scheme's options.
    public struct GenericHMAC: Sendable, Equatable {
        /// The header that carries the signature, lowercased.
        public var header: String
        public var algorithm: HMACAlgorithm
        public var encoding: SignatureEncoding
        /// Written before the encoded MAC (`sha256=`, say); empty for none.
        public var prefix: String

        /// A generic scheme; `header` is compared ignoring case.
        public init(header: String, algorithm: HMACAlgorithm = .sha256, encoding: SignatureEncoding = .hex, prefix: String = "") {
            self.header = header.lowercased()
            self.algorithm = algorithm
            self.encoding = encoding
            self.prefix = prefix
        }
    }

    /// The schemes' names, as written in a pipeline and on the command line.
    public static let names = ["immune", "standard_webhooks", "github", "stripe", "hmac"]

    /// The scheme named `name`, but `hmac`, which needs options (nil for an unknown name).
    public init?(name: String) {
        switch name {
        case "immune": self = .immune
        case "standard_webhooks": self = .standardWebhooks
        case "github": self = .github
        case "stripe": self = .stripe
        default: return nil
        }
    }

    /// The name, as written in a pipeline.
    public var name: String {
        switch self {
        case .immune: "immune"
        case .standardWebhooks: "standard_webhooks"
        case .github: "github"
        case .stripe: "stripe"
        case .hmac: "hmac"
        }
    }

    public var description: String { name }

    /// The headers a check reads, lowercased: what `lymph serve` keeps with a spooled webhook.
    public var headerNames: [String] {
        switch self {
        case .immune: [WebhookSignature.header]
        case .standardWebhooks: ["webhook-id", "webhook-timestamp", "webhook-signature"]
        case .github: ["x-hub-signature-256"]
        case .stripe: ["stripe-signature"]
        case .hmac(let options): [options.header]
        }
    }

    /// The scheme signs a timestamp, checked against `tolerance`.
    public var hasTimestamp: Bool {
        switch self {
        case .standardWebhooks, .stripe: true
        case .immune, .github, .hmac: false
        }
    }

    /// The MAC's algorithm.
    var algorithm: HMACAlgorithm {
        if case .hmac(let options) = self { return options.algorithm }
        return .sha256
    }

    /// The HMAC key for a secret's bytes: Standard Webhooks' secret is `whsec_` and base64 (the
    /// prefix optional, padding too), the others use the secret's bytes as they are. Nil when the
    /// secret is not a valid one for the scheme; the reason never holds the secret.
    public func key(forSecret secret: [UInt8]) -> Result<[UInt8], SignatureSchemeError> {
        guard case .standardWebhooks = self else {
            return secret.isEmpty ? .failure(SignatureSchemeError(message: "the secret is empty")) : .success(secret)
        }
        var text = String(decoding: secret, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("whsec_") { text.removeFirst(6) }
        let padded = text + String(repeating: "=", count: (4 - text.utf8.count % 4) % 4)
        guard !text.isEmpty, let key = Data(base64Encoded: padded), !key.isEmpty else {
            return .failure(SignatureSchemeError(message: "not a Standard Webhooks secret (whsec_ followed by base64)"))
        }
        return .success([UInt8](key))
    }
}

extension SignatureScheme {
    /// The scheme named on a command line: `hmac` takes `header` (required) and the other
    /// options, which no other scheme takes.
    public static func named(
        _ name: String, header: String? = nil, algorithm: String? = nil, encoding: String? = nil, prefix: String? = nil
    ) throws(SignatureSchemeError) -> SignatureScheme {
        guard name == "hmac" else {
            guard let scheme = SignatureScheme(name: name) else {
                let hint = Suggestion.closest(to: name, in: names).map { " (did you mean '\($0)'?)" } ?? ""
                throw SignatureSchemeError(message: "unknown scheme '\(name.cutForMessage())'\(hint); the schemes are \(names.joined(separator: ", "))")
            }
            if header != nil || algorithm != nil || encoding != nil || prefix != nil {
                throw SignatureSchemeError(message: "--header, --algorithm, --encoding and --prefix belong to scheme hmac, not \(name)")
            }
            return scheme
        }
        guard let header, !header.isEmpty, header.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") }) else {
            throw SignatureSchemeError(message: "scheme hmac needs a header name (visible ASCII, no ':' or spaces)")
        }
        var options = GenericHMAC(header: header)
        if let algorithm {
            guard let a = HMACAlgorithm(rawValue: algorithm) else { throw SignatureSchemeError(message: "the algorithm must be sha256 or sha512") }
            options.algorithm = a
        }
        if let encoding {
            guard let e = SignatureEncoding(rawValue: encoding) else { throw SignatureSchemeError(message: "the encoding must be hex or base64") }
            options.encoding = e
        }
        options.prefix = prefix ?? ""
        return .hmac(options)
    }
}

/// A scheme that cannot be used as given, or a secret that the scheme cannot use as a key;
/// `message` never holds the secret.
public struct SignatureSchemeError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// The hash of an HMAC.
public enum HMACAlgorithm: String, Sendable, CaseIterable {
    case sha256, sha512

    /// The MAC's length in bytes.
    public var byteCount: Int { self == .sha256 ? 32 : 64 }
}

/// How a MAC is written in a header.
public enum SignatureEncoding: String, Sendable, CaseIterable {
    case hex, base64

    /// `mac` written this way (hex in lowercase).
    public func encode(_ mac: [UInt8]) -> String {
        switch self {
        case .hex: Hex.string(mac)
        case .base64: Data(mac).base64EncodedString()
        }
    }

    /// The bytes of `text`, or nil when it is not this encoding.
    public func decode(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        switch self {
        case .hex: return Hex.decode(text)
        case .base64: return Data(base64Encoded: Data(text)).map { [UInt8]($0) }
        }
    }
}
