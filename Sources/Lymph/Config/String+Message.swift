extension String {
    /// The text as quoted in a message: at most `limit` characters, with "…" when cut, so a
    /// pasted blob or a 4 MB key never floods a terminal or a log.
    public func cutForMessage(_ limit: Int = 80) -> String {
        var end = startIndex
        var count = 0
        while end < endIndex && count < limit {
            formIndex(after: &end)
            count += 1
        }
        return end == endIndex ? self : self[..<end] + "…"
    }
}
