import Crypto
import Foundation
import TestSupport
import Testing
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
        TestScratch.directory("lymph-tests")
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

extension Fixture {
    /// Runs the pipeline `open` makes over the lines of `input` and closes it; then waits (up to 10 s) until
    /// nothing holds the pipeline any more, and expects that. A run that ended, by a crash too,
    /// lets go of its store and its lock once the tasks it started have ended, which on a busy
    /// machine can be a moment after it returns; the next run in the same process takes the lock.
    static func runToRelease(_ open: () throws -> Pipeline, input: String) async throws -> RunSummary {
        weak var opened: Pipeline?
        let result: Result<RunSummary, any Error>
        do {
            let pipeline = try open()
            opened = pipeline
            defer { pipeline.close() }
            result = .success(try await PipelineRunner(pipeline: pipeline).run(reader: ItemReader(paths: [input], maxItemBytes: 1 << 20)))
        } catch {
            result = .failure(error)
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while opened != nil && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(opened == nil, "the pipeline is still held 10 s after its run ended")
        return try result.get()
    }
}
