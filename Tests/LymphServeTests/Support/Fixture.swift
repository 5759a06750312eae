import Foundation
import TestSupport
@testable import Lymph

/// Builders the spool's tests share.
enum Fixture {
    /// A captured delivery line for `body`, signed with `secret`.
    static func delivery(_ body: String, secret: String = "topsecret") -> String {
        var out: [UInt8] = []
        JSONStringEncoder.append(body, to: &out)
        let signature = WebhookSignature.sign(Array(body.utf8), secret: Array(secret.utf8))
        return #"{"headers":{"x-immune-signature":"\#(signature)"},"body":\#(String(decoding: out, as: UTF8.self))}"#
    }

    static func context(now: Double = Timestamp.parse("2026-06-01T00:00:00Z")!) -> StageContext {
        StageContext(pipeline: "test", stageName: "stage", stageIndex: 1, now: now)
    }

    /// A new empty folder (see `TestScratch`).
    static func temporaryDirectory() -> String {
        TestScratch.directory("lymph-serve-tests")
    }
}

extension StageOutcome {
    /// `pass`, `fail(reason)`, …: what a test compares.
    var label: String {
        switch self {
        case .pass: return "pass"
        case .claim: return "claim"
        case .replace(let es): return "replace(\(es.count))"
        case .drop(let r): return "drop(\(r))"
        case .fail(let r, _): return "fail(\(r))"
        }
    }
}
