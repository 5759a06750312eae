/// Why a document is not JSON, and where (a byte offset from the document's start).
public struct JSONSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    public var offset: Int
    public var message: String

    /// The input ended inside the value (more bytes could complete it), as opposed to a byte
    /// that no continuation could make valid.
    public var truncated: Bool

    public init(offset: Int, message: String, truncated: Bool = false) {
        self.offset = offset
        self.message = message
        self.truncated = truncated
    }

    public var description: String { "invalid JSON at byte \(offset + 1): \(message)" }
}
