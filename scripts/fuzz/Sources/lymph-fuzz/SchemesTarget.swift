@testable import Lymph

/// The signature schemes beside IMMUNE's, on hostile headers: whatever the header holds, a
/// webhook is accepted only when the header carries the real HMAC of what the scheme signs, and
/// `too_old` / `in_future` are said only of a signature that matched. The oracle below parses
/// the headers on its own, not with the verifier's code.
///
/// Input: a scheme byte (0 Standard Webhooks, 1 Stripe, 2 GitHub, 3 a generic base64
/// HMAC-SHA512 with a `sha512=` prefix), the header (Standard Webhooks: id, 0x01, timestamp,
/// 0x01, signatures), 0x00, the body.
extension FuzzTargets {
    static let schemeKey = Array("fuzz-secret".utf8)
    static let schemeNow = 1_800_000_000.0
    static let genericScheme = SignatureScheme.hmac(.init(header: "x-sig", algorithm: .sha512, encoding: .base64, prefix: "sha512="))

    static func schemes(_ bytes: [UInt8]) {
        guard let selector = bytes.first else { return }
        let rest = bytes.dropFirst()
        let split = rest.firstIndex(of: 0) ?? rest.endIndex
        let header = rest[..<split]
        let body = split < rest.endIndex ? rest[(split + 1)...] : []
        let scheme: SignatureScheme
        var values: [String: ArraySlice<UInt8>] = [:]
        switch selector % 4 {
        case 0:
            scheme = .standardWebhooks
            let parts = header.split(separator: 0x01, maxSplits: 2, omittingEmptySubsequences: false)
            for (name, part) in zip(["webhook-id", "webhook-timestamp", "webhook-signature"], parts) { values[name] = part }
        case 1:
            scheme = .stripe
            values["stripe-signature"] = header
        case 2:
            scheme = .github
            values["x-hub-signature-256"] = header
        default:
            scheme = genericScheme
            values["x-sig"] = header
        }
        let verifier = SignatureVerifier(scheme: scheme, keys: [schemeKey])
        let problem = verifier.check(header: { values[String(decoding: $0, as: UTF8.self)] }, body: body, now: schemeNow)
        let matched = problem == nil || problem?.reason == Reason.tooOld.rawValue || problem?.reason == Reason.inFuture.rawValue
        if matched && !carriesRealMAC(selector % 4, values, body: body) {
            broken("a \(scheme.name) signature accepted (\(problem?.reason ?? "ok")) that is not the HMAC of what the scheme signs", bytes)
        }
    }

    /// Whether one of the header's signatures is the HMAC the scheme computes, by this oracle's
    /// own reading of the header.
    static func carriesRealMAC(_ kind: UInt8, _ values: [String: ArraySlice<UInt8>], body: ArraySlice<UInt8>) -> Bool {
        func text(_ name: String) -> String { String(decoding: values[name] ?? [], as: UTF8.self) }
        switch kind {
        case 0:
            let id = values["webhook-id"] ?? [], timestamp = values["webhook-timestamp"] ?? []
            let mac = KeyedMAC(key: schemeKey, algorithm: .sha256).mac(prefix: Array(id) + [0x2E] + Array(timestamp) + [0x2E], body: body)
            let expected = Array(("v1," + SignatureEncoding.base64.encode(mac)).utf8)
            return (values["webhook-signature"] ?? []).split(separator: 0x20).contains { $0.elementsEqual(expected) }
        case 1:
            let items = (values["stripe-signature"] ?? []).split(separator: 0x2C).map { $0.drop { $0 == 0x20 } }
            guard let t = items.first(where: { $0.starts(with: Array("t=".utf8)) })?.dropFirst(2) else { return false }
            let mac = Hex.string(KeyedMAC(key: schemeKey, algorithm: .sha256).mac(prefix: Array(t) + [0x2E], body: body))
            return items.contains { $0.starts(with: Array("v1=".utf8)) && String(decoding: $0.dropFirst(3), as: UTF8.self).lowercased() == mac }
        case 2:
            let mac = Hex.string(KeyedMAC(key: schemeKey, algorithm: .sha256).mac(body: body))
            return text("x-hub-signature-256").hasPrefix("sha256=") && text("x-hub-signature-256").dropFirst(7).lowercased() == mac
        default:
            let mac = SignatureEncoding.base64.encode(KeyedMAC(key: schemeKey, algorithm: .sha512).mac(body: body))
            return text("x-sig") == "sha512=" + mac
        }
    }
}
