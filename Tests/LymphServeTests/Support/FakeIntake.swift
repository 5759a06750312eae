import HTTPTypes
import Lymph
import NIOCore
import Synchronization
import Testing

@testable import LymphServe

/// The server's side of the webhook handler, under the test's control: a body is its event id;
/// "not json" is refused 400 at once; every other webhook is stored, and its answer waits until
/// the test commits it.
final class FakeIntake: WebhookIntake {
    struct State {
        /// The answer `refuseBeforeBody` gives (503 while stopping, say).
        var refusal: WebhookAnswer?
        /// Ids admitted for storing, in order.
        var admitted: [String] = []
        /// Appends whose commit has not come yet, oldest first.
        var pending: [(id: String, completion: SpoolWriter.Completion)] = []
        /// Statuses of the answers counted.
        var answered: [Int] = []
    }

    let state = Mutex(State())

    var admitted: [String] { state.withLock { $0.admitted } }
    var pendingCount: Int { state.withLock { $0.pending.count } }
    var answered: [Int] { state.withLock { $0.answered } }

    func refuse(with answer: WebhookAnswer?) { state.withLock { $0.refusal = answer } }

    /// The oldest pending append commits (or fails): its answer is written.
    func commitOldest(_ outcome: Result<Int64, any Error> = .success(1)) {
        let next = state.withLock { $0.pending.isEmpty ? nil : $0.pending.removeFirst() }
        guard let next else {
            Issue.record("no append is pending")
            return
        }
        next.completion(outcome)
    }

    func refuseBeforeBody(_ headers: RequestHeaders) -> WebhookAnswer? { state.withLock { $0.refusal } }

    func admit(body: [UInt8], headers: RequestHeaders) -> WebhookAdmission {
        let id = String(decoding: body, as: UTF8.self)
        if id == "not json" { return .answer(WebhookAnswer(.badRequest, ["error": "invalid_json"])) }
        state.withLock { $0.admitted.append(id) }
        return .store(item: body, id: id, body: nil)
    }

    func append(_ item: [UInt8], body: JSONDocument?, on loop: any EventLoop, completion: @escaping SpoolWriter.Completion) {
        let id = String(decoding: item, as: UTF8.self)
        state.withLock { $0.pending.append((id, completion)) }
    }

    func stored(_ outcome: Result<Int64, any Error>, id: String, itemBytes: Int) -> WebhookAnswer {
        switch outcome {
        case .success: WebhookAnswer(.accepted, ["accepted": id])
        case .failure: WebhookAnswer(.serviceUnavailable, ["error": "store_unavailable"], retryAfter: "5")
        }
    }

    func answered(status: HTTPResponse.Status, since start: ContinuousClock.Instant) {
        state.withLock { $0.answered.append(status.code) }
    }
}
