/// One validated JSON document: its exact bytes and a flat index (the tape) over them.
///
/// The bytes are kept as they came in, so an event that no stage changed is written out
/// byte for byte. Values are decoded only when a stage asks for them.
public struct JSONDocument: Sendable {
    /// The document's bytes, exactly as read (without the line terminator).
    public let bytes: ArraySlice<UInt8>
    /// One entry per value (object keys are string entries), in document order. Entry `i` of
    /// the document is `tape[tape.startIndex + i]`: documents parsed together share one array.
    public let tape: ArraySlice<JSONTapeEntry>

    /// Parses and validates `bytes` (RFC 8259); throws `JSONSyntaxError` on anything else.
    public init(parsing bytes: ArraySlice<UInt8>, maxDepth: Int = JSONParser.defaultMaxDepth) throws(JSONSyntaxError) {
        self.bytes = bytes
        self.tape = try JSONParser.parse(bytes, maxDepth: maxDepth)[...]
    }

    /// A document already parsed into `tape` (a slice of a shared tape, see `ParseStage`).
    init(bytes: ArraySlice<UInt8>, tape: ArraySlice<JSONTapeEntry>) {
        self.bytes = bytes
        self.tape = tape
    }

    /// Entry `i` of this document's tape.
    @inline(__always)
    func entry(_ i: Int) -> JSONTapeEntry { tape[tape.startIndex + i] }

    /// Parses and validates `bytes` (RFC 8259), as `init(parsing:maxDepth:)` on a slice.
    public init(parsing bytes: [UInt8], maxDepth: Int = JSONParser.defaultMaxDepth) throws(JSONSyntaxError) {
        try self.init(parsing: bytes[...], maxDepth: maxDepth)
    }

    /// The root value.
    public var root: JSONValue { JSONValue(document: self, index: 0) }

    /// Bytes this document may hold on to (its bytes and its tape's storage), for memory bounds:
    /// an upper bound, since the parser reserves an entry per 12 bytes up front (a body of long
    /// strings uses far fewer) and its buffer grows to up to twice its count before the tape is
    /// copied out.
    public var memorySize: Int { bytes.count + max(2 * tape.count, bytes.count / 12, 8) * MemoryLayout<JSONTapeEntry>.stride }

    // Index-based lookups: no JSONValue (and so no reference counting) on the hot paths.

    /// Tape index of the member `key` of the object at `container`.
    @inline(__always)
    func memberIndex(_ container: Int, _ key: [UInt8]) -> Int? {
        tape.withUnsafeBufferPointer { t in
            bytes.withUnsafeBufferPointer { b in
                guard t[container].kind == .object else { return nil }
                let end = Int(t[container].next)
                var i = container + 1
                while i < end {
                    let k = t[i]
                    let length = Int(k.end - k.start)
                    if k.hasEscapes {
                        if JSONParser.unescape(bytes[(bytes.startIndex + Int(k.start))..<(bytes.startIndex + Int(k.end))]) == key { return i + 1 }
                    } else if length == key.count {
                        let start = Int(k.start)
                        var equal = true
                        for n in 0..<length where b[start + n] != key[n] {
                            equal = false
                            break
                        }
                        if equal { return i + 1 }
                    }
                    i = Int(t[i + 1].next)
                }
                return nil
            }
        }
    }

    /// Tape index of the element `position` of the array at `container`.
    func elementIndex(_ container: Int, _ position: Int) -> Int? {
        guard entry(container).kind == .array, position >= 0 else { return nil }
        let end = Int(entry(container).next)
        var i = container + 1
        var n = 0
        while i < end {
            if n == position { return i }
            n += 1
            i = Int(entry(i).next)
        }
        return nil
    }

    func index(at path: JSONPath, from start: Int = 0) -> Int? {
        index(at: path.components[...], from: start)
    }

    /// The tape index `components` lead to from the value at `start`, or nil.
    func index(at components: ArraySlice<JSONPath.Component>, from start: Int) -> Int? {
        var current = start
        for component in components {
            switch component {
            case .key(let key):
                guard let next = memberIndex(current, key) else { return nil }
                current = next
            case .index(let position):
                guard let next = elementIndex(current, position) else { return nil }
                current = next
            }
        }
        return current
    }

