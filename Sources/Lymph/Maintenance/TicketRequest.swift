/// What one event asks of the ticket book.
public struct TicketRequest: Sendable {
    /// The equipment the job is for.
    public var equipmentID: String
    /// What to do; with `equipmentID`, the job an open ticket is found by.
    public var action: String
    /// How urgent the event says the job is.
    public var priority: Ticket.Priority
    /// When the job should be done by, in seconds since 1970.
    public var dueBy: Double
    /// The event asking, which applies once however often it is seen.
    public var sourceEventID: String
    /// When the request was made (the event's `created_at`, or the judging time).
    public var at: Double
}

/// What applying a request did.
public enum TicketChange: Sendable, Equatable {
    /// A new open ticket.
    case opened(Ticket)
    /// Merged into the open ticket; `changed` when due date or priority moved. A changed ticket
    /// lists its latest source events (`TicketBook.listedSources`, with `sourceEventCount` when
    /// it has more); an unchanged one only the event this request added.
    case merged(Ticket, changed: Bool)
    /// The source event was applied before: nothing changed (idempotency).
    case alreadyApplied
}
