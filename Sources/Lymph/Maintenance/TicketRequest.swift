/// What one event asks of the ticket book.
public struct TicketRequest: Sendable {
    public var equipmentID: String
    public var action: String
    public var priority: Ticket.Priority
    public var dueBy: Double
    public var sourceEventID: String
    /// When the request was made (the event's `created_at`, or the judging time).
    public var at: Double
}

/// What applying a request did.
public enum TicketChange: Sendable, Equatable {
    /// A new open ticket.
    case opened(Ticket)
    /// Merged into the open ticket; `changed` when due date or priority moved.
    case merged(Ticket, changed: Bool)
    /// The source event was applied before: nothing changed (idempotency).
    case alreadyApplied
}