    /// The decoded bytes of the string at `index` (a slice of `bytes` when it has no escapes).
    @inline(__always)
    func stringBytes(at index: Int) -> ArraySlice<UInt8>? {
        let e = entry(index)
        guard e.kind == .string else { return nil }
        let raw = bytes[(bytes.startIndex + Int(e.start))..<(bytes.startIndex + Int(e.end))]
        return e.hasEscapes ? JSONParser.unescape(raw)[...] : raw
    }
}

/// A value inside a `JSONDocument`, by its position on the tape.
public struct JSONValue: Sendable {
    /// The document the value is in.
    public let document: JSONDocument
    /// The value's index on the document's tape.
    public let index: Int

    var entry: JSONTapeEntry { document.entry(index) }
    /// Object, array, string, number, true, false or null.
    public var kind: JSONTapeEntry.Kind { entry.kind }

    /// The value's bytes as they appear in the document (strings include their quotes).
    public var rawBytes: ArraySlice<UInt8> {
        let e = entry
        let base = document.bytes.startIndex
        if e.kind == .string {
            return document.bytes[(base + Int(e.start) - 1)..<(base + Int(e.end) + 1)]
        }
        return document.bytes[(base + Int(e.start))..<(base + Int(e.end))]
    }

    /// For a string: its decoded UTF-8 bytes (a slice of the document when it has no escapes).
    public var stringBytes: ArraySlice<UInt8>? { document.stringBytes(at: index) }

    /// For a string: its decoded text; nil for any other kind.
    public var string: String? {
        guard let bytes = stringBytes else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// For a number: its value as a `Double`; nil for any other kind.
    public var double: Double? {
        guard kind == .number else { return nil }
        return JSONParser.parseDouble(rawBytes)
    }

    /// For `true` and `false`, the value; nil for any other kind.
    public var bool: Bool? {
        switch kind {
        case .true: return true
        case .false: return false
        default: return nil
        }
    }

    /// Whether the value is `null`.
    public var isNull: Bool { kind == .null }

    /// Members of an object, in document order.
    public var members: JSONMembers? {
        kind == .object ? JSONMembers(document: document, container: index) : nil
    }

    /// Elements of an array, in document order.
    public var elements: JSONElements? {
        kind == .array ? JSONElements(document: document, container: index) : nil
    }

    /// The member named `key` (compared after unescaping); the first one when repeated.
    public func member(_ key: [UInt8]) -> JSONValue? {
        document.memberIndex(index, key).map { JSONValue(document: document, index: $0) }
    }

    /// The member named `key` (compared after unescaping); the first one when repeated.
    public func member(_ key: String) -> JSONValue? {
        member(Array(key.utf8))
    }

    /// The array element at `position`.
    public func element(_ position: Int) -> JSONValue? {
        document.elementIndex(index, position).map { JSONValue(document: document, index: $0) }
    }

    /// The value at `path` below this one, or nil when there is none.
    public func value(at path: JSONPath) -> JSONValue? {
        document.index(at: path, from: index).map { JSONValue(document: document, index: $0) }
    }
}

/// An object's members as (key, value) pairs, in document order; keys are string values.
public struct JSONMembers: Sequence, Sendable {
    let document: JSONDocument
    let container: Int

    /// Walks the members, skipping each value's subtree in one step.
    public struct Iterator: IteratorProtocol {
        let document: JSONDocument
        var i: Int
        let end: Int
        /// The next member, or nil after the last.
        public mutating func next() -> (key: JSONValue, value: JSONValue)? {
            guard i < end else { return nil }
            let key = JSONValue(document: document, index: i)
            let value = JSONValue(document: document, index: i + 1)
            i = Int(document.entry(i + 1).next)
            return (key, value)
        }
    }

    /// An iterator from the first member.
    public func makeIterator() -> Iterator {
        Iterator(document: document, i: container + 1, end: Int(document.entry(container).next))
    }
}

/// An array's elements, in document order.
public struct JSONElements: Sequence, Sendable {
    let document: JSONDocument
    let container: Int

    /// Walks the elements, skipping each one's subtree in one step.
    public struct Iterator: IteratorProtocol {
        let document: JSONDocument
        var i: Int
        let end: Int
        /// The next element, or nil after the last.
        public mutating func next() -> JSONValue? {
            guard i < end else { return nil }
            let value = JSONValue(document: document, index: i)
            i = Int(document.entry(i).next)
            return value
        }
    }

    /// An iterator from the first element.
    public func makeIterator() -> Iterator {
        Iterator(document: document, i: container + 1, end: Int(document.entry(container).next))
    }
}
