/// Why an event was dropped or sent to the dead letters: a short snake_case code, the `reason`
/// of a dead-letter record and the key of a stage's drop counts in the summary and metrics.
///
/// Every reason Lymph itself gives is a static member here. A filter's drops are counted by
/// the part of its condition that failed (`data.confidence gte 0.8`), which is made at run time
/// with `init(_:)`.
public struct Reason: RawRepresentable, Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    public let rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }

    public var description: String { rawValue }
}

extension Reason {
    // parse
    /// An item over `max_bytes`, or a record that holds only the beginning of one.
    public static let tooLarge = Reason("too_large")
    public static let invalidJSON = Reason("invalid_json")
    /// Valid JSON, but not an object.
    public static let notAnObject = Reason("not_an_object")
    /// A delivery whose `headers` or `body` has the wrong type.
    public static let invalidDelivery = Reason("invalid_delivery")
    /// A dead-letter record that cannot be read back (`raw`, `raw_base64`, `delivery`, `resume`).
    public static let invalidDeadLetter = Reason("invalid_dead_letter")
    /// Anything else parse could not make sense of.
    public static let invalid = Reason("invalid")
    /// A field a stage needs is absent (parse's envelope, tickets, sensors).
    public static let missingField = Reason("missing_field")
    /// A field has the wrong type or value.
    public static let invalidField = Reason("invalid_field")

    // verify
    /// A plain event where a signed delivery is needed.
    public static let unsigned = Reason("unsigned")
    public static let missingSignature = Reason("missing_signature")
    public static let malformedSignature = Reason("malformed_signature")
    public static let badSignature = Reason("bad_signature")
    /// `created_at` more than `max_age` in the past.
    public static let tooOld = Reason("too_old")
    /// `created_at` more than `max_age` in the future.
    public static let inFuture = Reason("in_future")

    // dedup
    /// Seen within the window (a drop, not a dead letter).
    public static let duplicate = Reason("duplicate")
    public static let missingKey = Reason("missing_key")
    public static let invalidKey = Reason("invalid_key")

    // filter and `when:`
    /// A filter's event type did not match.
    public static let eventType = Reason("type")
    /// A `regex:` that could not be decided within its step limit.
    public static let regexTooCostly = Reason("regex_too_costly")

    // schedule_maintenance, track_sensors
    public static let pastFailureTime = Reason("past_failure_time")
    /// An event older than the latest recorded for its sensor (a drop).
    public static let stale = Reason("stale")

    // exec
    public static let pluginStart = Reason("plugin_start")
    public static let pluginExit = Reason("plugin_exit")
    public static let pluginTimeout = Reason("plugin_timeout")
    public static let pluginOutput = Reason("plugin_output")
    public static let pluginError = Reason("plugin_error")
    public static let pluginCancelled = Reason("plugin_cancelled")
    public static let pluginCrash = Reason("plugin_crash")
    public static let pluginProtocol = Reason("plugin_protocol")
    public static let pluginUnavailable = Reason("plugin_unavailable")
    /// A plugin failure under `on_error: drop` (a drop).
    public static let onErrorDrop = Reason("on_error_drop")

    // the runner and replay
    /// A stage replaced the event by nothing (an exec plugin that answered no event): a drop.
    public static let noOutput = Reason("no_output")
    /// A replayed record whose stage the pipeline no longer has.
    public static let replayStageMissing = Reason("replay_stage_missing")
    /// A replayed record whose replay already completed (a drop).
    public static let alreadyReplayed = Reason("already_replayed")
}

extension StageOutcome {
    /// `.drop(reason:)` with a reason from `Reason`.
    public static func drop(_ reason: Reason) -> StageOutcome { .drop(reason: reason.rawValue) }

    /// `.fail(reason:message:)` with a reason from `Reason`.
    public static func fail(_ reason: Reason, message: String) -> StageOutcome { .fail(reason: reason.rawValue, message: message) }
}
