import Foundation

/// The fenced code blocks of the documentation pages, and the shell commands in those marked
/// runnable. The marking convention is described in docs/testing.md ("Docs that run").
enum DocBlocks {
    /// One fenced code block: its info string (after the backticks), the line of its opening
    /// fence (1-based) and its content lines.
    struct Fence: Sendable {
        let info: String
        let line: Int
        let lines: [String]
        /// The first word of the info string (`sh`, `yaml`, `text`).
        var language: String { info.split(separator: " ").first.map(String.init) ?? "" }
        /// The words after the language (`run`, `timeout=300`; `norun` and its reason).
        var words: [String] { info.split(separator: " ").dropFirst().map(String.init) }
        var isShell: Bool { ["sh", "bash", "shell", "console"].contains(language) }
        var isRunnable: Bool { isShell && words.first == "run" }
        /// `norun: REASON` (or `norun REASON`).
        var isNotRunnable: Bool { isShell && (words.first == "norun:" || words.first == "norun") }
        /// The reason a block is not runnable: the words after `norun`.
        var notRunnableReason: String { words.dropFirst().joined(separator: " ") }
        /// A `text output` block: what the runnable block right before it prints.
        var isOutput: Bool { language == "text" && words.contains("output") }
        /// `timeout=SECONDS` from the info string, or the default.
        var timeout: Double {
            for word in words where word.hasPrefix("timeout=") { if let s = Double(word.dropFirst(8)) { return s } }
            return DocBlocks.defaultTimeout
        }
    }

    /// A runnable block and the output block that follows it, if any.
    struct Runnable: Sendable {
        let page: String
        let block: Fence
        let output: Fence?
    }

    /// One command of a runnable block: a line, with its `\` continuations and here-document.
    struct Command: Sendable, Equatable {
        let text: String
        let line: Int
        /// From a trailing `# exit N` comment; 0 when there is none.
        let expectedStatus: Int32
        /// Ends with `&`: started in the background, no status to check.
        let background: Bool
    }

    static let defaultTimeout = 120.0

    /// README.md, plugins/README.md and every docs/*.md, as paths relative to the repository.
    static var pages: [String] {
        let docs = (try? FileManager.default.contentsOfDirectory(atPath: LymphBinary.repo("docs"))) ?? []
        return ["README.md", "plugins/README.md"] + docs.filter { $0.hasSuffix(".md") }.sorted().map { "docs/" + $0 }
    }

    static func text(of page: String) -> String {
        (try? String(contentsOfFile: LymphBinary.repo(page), encoding: .utf8)) ?? ""
    }

