/// Event type names to accept: exact names, `prefix.*` wildcards, or `*` for all.
public struct TypeMatcher: Sendable, CustomStringConvertible {
    let exact: [[UInt8]]
    let prefixes: [[UInt8]]
    let matchesAll: Bool
    /// The patterns, separated by `, `.
    public let description: String

    /// A matcher for `patterns`: each an exact type, `prefix.*` or `*`.
    public init(_ patterns: [String]) {
        var exact: [[UInt8]] = []
        var prefixes: [[UInt8]] = []
        var all = false
        for p in patterns {
            if p == "*" {
                all = true
            } else if p.hasSuffix(".*") {
                prefixes.append(Array(p.dropLast(1).utf8))  // keeps the dot: "alert."
            } else {
                exact.append(Array(p.utf8))
            }
        }
        self.exact = exact
        self.prefixes = prefixes
        self.matchesAll = all
        self.description = patterns.joined(separator: ", ")
    }

    /// `matches`, on bytes in place (an event's type, read from its buffer): by index, as
    /// iterating the patterns would copy each.
    func matches(_ type: UnsafeBufferPointer<UInt8>) -> Bool {
        if matchesAll { return true }
        for k in exact.indices where exact[k].count == type.count {
            if exact[k].withUnsafeBufferPointer({ $0.elementsEqual(type) }) { return true }
        }
        for k in prefixes.indices where type.count > prefixes[k].count {
            if prefixes[k].withUnsafeBufferPointer({ $0.elementsEqual(UnsafeBufferPointer(rebasing: type[..<$0.count])) }) { return true }
        }
        return false
    }

    /// Whether `type` is one of the exact names, or starts with a `prefix.` and has more after it.
    public func matches(_ type: ArraySlice<UInt8>) -> Bool {
        type.withUnsafeBufferPointer { matches($0) }
    }
}
