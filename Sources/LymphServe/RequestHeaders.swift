import Lymph
import NIOHTTP1

/// The request headers a webhook's handling reads, found in one pass over NIO's fields.
///
/// A lookup by name per header walks the fields each time (and `HTTPFields` joins a repeated
/// header's values on every lookup). A header sent more than once is joined with ", ",
/// so a doubled signature header still fails verification rather than picking one.
struct RequestHeaders {
    var contentLength: String?
    var contentType: String?
    var signature: String?
    /// `Transfer-Encoding`, `Content-Encoding` and `Expect`: how the body is framed and coded,
    /// and whether the client waits for a `100 Continue` before sending it.
    var transferEncoding: String?
    var contentEncoding: String?
    var expect: String?
    /// Every field, for the headers of other signature schemes (looked up by name, only when
    /// the pipeline's scheme is not IMMUNE's).
    let all: HTTPHeaders

    init(_ headers: HTTPHeaders) {
        all = headers
        for (name, value) in headers {
            // Names compared ignoring ASCII case, the length first: most fields are skipped
            // without looking at their bytes.
            let n = name.utf8.count
            if n == Self.contentLengthName.count, Self.named(name, Self.contentLengthName) {
                Self.add(value, to: &contentLength)
            } else if n == Self.contentTypeName.count, Self.named(name, Self.contentTypeName) {
                Self.add(value, to: &contentType)
            } else if n == Self.signatureName.count, Self.named(name, Self.signatureName) {
                Self.add(value, to: &signature)
            } else if n == Self.transferEncodingName.count, Self.named(name, Self.transferEncodingName) {
                Self.add(value, to: &transferEncoding)
            } else if n == Self.contentEncodingName.count, Self.named(name, Self.contentEncodingName) {
                Self.add(value, to: &contentEncoding)
            } else if n == Self.expectName.count, Self.named(name, Self.expectName) {
                Self.add(value, to: &expect)
            }
        }
    }

    /// The value of the header named `lowercasedName` (repeated ones joined with ", "), as bytes.
    func value(_ lowercasedName: [UInt8]) -> ArraySlice<UInt8>? {
        if lowercasedName == Self.signatureName { return signature.map { Array($0.utf8)[...] } }
        var joined: String?
        for (name, value) in all where name.utf8.count == lowercasedName.count && Self.named(name, lowercasedName) {
            Self.add(value, to: &joined)
        }
        return joined.map { Array($0.utf8)[...] }
    }

    static let contentLengthName = Array("content-length".utf8)
    static let contentTypeName = Array("content-type".utf8)
    static let signatureName = Array(WebhookSignature.header.lowercased().utf8)
    static let transferEncodingName = Array("transfer-encoding".utf8)
    static let contentEncodingName = Array("content-encoding".utf8)
    static let expectName = Array("expect".utf8)

    /// Whether the client asks for `100 Continue` before it sends the body (`Expect:
    /// 100-continue`, the one expectation HTTP defines).
    var expectsContinue: Bool { expect.map { Self.lowercasedTokens($0) == ["100-continue"] } ?? false }

    /// A list field's members, lowercased, without spaces and empty members: `gzip, Chunked` is
    /// `["gzip", "chunked"]`.
    static func lowercasedTokens(_ value: String) -> [String] {
        value.split(separator: ",").map { trimmed(String($0)).lowercased() }.filter { !$0.isEmpty }
    }

    /// `name` equals `lowercased` ignoring ASCII case (same length already checked).
    private static func named(_ name: String, _ lowercased: [UInt8]) -> Bool {
        var i = 0
        for b in name.utf8 {
            let folded = b >= 0x41 && b <= 0x5A ? b + 0x20 : b
            if folded != lowercased[i] { return false }
            i += 1
        }
        return true
    }

    private static func add(_ value: String, to slot: inout String?) {
        let value = trimmed(value)
        if let existing = slot { slot = existing + ", " + value } else { slot = value }
    }

    /// Without leading and trailing spaces and tabs: NIO's parser keeps trailing ones, which
    /// are not part of a field's value (RFC 9110, 5.5).
    static func trimmed(_ value: String) -> String {
        func blank(_ b: UInt8?) -> Bool { b == 0x20 || b == 0x09 }
        guard blank(value.utf8.first) || blank(value.utf8.last) else { return value }
        var bytes = value.utf8[...]
        while blank(bytes.first) { bytes = bytes.dropFirst() }
        while blank(bytes.last) { bytes = bytes.dropLast() }
        return String(decoding: bytes, as: UTF8.self)
    }
}
