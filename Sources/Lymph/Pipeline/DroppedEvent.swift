/// An event a stage dropped (not an error: a duplicate, a filter's no, a plugin's empty answer),
/// as `PipelineRunner.dropObserver` hears of it.
public struct DroppedEvent: Sendable {
    /// The event's `id` (empty when it has none).
    public let id: String
    /// The event's `type`.
    public let type: String
    /// The name of the stage that dropped it.
    public let stage: String
    /// The drop's reason, as counted in the summary (`duplicate`, `type`, `no_output`, ...).
    public let reason: String
    /// Where the event's item was read.
    public let source: SourcePosition

    init(_ event: Event, stage: String, reason: String) {
        self.id = event.id
        self.type = String(decoding: event.typeBytes, as: UTF8.self)
        self.stage = stage
        self.reason = reason
        self.source = event.source
    }
}
