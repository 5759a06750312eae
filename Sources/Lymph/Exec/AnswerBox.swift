/// Collects the results of a batch's events from plugin processes (any order, any task): each
/// result is a `(slot, result)` element of an `AsyncStream`, read until every slot is filled.
/// A slot answered twice (a failure racing a late answer) keeps its first result. The stream
/// holds at most a few elements per slot, so its unbounded buffer is bounded by the batch.
final class AnswerBox: Sendable {
    typealias Answer = (slot: Int, result: Result<StageOutcome, ExecFailure>)

    /// The events being answered, by slot.
    let events: [Event]
    private let answers: AsyncStream<Answer>
    private let continuation: AsyncStream<Answer>.Continuation

    init(events: [Event]) {
        self.events = events
        (answers, continuation) = AsyncStream.makeStream(of: Answer.self)
    }

    func deliver(_ slot: Int, _ result: Result<StageOutcome, ExecFailure>) {
        continuation.yield((slot, result))
    }

    /// Every result, in slot order, once all have arrived; if the waiting task is cancelled first,
    /// those not arrived are `cancelled` (a worker that answers later delivers to no one).
    func wait(ifCancelled cancelled: ExecFailure) async -> [Result<StageOutcome, ExecFailure>] {
        var results = [Result<StageOutcome, ExecFailure>?](repeating: nil, count: events.count)
        var remaining = events.count
        if remaining > 0 {
            for await answer in answers where results[answer.slot] == nil {
                results[answer.slot] = answer.result
                remaining -= 1
                if remaining == 0 { break }
            }
        }
        continuation.finish()
        return results.map { $0 ?? .failure(cancelled) }
    }
}
