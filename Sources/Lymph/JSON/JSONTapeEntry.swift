/// One value on a `JSONDocument`'s tape.
///
/// Offsets are relative to the document's first byte. For strings `start..<end` excludes the
/// quotes; for containers it spans the brackets. `next` is the tape index just past this value
/// and everything inside it, so a reader skips a subtree in one step.
public struct JSONTapeEntry: Sendable, Equatable {
    public enum Kind: UInt8, Sendable {
        case object, array, string, number, `true`, `false`, null
    }

    public var kind: Kind
    public var hasEscapes: Bool
    public var start: UInt32
    public var end: UInt32
    public var next: UInt32
}
