import Crypto
import Foundation
@testable import Lymph

/// Builders shared by the unit tests.
enum Fixture {
    static func event(
        id: String = "evt_1", type: String = "prediction.created", createdAt: String = "2026-06-01T00:00:00Z",
        data: String = #"{"equipment_id":"pump_001","confidence":0.9}"#, line: Int = 1
    ) -> Event {
        let text = #"{"id":"\#(id)","type":"\#(type)","created_at":"\#(createdAt)","data":\#(data)}"#
        return parsed(text, line: line)
    }

    static func parsed(_ text: String, line: Int = 1) -> Event {
        guard case .event(let e) = ParseStage().parse(RawItem(bytes: Array(text.utf8)[...], source: SourcePosition(file: "test", line: line))) else {
            fatalError("fixture does not parse: \(text)")
        }
        return e
    }

    static func hmacHex(_ body: String, secret: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array(body.utf8), using: SymmetricKey(data: Array(secret.utf8)))
        return mac.map { String(format: "%02x", $0) }.joined()
    }

    /// A captured delivery line for `body`, signed with `secret` unless `signature` is given.
    static func delivery(_ body: String, secret: String = "topsecret", signature: String? = nil, header: String = "x-immune-signature") -> String {
        var out: [UInt8] = []
        JSONStringEncoder.append(body, to: &out)
        let sig = signature ?? hmacHex(body, secret: secret)
        return #"{"headers":{"\#(header)":"\#(sig)"},"body":\#(String(decoding: out, as: UTF8.self))}"#
    }

    static func context(now: Double = Timestamp.parse("2026-06-01T00:00:00Z")!) -> StageContext {
        StageContext(pipeline: "test", stageName: "stage", stageIndex: 1, now: now)
    }

    static func temporaryDirectory() -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lymph-tests-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }
}

extension StageOutcome {
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
