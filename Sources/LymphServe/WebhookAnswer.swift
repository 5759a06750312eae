import HTTPTypes
import Lymph

/// A webhook request's answer: a status and a small JSON object, with the headers it needs.
struct WebhookAnswer {
    var status: HTTPResponse.Status
    var body: [UInt8]
    /// Sent with 503: when to try again, in seconds.
    var retryAfter: String?
    /// Sent with 405: the methods the server takes.
    var allow: String?
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

/// What the server does with a complete webhook: answer it at once, or store it in the spool
/// and answer once the entry is on disk.
enum WebhookAdmission {
    case answer(WebhookAnswer)
    /// `body`: the parsed body, for the worker (nil when the entry's body differs from it).
    case store(item: [UInt8], id: String, body: JSONDocument?)
}
