/// "Did you mean …?" for misspelt keys, stage names and commands.
public enum Suggestion {
    /// The candidate nearest to `word` (case ignored), or nil when none is within a few edits
    /// (one for short words, at most three).
    public static func closest(to word: String, in candidates: [String]) -> String? {
        // No candidate is long: a word far longer than every one is nobody's typo, and the
        // distance table must not grow with pasted text.
        guard word.count <= 64 else { return nil }
        let limit = max(1, min(3, word.count / 3 + 1))
        var best: (String, Int)?
        for c in candidates where abs(c.count - word.count) <= limit {
            let d = distance(word.lowercased(), c.lowercased())
            if d <= limit && (best == nil || d < best!.1) { best = (c, d) }
        }
        return best?.0
    }

    /// `; did you mean 'X'?` for the closest candidate, else `; expected one of: ...` listing them
    /// all, to end an error message.
    public static func didYouMean(_ word: String, in candidates: [String]) -> String {
        if let s = closest(to: word, in: candidates) { return "; did you mean '\(s)'?" }
        return "; expected one of: \(candidates.joined(separator: ", "))"
    }

    /// Levenshtein distance, with adjacent swaps counted as one edit.
    public static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var d = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[a.count][b.count]
    }
}
