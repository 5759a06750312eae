/// Why an event was dropped or sent to the dead letters: a short snake_case code, the `reason`
/// of a dead-letter record and the key of a stage's drop counts in the summary and metrics.
///
/// Every reason Lymph itself gives is a static member here. A filter's drops are counted by
/// the part of its condition that failed (`data.confidence gte 0.8`), which is made at run time
/// with `init(_:)`.
public struct Reason: RawRepresentable, Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    /// The code, as written in dead-letter records and drop counts.
    public let rawValue: String

    /// The reason with code `rawValue`.
    public init(rawValue: String) { self.rawValue = rawValue }
    /// The reason with code `rawValue`.
    public init(_ rawValue: String) { self.rawValue = rawValue }
    /// The reason with code `value`.
    public init(stringLiteral value: String) { self.rawValue = value }

    /// The code.
    public var description: String { rawValue }
}

extension Reason {
    // parse
    /// An item over `max_bytes`, or a record that holds only the beginning of one.
    public static let tooLarge = Reason("too_large")
    /// An item (or a delivery's body) that is not valid JSON.
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
    /// A delivery without an `x-immune-signature` header.
    public static let missingSignature = Reason("missing_signature")
    /// An `x-immune-signature` that is not 64 hex digits (after an optional `sha256=`).
    public static let malformedSignature = Reason("malformed_signature")
    /// A signature that does not match the body under any of the secrets.
    public static let badSignature = Reason("bad_signature")
    /// `created_at` more than `max_age` in the past.
    public static let tooOld = Reason("too_old")
    /// `created_at` more than `max_age` in the future.
    public static let inFuture = Reason("in_future")

    // dedup
    /// Seen within the window (a drop, not a dead letter).
    public static let duplicate = Reason("duplicate")
    /// The dedup key's path is absent from the event.
    public static let missingKey = Reason("missing_key")
    /// The dedup key is neither a string nor a number.
    public static let invalidKey = Reason("invalid_key")

    // filter and `when:`
    /// A filter's event type did not match.
    public static let eventType = Reason("type")
    /// A `regex:` that could not be decided within its step limit.
    public static let regexTooCostly = Reason("regex_too_costly")

    // schedule_maintenance, track_sensors
    /// A prediction whose `predicted_failure_time` is not after its `created_at`.
    public static let pastFailureTime = Reason("past_failure_time")
    /// An event older than the latest recorded for its sensor (a drop).
    public static let stale = Reason("stale")

    // exec
    /// The plugin could not be started.
    public static let pluginStart = Reason("plugin_start")
    /// The plugin exited with a status other than 0, or its status could not be read.
    public static let pluginExit = Reason("plugin_exit")
    /// The plugin ran past `timeout`, or something it started held its output open past it.
    public static let pluginTimeout = Reason("plugin_timeout")
    /// The plugin wrote more than `max_output`, or output that is not valid events or answers.
    public static let pluginOutput = Reason("plugin_output")
    /// The plugin answered with `{"error": ...}` for the event.
    public static let pluginError = Reason("plugin_error")
    /// The plugin was stopped because the run is ending.
    public static let pluginCancelled = Reason("plugin_cancelled")
    /// A stream plugin crashed twice while handling the event.
    public static let pluginCrash = Reason("plugin_crash")
    /// A stream plugin's answers fell out of step with the events sent to it.
    public static let pluginProtocol = Reason("plugin_protocol")
    /// A stream plugin failed to start several times in a row: events fail at once meanwhile.
    public static let pluginUnavailable = Reason("plugin_unavailable")
    // http
    /// The destination answered a 4xx that is not retried (the request itself is wrong).
    public static let httpStatus = Reason("http_status")
    /// No 2xx after every retry: connection errors, timeouts, 408, 429 or 5xx.
    public static let httpUnavailable = Reason("http_unavailable")
    /// The destination is (or resolves to) a loopback, private, link-local or unspecified
    /// address, and the stage does not have `allow_private`.
    public static let httpForbiddenAddress = Reason("http_forbidden_address")
    /// The body template gave invalid JSON for this event.
    public static let httpTemplate = Reason("http_template")

    /// A plugin's or a request's failure under `on_error: drop` (a drop).
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
