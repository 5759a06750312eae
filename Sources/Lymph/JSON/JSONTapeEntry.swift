/// One value on a `JSONDocument`'s tape.
///
/// Offsets are relative to the document's first byte. For strings `start..<end` excludes the
/// quotes; for containers it spans the brackets. `next` is the tape index just past this value
/// and everything inside it, so a reader skips a subtree in one step.
public struct JSONTapeEntry: Sendable, Equatable {
    /// A JSON value's type, with `true` and `false` apart.
    public enum Kind: UInt8, Sendable {
        case object, array, string, number, `true`, `false`, null
    }

    /// The value's JSON type.
    public var kind: Kind
    /// For a string: whether it holds escapes, so its bytes must be decoded before use.
    public var hasEscapes: Bool
    /// Offset of the value's first byte (a string's first byte inside its quotes).
    public var start: UInt32
    /// Offset just past the value's last byte (a string's last byte inside its quotes).
    public var end: UInt32
    /// The tape index just past this value and everything inside it.
    public var next: UInt32
}