    /// The fenced blocks of a Markdown text, in order. A fence is three or more backticks (or
    /// tildes), indented by at most three spaces beyond its list item; the block ends at a line
    /// of at least as many of the same character and nothing else.
    static func fences(in text: String) -> [Fence] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var fences: [Fence] = []
        var i = 0
        while i < lines.count {
            let line = lines[i]
            let indent = line.prefix { $0 == " " }.count
            let rest = line.dropFirst(indent)
            guard let mark = rest.first, mark == "`" || mark == "~" else { i += 1; continue }
            let count = rest.prefix { $0 == mark }.count
            guard count >= 3 else { i += 1; continue }
            let info = rest.dropFirst(count).trimmingCharacters(in: .whitespaces)
            var content: [String] = []
            var j = i + 1
            while j < lines.count {
                let candidate = lines[j].trimmingCharacters(in: .whitespaces)
                if candidate.count >= count && candidate.allSatisfy({ $0 == mark }) { break }
                // Content lines lose the fence's own indentation (a block inside a list item).
                let l = lines[j]
                let strip = min(indent, l.prefix { $0 == " " }.count)
                content.append(String(l.dropFirst(strip)))
                j += 1
            }
            fences.append(Fence(info: info, line: i + 1, lines: content))
            i = j + 1
        }
        return fences
    }

    /// The runnable blocks of a page, each with the output block right after it (blank lines
    /// between the two are allowed, nothing else).
    static func runnables(of page: String) -> [Runnable] {
        let text = text(of: page)
        let all = fences(in: text)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        var result: [Runnable] = []
        for (index, fence) in all.enumerated() where fence.isRunnable {
            var output: Fence?
            if index + 1 < all.count, all[index + 1].isOutput {
                let next = all[index + 1]
                let closing = fence.line + fence.lines.count + 1  // the closing fence's line
                let between = lines[closing..<(next.line - 1)]
                if between.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) { output = next }
            }
            result.append(Runnable(page: page, block: fence, output: output))
        }
        return result
    }

    /// The commands of a runnable block. Blank lines and lines that are only a comment are
    /// skipped; a line ending in `\` goes on on the next; a here-document (`<<'EOF'`, `<<EOF`,
    /// `<<-EOF`) takes the lines up to its end word.
    static func commands(of fence: Fence) -> [Command] {
        var commands: [Command] = []
        var i = 0
        let lines = fence.lines
        while i < lines.count {
            let first = lines[i]
            let trimmed = first.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { i += 1; continue }
            let startLine = fence.line + 1 + i
            var text = first
            while text.hasSuffix("\\"), i + 1 < lines.count {
                i += 1
                text += "\n" + lines[i]
            }
            if let end = hereDocumentEnd(in: text) {
                while i + 1 < lines.count {
                    i += 1
                    text += "\n" + lines[i]
                    let candidate = end.stripTabs ? lines[i].drop { $0 == "\t" } : lines[i][...]
                    if candidate == end.word { break }
                }
            }
            i += 1
            commands.append(
                Command(
                    text: text, line: startLine, expectedStatus: expectedStatus(of: first),
                    background: isBackground(first)))
        }
        return commands
    }

    /// `# exit N` in the trailing comment of a command's first line.
    static func expectedStatus(of line: String) -> Int32 {
        guard let range = line.range(of: #"(^|\s)#\s*exit\s+([0-9]+)"#, options: .regularExpression) else { return 0 }
        return Int32(line[range].filter(\.isNumber)) ?? 0
    }

    /// Whether the line (before a trailing comment) ends with `&` (and not `&&`).
    static func isBackground(_ line: String) -> Bool {
        var code = line
        if let comment = line.range(of: #"\s#.*$"#, options: .regularExpression) { code = String(line[..<comment.lowerBound]) }
        code = code.trimmingCharacters(in: .whitespaces)
        return code.hasSuffix("&") && !code.hasSuffix("&&")
    }

    static func hereDocumentEnd(in text: String) -> (word: String, stripTabs: Bool)? {
        guard let range = text.range(of: #"<<(-?)\s*['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?"#, options: .regularExpression),
            !text[..<range.lowerBound].hasSuffix("<")
        else { return nil }
        let match = String(text[range])
        let stripTabs = match.hasPrefix("<<-")
        let word = match.drop { "<-'\" \t".contains($0) }.filter { $0 != "'" && $0 != "\"" }
        return (String(word), stripTabs)
    }

    // MARK: Comparing output

    /// Whether `actual` is what `expected` shows. Trailing blanks of each line and blank lines
    /// at the end are ignored; `…` inside a line stands for any text (none included), and a
    /// line that is only `…` stands for any number of lines (none included).
    static func matches(expected: [String], actual: [String]) -> Bool {
        let e = trimmed(expected), a = trimmed(actual)
        // memo[i][j]: expected[i...] matches actual[j...]
        var memo = [[Bool?]](repeating: [Bool?](repeating: nil, count: a.count + 1), count: e.count + 1)
        func match(_ i: Int, _ j: Int) -> Bool {
            if let known = memo[i][j] { return known }
            let result: Bool
            if i == e.count {
                result = j == a.count
            } else if e[i] == "…" {
                result = match(i + 1, j) || (j < a.count && match(i, j + 1))
            } else {
                result = j < a.count && lineMatches(e[i], a[j]) && match(i + 1, j + 1)
            }
            memo[i][j] = result
            return result
        }
        return match(0, 0)
    }

    static func lineMatches(_ expected: String, _ actual: String) -> Bool {
        let parts = expected.components(separatedBy: "…")
        if parts.count == 1 { return expected == actual }
        var rest = actual[...]
        guard rest.hasPrefix(parts[0]) else { return false }
        rest = rest.dropFirst(parts[0].count)
        for (k, part) in parts.enumerated().dropFirst() {
            if k == parts.count - 1 { return part.isEmpty || rest.hasSuffix(part) }
            guard let found = rest.range(of: part) else { return false }
            rest = rest[found.upperBound...]
        }
        return true
    }

    static func trimmed(_ lines: [String]) -> [String] {
        var out = lines.map { String($0.reversed().drop { $0 == " " || $0 == "\t" }.reversed()) }
        while out.last?.isEmpty == true { out.removeLast() }
        return out
    }
}
