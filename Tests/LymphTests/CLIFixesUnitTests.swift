import Foundation
import Lymph
@testable import LymphServe
import Testing

@Suite("inputs checked before a run")
struct CheckReadableTests {
    func file(_ bytes: [UInt8]) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lymph-check-\(UUID().uuidString)").path
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    @Test("a file that starts with gzip's magic bytes is refused, with the zcat advice for the command")
    func gzipRefused() {
        let path = file([0x1F, 0x8B, 0x08, 0x00, 0x0A, 0x7B])
        #expect(ItemReader.checkReadable([path]) == ["input '\(path)' is gzip-compressed; use zcat \(path) | lymph run PIPELINE"])
        #expect(ItemReader.checkReadable(["-", path], command: "send URL") == ["input '\(path)' is gzip-compressed; use zcat \(path) | lymph send URL"])
    }

    @Test("JSON, an empty file and a file of one byte 1f pass", arguments: [Array(#"{"id":"a"}"#.utf8), [], [0x1F], [0x8B, 0x1F]])
    func othersPass(bytes: [UInt8]) {
        #expect(ItemReader.checkReadable([file(bytes)]).isEmpty)
    }
}

@Suite("lymph send's summary")
struct SendSummaryTests {
    @Test("failed counts every request without a 2xx: other statuses and no answer")
    func failedCountsEveryNon2xx() {
        var s = WebhookSender.Summary()
        s.sent = 6
        s.record(status: 202, reason: nil)
        s.record(status: 202, reason: nil)
        s.record(status: 401, reason: "bad_signature")
        s.record(status: 400, reason: nil)
        s.record(status: 503, reason: "spool_full")
        s.record(unanswered: "connection refused to 127.0.0.1:9")
        #expect(s.failed == 4)
        #expect(!s.allAccepted)
        #expect(s.text.contains("status 202: 2, 400: 1, 401: 1 (bad_signature: 1), 503: 1 (spool_full: 1)"), "\(s.text)")
        #expect(s.text.contains("no answer: 1 (connection refused to 127.0.0.1:9: 1)"), "\(s.text)")
        #expect(s.text.contains("failed 4"))
    }

    @Test("every request accepted: failed 0, allAccepted")
    func allAccepted() {
        var s = WebhookSender.Summary()
        s.sent = 2
        s.record(status: 200, reason: nil)
        s.record(status: 202, reason: nil)
        #expect(s.failed == 0)
        #expect(s.allAccepted)
        #expect(s.text.contains("status 200: 1, 202: 1; retried 0; failed 0"), "\(s.text)")
    }

    @Test("with no answer at all there is no 'status none', only the error")
    func noAnswerOnly() {
        var s = WebhookSender.Summary()
        s.sent = 3
        for _ in 0..<3 { s.record(unanswered: "connection refused to 127.0.0.1:9") }
        s.stopped = "connection refused to 127.0.0.1:9 after 0 retries"
        #expect(!s.text.contains("status"), "\(s.text)")
        #expect(s.text.contains("no answer: 3 (connection refused to 127.0.0.1:9: 3); retried 0; failed 3; gave up: connection refused"), "\(s.text)")
        #expect(!s.allAccepted)
    }

    @Test("a receiver's many different reasons are kept to a bounded number, the rest counted as other")
    func reasonsBounded() {
        var s = WebhookSender.Summary()
        for i in 0..<(WebhookSender.Summary.maxReasons + 5) { s.record(status: 400, reason: "reason_\(i)") }
        #expect(s.reasons[400]?.count == WebhookSender.Summary.maxReasons + 1)
        #expect(s.reasons[400]?["other"] == 5)
        #expect(s.failed == WebhookSender.Summary.maxReasons + 5)
    }

    @Test("the reason is the answer's JSON 'error' string, cut short and without control characters")
    func reasonFromAnswer() {
        #expect(WebhookSender.reason(inAnswer: Array(#"{"error":"bad_signature","message":"no"}"#.utf8)) == "bad_signature")
        #expect(WebhookSender.reason(inAnswer: Array("not json".utf8)) == nil)
        #expect(WebhookSender.reason(inAnswer: Array(#"{"error":42}"#.utf8)) == nil)
        #expect(WebhookSender.reason(inAnswer: Array(#"{"error":"a\nb"}"#.utf8)) == "a?b")
        let long = String(repeating: "x", count: 500)
        #expect(WebhookSender.reason(inAnswer: Array(#"{"error":"\#(long)"}"#.utf8))?.count == 64)
    }
}
