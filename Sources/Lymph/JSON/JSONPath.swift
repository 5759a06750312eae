/// A path into a JSON value: dots for object keys, `[N]` for array items (`data.readings[0].value`).
public struct JSONPath: Sendable, Hashable, CustomStringConvertible {
    /// One step of a path: an object key (its UTF-8 bytes) or an array index.
    public enum Component: Sendable, Hashable {
        case key([UInt8])
        case index(Int)
    }

    /// The steps, from the outside in.
    public let components: [Component]
    /// The path as written.
    public let description: String

    /// Why a path is not valid: an empty key, a bad `[N]`, a stray `]` or a trailing `.`.
    public struct ParseError: Error, Sendable, CustomStringConvertible {
        /// What is wrong, quoting the path.
        public let description: String
    }

    /// Parses `data.readings[0].value` style paths: keys are split at `.`, `[N]` takes element N
    /// (from 0).
    public init(parsing text: String) throws(ParseError) {
        guard !text.isEmpty else { throw ParseError(description: "empty path") }
        var components: [Component] = []
        var key: [UInt8] = []
        var bytes = Array(text.utf8)[...]
        var expectKey = true
        while let b = bytes.first {
            bytes = bytes.dropFirst()
            switch b {
            case UInt8(ascii: "."):
                if expectKey && key.isEmpty { throw ParseError(description: "path '\(text.cutForMessage())' has an empty key") }
                if !key.isEmpty { components.append(.key(key)); key = [] }
                expectKey = true
            case UInt8(ascii: "["):
                if !key.isEmpty { components.append(.key(key)); key = [] }
                guard let close = bytes.firstIndex(of: UInt8(ascii: "]")),
                    let n = Int(String(decoding: bytes[bytes.startIndex..<close], as: UTF8.self)), n >= 0
                else {
                    throw ParseError(description: "path '\(text.cutForMessage())': '[' must be followed by a whole number and ']'")
                }
                components.append(.index(n))
                bytes = bytes[(close + 1)...]
                expectKey = false
                if let next = bytes.first, next != UInt8(ascii: "."), next != UInt8(ascii: "[") {
                    throw ParseError(description: "path '\(text.cutForMessage())': expected '.' or '[' after ']'")
                }
            case UInt8(ascii: "]"):
                throw ParseError(description: "path '\(text.cutForMessage())' has a ']' without '['")
            default:
                key.append(b)
                expectKey = false
            }
        }
        if !key.isEmpty {
            components.append(.key(key))
        } else if expectKey {
            throw ParseError(description: "path '\(text.cutForMessage())' ends with '.'")
        }
        self.components = components
        self.description = text
    }
}
