/// Why a document is not JSON, and where (a byte offset from the document's start).
public struct JSONSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The offending byte's offset from the document's start, counted from 0.
    public var offset: Int
    /// What is wrong there.
    public var message: String

    /// The input ended inside the value (more bytes could complete it), as opposed to a byte
    /// that no continuation could make valid.
    public var truncated: Bool

    /// An error at `offset`; `truncated` when the input ended inside the value.
    public init(offset: Int, message: String, truncated: Bool = false) {
        self.offset = offset
        self.message = message
        self.truncated = truncated
    }

    /// `invalid JSON at byte N: message`, N counted from 1.
    public var description: String { "invalid JSON at byte \(offset + 1): \(message)" }
}
