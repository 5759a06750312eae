import HTTPTypes
import Lymph
import NIOHTTP1

/// A webhook request's answer: a status and a small JSON object, with the headers it needs.
struct WebhookAnswer {
    var status: HTTPResponse.Status
    var body: [UInt8]
    /// Sent with 503: when to try again, in seconds.
    var retryAfter: String?
    /// Sent with 405: the methods the server takes.
    var allow: String?
    /// Sent with 415 for a coded body: the codings the server takes.
    var acceptEncoding: String?
    /// Close the connection once the answer is written (413: the rest of the body is unread).
    var closesConnection = false

    init(_ status: HTTPResponse.Status, _ fields: KeyValuePairs<String, String>, retryAfter: String? = nil) {
        self.status = status
        body = WebhookServer.jsonBytes(fields)
        self.retryAfter = retryAfter
    }

    /// 405 for a method the server does not serve; the connection closes after it.
    static var methodNotAllowed: WebhookAnswer {
        var answer = WebhookAnswer(
            .methodNotAllowed, ["error": "method_not_allowed", "message": "this server takes POST (webhooks) and GET (/healthz, /metrics)"])
        answer.allow = "GET, POST"
        answer.closesConnection = true
        return answer
    }

    /// 413; the connection is then closed for writing and dropped two seconds later, so the
    /// rest of an oversized body is never read into memory.
    static func tooLarge(maxBody: Int) -> WebhookAnswer {
        var answer = WebhookAnswer(.contentTooLarge, ["error": "too_large", "message": "the body is larger than max_body (\(maxBody) bytes)"])
        answer.closesConnection = true
        return answer
    }
}

extension WebhookAnswer {
    /// The answer due to a webhook whose head asks for what the server does not do, before any
    /// of its body is read; nil for one whose body may be read. `version`: the request's.
    ///
    /// - A transfer coding other than chunked: 501 (RFC 9112, 6.1), and the connection closes,
    ///   since the body's framing is not known. `gzip, chunked` would otherwise be read as
    ///   chunks of compressed bytes and refused as a bad signature, which tells the sender
    ///   nothing.
    /// - Neither a length nor a chunked body: 411, rather than an empty body's bad signature.
    /// - A content coding: 415 with `Accept-Encoding: identity` (RFC 9110, 15.5.16). The
    ///   signature is over the body as IMMUNE sent it; lymph does not decode one.
    /// - An expectation other than `100-continue`: 417 (RFC 9110, 10.1.1). An HTTP/1.0 client's
    ///   expectations are ignored, as that section says.
    static func refusing(_ headers: RequestHeaders, version: HTTPVersion) -> WebhookAnswer? {
        if let coding = headers.transferEncoding {
            guard RequestHeaders.lowercasedTokens(coding) == ["chunked"] else {
                var answer = WebhookAnswer(
                    .notImplemented,
                    [
                        "error": "unsupported_transfer_coding",
                        "message": "a webhook's body is sent with a Content-Length or chunked, not with Transfer-Encoding '\(coding.cutForMessage(40))'",
                    ])
                answer.closesConnection = true
                return answer
            }
        } else if headers.contentLength == nil {
            return WebhookAnswer(
                .lengthRequired, ["error": "length_required", "message": "a webhook needs a Content-Length header (or a chunked body)"])
        }
        if let coding = headers.contentEncoding, RequestHeaders.lowercasedTokens(coding).contains(where: { $0 != "identity" }) {
            var answer = WebhookAnswer(
                .unsupportedMediaType,
                [
                    "error": "unsupported_content_coding",
                    "message":
                        "the body must be sent as is, not with Content-Encoding '\(coding.cutForMessage(40))': its signature is checked over the bytes received",
                ])
            answer.acceptEncoding = "identity"
            return answer
        }
        if version.atLeastHTTP11, let expect = headers.expect, !headers.expectsContinue {
            return WebhookAnswer(
                .expectationFailed,
                ["error": "expectation_failed", "message": "the one expectation this server meets is 100-continue, not '\(expect.cutForMessage(40))'"])
        }
        return nil
    }
}

extension HTTPVersion {
    /// HTTP/1.1 or later: expectations and `100 Continue` are defined from 1.1 on.
    var atLeastHTTP11: Bool { major > 1 || (major == 1 && minor >= 1) }
}

/// What the server does with a complete webhook: answer it at once, or store it in the spool
/// and answer once the entry is on disk.
enum WebhookAdmission {
    case answer(WebhookAnswer)
    /// `body`: the parsed body, for the worker (nil when the entry's body differs from it).
    case store(item: [UInt8], id: String, body: JSONDocument?)
}
