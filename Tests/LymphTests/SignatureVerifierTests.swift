import Crypto
import Foundation
import Testing

@testable import Lymph

/// Each scheme's checks and their reasons, with headers made by `WebhookSignature.headers` (the
/// end-to-end conformance tests check both against independent implementations).
@Suite("SignatureVerifier")
struct SignatureVerifierTests {
    static let body = Array(#"{"id":"e1","type":"alert.triggered"}"#.utf8)[...]
    static let now = 1_780_315_200.0
    static let schemes: [SignatureScheme] = [
        .immune, .standardWebhooks, .github, .stripe,
        .hmac(.init(header: "X-Signature", algorithm: .sha512, encoding: .base64, prefix: "sha512=")),
    ]

    static func key(_ scheme: SignatureScheme, _ secret: String = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") -> [UInt8] {
        try! scheme.key(forSecret: Array(secret.utf8)).get()
    }

    static func headers(_ scheme: SignatureScheme, key: [UInt8], body: ArraySlice<UInt8> = body, at time: Double = now) -> [String: String] {
        var out: [String: String] = [:]
        for (name, value) in WebhookSignature.headers(scheme, key: key, body: body, id: "msg_1", timestamp: Int(time)) { out[name.lowercased()] = value }
        return out
    }

    static func check(_ verifier: SignatureVerifier, _ headers: [String: String], body: ArraySlice<UInt8> = body) -> String? {
        verifier.check(header: { name in headers[String(decoding: name, as: UTF8.self)].map { Array($0.utf8)[...] } }, body: body, now: now)?.reason
    }

    @Test("each scheme accepts its own signature under any of the secrets, and refuses a changed body as bad_signature", arguments: schemes)
    func roundTrip(scheme: SignatureScheme) {
        let old = Self.key(scheme, "whsec_b2xkIHNlY3JldCBvbGQgc2VjcmV0")
        let current = Self.key(scheme)
        let verifier = SignatureVerifier(scheme: scheme, keys: [old, current])
        #expect(Self.check(verifier, Self.headers(scheme, key: current)) == nil)
        #expect(Self.check(verifier, Self.headers(scheme, key: old)) == nil)
        var changed = Array(Self.body)
        changed[changed.count - 3] ^= 1
        #expect(Self.check(verifier, Self.headers(scheme, key: current), body: changed[...]) == "bad_signature")
        let stranger = Self.key(scheme, "whsec_c29tZW9uZSBlbHNlJ3Mgc2VjcmV0")
        #expect(Self.check(verifier, Self.headers(scheme, key: stranger)) == "bad_signature")
    }

    @Test("a missing header of the scheme is missing_signature, naming it", arguments: schemes)
    func missing(scheme: SignatureScheme) {
        let key = Self.key(scheme)
        let verifier = SignatureVerifier(scheme: scheme, keys: [key])
        for name in scheme.headerNames {
            var headers = Self.headers(scheme, key: key)
            headers[name] = nil
            let problem = verifier.check(
                header: { n in headers[String(decoding: n, as: UTF8.self)].map { Array($0.utf8)[...] } }, body: Self.body, now: Self.now)
            #expect(problem?.reason == "missing_signature")
            #expect(problem?.message.lowercased().contains(name) == true, "\(problem?.message ?? "")")
        }
    }

    @Test("signatures not in the scheme's form are malformed_signature")
    func malformed() {
        let cases: [(SignatureScheme, String, String)] = [
            (.immune, "x-immune-signature", "not-hex"),
            (.github, "x-hub-signature-256", String(repeating: "a", count: 64)),  // no sha256=
            (.standardWebhooks, "webhook-signature", "v2,J19/AId3pnXpgy4CVaG3RNvlwNsdSYVMVvYa1UBNnuQ="),  // no v1
            (.standardWebhooks, "webhook-timestamp", "12e9"),
            (.stripe, "stripe-signature", "v1=" + String(repeating: "a", count: 64)),  // no t=
            (.hmac(.init(header: "x-sig", encoding: .base64, prefix: "sha256=")), "x-sig", "sha256=" + String(repeating: "A", count: 10)),
        ]
        for (scheme, name, value) in cases {
            let key = Self.key(scheme)
            var headers = Self.headers(scheme, key: key)
            headers[name] = value
            #expect(Self.check(SignatureVerifier(scheme: scheme, keys: [key]), headers) == "malformed_signature", "\(scheme) \(name): \(value)")
        }
    }

    @Test("hex signatures decode in either case; any byte that is not a hex digit, anywhere, or an odd length makes them not hex")
    func hexDecoding() {
        let bytes: [UInt8] = (0..<32).map { UInt8($0 * 8 + 3) }
        #expect(Hex.decode(Array(Hex.string(bytes).utf8)[...]) == bytes)
        #expect(Hex.decode(Array(Hex.string(bytes).uppercased().utf8)[...]) == bytes)
        #expect(Hex.decode(Array("00fFa9".utf8)[2...]) == [0xFF, 0xA9])
        #expect(Hex.decode([][...]) == [])
        #expect(Hex.decode(Array("abc".utf8)[...]) == nil)
        let valid = Array(Hex.string(bytes).utf8)
        for position in valid.indices {
            // Both sides of each digit range, and bytes far outside them.
            for wrong in Array("gG/:@` ".utf8) + [0, 0x7F, 0xB0, 0xFF] {
                var text = valid
                text[position] = wrong
                #expect(Hex.decode(text[...]) == nil, "\(wrong) at \(position)")
            }
        }
    }

    @Test("Standard Webhooks and Stripe judge the signed timestamp against the tolerance, both ways; a late signature that matches is too_old")
    func tolerance() {
        for scheme in [SignatureScheme.standardWebhooks, .stripe] {
            let key = Self.key(scheme)
            let verifier = SignatureVerifier(scheme: scheme, keys: [key], tolerance: 60)
            #expect(Self.check(verifier, Self.headers(scheme, key: key, at: Self.now - 59)) == nil)
            #expect(Self.check(verifier, Self.headers(scheme, key: key, at: Self.now - 61)) == "too_old")
            #expect(Self.check(verifier, Self.headers(scheme, key: key, at: Self.now + 61)) == "in_future")
        }
    }

    @Test("a Standard Webhooks secret must be base64 (whsec_ and padding optional); other schemes take any non-empty secret")
    func secrets() throws {
        #expect(SignatureScheme.standardWebhooks.key(forSecret: Array("whsec_!!!".utf8)).isFailure)
        #expect(SignatureScheme.standardWebhooks.key(forSecret: Array("whsec_".utf8)).isFailure)
        let prefixed = SignatureScheme.standardWebhooks.key(forSecret: Array("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".utf8))
        let bare = SignatureScheme.standardWebhooks.key(forSecret: Array("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".utf8))
        let (a, b) = (try prefixed.get(), try bare.get())
        #expect(a == b)
        #expect(try SignatureScheme.stripe.key(forSecret: Array("whsec_x".utf8)).get() == Array("whsec_x".utf8))
        #expect(SignatureScheme.github.key(forSecret: []).isFailure)
    }

    @Test("scheme names from the command line: unknown ones suggest the closest; hmac needs a header, and its options belong to it alone")
    func named() throws {
        #expect(try SignatureScheme.named("stripe") == .stripe)
        #expect(throws: SignatureSchemeError.self) { try SignatureScheme.named("stripx") }
        #expect(throws: SignatureSchemeError.self) { try SignatureScheme.named("hmac") }
        #expect(throws: SignatureSchemeError.self) { try SignatureScheme.named("github", header: "x") }
        let generic = try SignatureScheme.named("hmac", header: "X-Sig", algorithm: "sha512", encoding: "base64", prefix: "p=")
        #expect(generic == .hmac(.init(header: "x-sig", algorithm: .sha512, encoding: .base64, prefix: "p=")))
    }

    /// Keys shorter than a block, exactly one, and longer (hashed first); empty messages and
    /// messages of several blocks; with and without a signed prefix.
    @Test(
        "KeyedMAC gives swift-crypto's HMAC for SHA-256 and SHA-512, whatever the key's length, and matchesSHA256 accepts exactly that MAC",
        arguments: [0, 1, 32, 63, 64, 65, 127, 128, 129, 300])
    func keyedMACMatchesHMAC(keyLength: Int) {
        var generator = SystemRandomNumberGenerator()
        let key = (0..<keyLength).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for bodyLength in [0, 1, 55, 56, 64, 119, 500, 4097] {
            let body = (0..<bodyLength).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let prefix = Array("msg_1.1780315200.".utf8)
            let sha256 = Array(HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: key)))
            let sha512 = Array(HMAC<SHA512>.authenticationCode(for: prefix + body, using: SymmetricKey(data: key)))
            let mac256 = KeyedMAC(key: key, algorithm: .sha256)
            #expect(mac256.mac(body: body[...]) == sha256)
            #expect(mac256.mac(prefix: prefix, body: body[...]) == Array(HMAC<SHA256>.authenticationCode(for: prefix + body, using: SymmetricKey(data: key))))
            #expect(KeyedMAC(key: key, algorithm: .sha512).mac(prefix: prefix, body: body[...]) == sha512)
            #expect(mac256.matchesSHA256(sha256, body: body[...]))
            var wrong = sha256
            wrong[bodyLength % 32] ^= 1
            #expect(!mac256.matchesSHA256(wrong, body: body[...]))
            #expect(!mac256.matchesSHA256(Array(sha256.dropLast()), body: body[...]))
        }
    }
}

extension Result {
    fileprivate var isFailure: Bool {
        if case .failure = self { return true }
        return false
    }
}
