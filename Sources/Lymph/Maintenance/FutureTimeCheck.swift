/// An event dated ahead of the machine's clock: both maintenance stages take an event's
/// `created_at` as when its news happened. Taken as is, a sensor's event dated ahead would be its
/// latest, so that every later status with an earlier time was dropped as stale, and a ticket's
/// dates would follow a sender's wrong clock (opened, updated and due in its future). One further
/// ahead than `max_future` is a dead letter (`in_future`).
enum FutureTimeCheck {
    /// Five minutes, the tolerance Standard Webhooks' and Stripe's libraries give a signed
    /// timestamp: a sender's clock further ahead is wrong.
    static let defaultMaxFuture = 300.0

    /// Why an event created at `created` cannot be taken at `now`, or nil when it can.
    static func problem(created: Double, now: Double, maxFuture: Double) -> String? {
        guard created > now + maxFuture else { return nil }
        return
            "created_at is \(span(created - now)) ahead of this machine's clock, more than max_future (\(DedupSpec.describe(maxFuture))): check the sender's clock"
    }

    /// A length of time as an operator reads it: its largest whole unit.
    static func span(_ seconds: Double) -> String {
        if seconds >= 2 * 86_400 { return "\(Int(seconds / 86_400)) days" }
        if seconds >= 2 * 3600 { return "\(Int(seconds / 3600)) hours" }
        if seconds >= 120 { return "\(Int(seconds / 60)) minutes" }
        return "\(Int(seconds.rounded(.up))) seconds"
    }
}
