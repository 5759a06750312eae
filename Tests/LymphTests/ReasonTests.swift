import Foundation
import Testing
@testable import Lymph

@Suite("drop and dead-letter reasons")
struct ReasonTests {
    static let all: [Reason] = [
        .tooLarge, .invalidJSON, .notAnObject, .invalidDelivery, .invalidDeadLetter, .invalid, .missingField, .invalidField,
        .unsigned, .missingSignature, .malformedSignature, .badSignature, .tooOld, .inFuture,
        .duplicate, .missingKey, .invalidKey, .eventType, .regexTooCostly, .pastFailureTime, .stale,
        .pluginStart, .pluginExit, .pluginTimeout, .pluginOutput, .pluginError, .pluginCancelled, .pluginCrash, .pluginProtocol,
        .pluginUnavailable, .onErrorDrop, .noOutput, .replayStageMissing, .alreadyReplayed, .httpStatus, .httpUnavailable,
        .httpForbiddenAddress, .httpTemplate,
    ]

    @Test("every reason is snake_case and distinct")
    func snakeCase() {
        for r in Self.all {
            #expect(r.rawValue.range(of: "^[a-z]+(_[a-z]+)*$", options: .regularExpression) != nil, "\(r)")
        }
        #expect(Set(Self.all).count == Self.all.count)
    }

    @Test("the runner's, exec's and replay's reasons")
    func renamed() {
        #expect(Reason.noOutput.rawValue == "no_output")
        #expect(Reason.onErrorDrop.rawValue == "on_error_drop")
        #expect(ResumePoint.stageMissingReason == "replay_stage_missing")
        #expect(ReplayLedger.reason == "already_replayed")
    }

    @Test("outcomes made from a reason carry its code")
    func outcomes() {
        #expect(StageOutcome.drop(.duplicate).label == "drop(duplicate)")
        #expect(StageOutcome.fail(.badSignature, message: "m").label == "fail(bad_signature)")
    }
}
