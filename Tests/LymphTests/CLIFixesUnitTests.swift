import Foundation
import TestSupport
import Lymph
@testable import LymphServe
import Testing

@Suite("inputs checked before a run")
struct CheckReadableTests {
    func file(_ bytes: [UInt8]) -> String {
        let path = TestScratch.path("lymph-check")
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    @Test(
        "gzip, JSON, an empty file and a file of one byte 1f pass (gzip is read, not refused)",
        arguments: [[0x1F, 0x8B, 0x08, 0x00, 0x0A, 0x7B], Array(#"{"id":"a"}"#.utf8), [], [0x1F], [0x8B, 0x1F]])
    func othersPass(bytes: [UInt8]) {
        #expect(ItemReader.checkReadable([file(bytes)]).isEmpty)
    }

    @Test("a folder and a missing file are refused")
    func refused() {
        let dir = FileManager.default.temporaryDirectory.path
        #expect(ItemReader.checkReadable([dir]) == ["input '\(dir)' is a folder"])
        #expect(ItemReader.checkReadable(["-", "/nonexistent/x"]) == ["cannot read input '/nonexistent/x': No such file or directory"])
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

    @Test("lines not sent are counted by why, and the first named is the earliest in the input, whichever task prepared it first")
    func notSentNamesTheEarliest() {
        var s = WebhookSender.Summary()
        s.record(notSent: "not a JSON object", at: "b.ndjson:7", number: 12)
        s.record(notSent: "not a JSON object", at: "a.ndjson:3", number: 2)
        s.record(notSent: "header name 'x y' is not an HTTP field name", at: "b.ndjson:9", number: 14)
        #expect(!s.allAccepted)
        #expect(s.failed == 0)
        #expect(
            s.text.contains("not sent 3 (not a JSON object: 2, header name 'x y' is not an HTTP field name: 1; the first at a.ndjson:3)"), "\(s.text)")
    }

    @Test("header names must be HTTP tokens and values free of control characters but the tab")
    func headerChecks() {
        #expect(WebhookSender.isFieldName("x-immune-signature"))
        #expect(WebhookSender.isFieldName("X_Custom!#$%&'*+.^`|~9"))
        for bad in ["", "bad name", "x:y", "x\ny", "é", "x\u{0}"] { #expect(!WebhookSender.isFieldName(bad), "\(bad)") }
        #expect(WebhookSender.isFieldValue("Bearer abc\tdef é"))
        for bad in ["a\nb", "a\rb", "a\u{0}b", "a\u{7F}b", "a\u{1B}[31m"] { #expect(!WebhookSender.isFieldValue(bad), "\(bad)") }
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

@Suite("lymph serve's dates and limits come from the library")
struct ServeLibraryTests {
    @Test("the HTTP Date header uses the library's calendar (RFC 9110's example)")
    func httpDate() {
        #expect(HTTPDate.format(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
    }

    @Test("a spool entry may be six times max_body plus 4 KiB; parse is raised to take it, never lowered")
    func spoolEntryLimit() throws {
        #expect(SpoolWriter.maxEntryBytes(maxBody: 1 << 20) == 6 << 20 + 4096)
        let dir = TestScratch.directory("lymph-serve")
        try "stages:\n  - parse:\n      max_bytes: 1KiB\n".write(toFile: dir + "/small.yaml", atomically: true, encoding: .utf8)
        try "stages:\n  - parse:\n      max_bytes: 64MiB\nserve:\n  max_body: 1KiB\n".write(toFile: dir + "/large.yaml", atomically: true, encoding: .utf8)
        let small = try PipelineLoader.load(path: dir + "/small.yaml").spec
        #expect(SpoolWriter.parseStage(for: small).maxBytes == 6 * small.serve.maxBody + 4096)
        let large = try PipelineLoader.load(path: dir + "/large.yaml").spec
        #expect(SpoolWriter.parseStage(for: large).maxBytes == 64 << 20)
    }
}

@Test(
    "PathParent gives NSString's folder part, also for the paths Foundation crashes on",
    arguments: [
        ("a/b", "a"), ("/a", "/"), ("a", ""), ("a/b/", "a"), ("/", "/"), (".", ""), ("x", ""), ("a/", ""), ("./", ""), ("a//b", "a"),
        ("//a", "/"), ("../a", ".."), ("a/..", "a"),
    ])
func pathParent(_ path: String, _ parent: String) {
    #expect(PathParent.of(path) == parent)
}
