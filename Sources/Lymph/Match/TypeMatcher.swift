/// Event type names to accept: exact names, `prefix.*` wildcards, or `*` for all.
public struct TypeMatcher: Sendable, CustomStringConvertible {
    let exact: [[UInt8]]
    let prefixes: [[UInt8]]
    let matchesAll: Bool
    public let description: String

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

    public func matches(_ type: ArraySlice<UInt8>) -> Bool {
        if matchesAll { return true }
        for e in exact where e.count == type.count && type.elementsEqual(e) { return true }
        for p in prefixes where type.count > p.count && type.prefix(p.count).elementsEqual(p) { return true }
        return false
    }
}
