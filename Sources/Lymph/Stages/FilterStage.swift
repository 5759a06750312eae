/// Keeps events whose type and fields satisfy the condition; drops the rest, counted by the
/// first part of the condition that failed (`type`, `data.confidence gte 0.8`).
public struct FilterStage: Stage {
    /// What an event must satisfy to go on.
    public let condition: Condition

    /// A stage that keeps what satisfies `condition`.
    public init(condition: Condition) { self.condition = condition }

    /// Passes or drops each event; one the condition cannot decide within its bound (a `regex` on a
    /// value too long for it) is rejected.
    public func process(_ events: [Event], context: StageContext) async throws -> [StageOutcome] {
        if case .types(let matcher) = condition {
            // The usual filter, a type list, asks one thing of each event: its type, read from
            // the bytes in place, without walking the condition or setting up its error path.
            let drop = StageOutcome.drop(reason: Reason.eventType.rawValue)
            return events.indices.map { events[$0].typeMatches(matcher) ? .pass : drop }
        }
        return events.map { event in
            do throws(ConditionError) {
                guard let reason = try condition.failingReason(event) else { return .pass }
                return .drop(reason: reason)
            } catch {
                return .fail(reason: error.reason, message: error.message)
            }
        }
    }
}
