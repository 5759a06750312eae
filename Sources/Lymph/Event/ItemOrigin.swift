/// The item exactly as it was read, kept so a dead letter can be replayed as it came in.
public struct ItemOrigin: Sendable {
    /// How the item was read, which says how replay reads it back.
    public enum Form: Sendable {
        /// A plain line (an event, or something that is not JSON at all).
        case raw
        /// A captured webhook request: a JSON object with `headers` and `body`.
        case delivery
    }

    /// A plain line or a captured webhook request.
    public var form: Form
    /// The item's bytes (for `.delivery`, a complete JSON object).
    public var bytes: ArraySlice<UInt8>
    /// True when `bytes` is only the first part of an over-long item.
    public var truncated: Bool

    /// An origin of `bytes` read as `form`; `truncated` when they are only the first part of the
    /// item.
    public init(form: Form, bytes: ArraySlice<UInt8>, truncated: Bool = false) {
        self.form = form
        self.bytes = bytes
        self.truncated = truncated
    }
}
