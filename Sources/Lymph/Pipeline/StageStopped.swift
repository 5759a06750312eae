/// `on_error: stop`: an event a stage could not handle ends the run (exit 3). One error for every
/// stage with `on_error` (exec, http, their test stubs), so the CLI reports them alike.
public struct StageStopped: Error, CustomStringConvertible {
    /// The stage's name.
    public let stage: String
    /// The `id` of the event the stage failed on.
    public let eventID: String
    /// Where that event was read, `FILE:LINE`.
    public let position: String
    /// The stage's own account of the failure.
    let message: String

    init(stage: String, event: Event, message: String) {
        self.stage = stage
        eventID = event.id
        position = event.source.description
        self.message = message
    }

    /// The stage, the event, its position and the failure, in one line: the id, the position (a
    /// replayed record names its own) and the message come from outside, so control characters
    /// are shown as `?`.
    public var description: String {
        "stage '\(stage)' failed on event \(PrintableText.of(eventID, limit: 200)) (\(PrintableText.of(position, limit: 300))) and has on_error: stop: \(PrintableText.of(message))"
    }
}
