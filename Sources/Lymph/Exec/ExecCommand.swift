import Foundation

/// The program an `exec` stage runs: a resolved executable, its arguments and working folder.
///
/// A command with a slash is a path (a relative one resolves against the pipeline file's
/// folder); a bare name is looked up in `PATH`, as a shell would. No shell is ever started:
/// a string command is only split into words the way a shell splits them.
public struct ExecCommand: Sendable {
    /// Absolute path of the executable.
    public let executable: String
    /// Arguments after the program name.
    public let arguments: [String]
    /// The program name as written (argv[0]).
    public let name: String
    /// The pipeline file's folder: the process's working directory.
    public let workingDirectory: String

    /// A command already resolved: `executable` is run as `name` with `arguments`, in
    /// `workingDirectory`.
    public init(executable: String, arguments: [String], name: String, workingDirectory: String) {
        self.executable = executable
        self.arguments = arguments
        self.name = name
        self.workingDirectory = workingDirectory
    }

    /// The command as one would type it in a shell, each word quoted when it needs to be.
    public var display: String { ([name] + arguments).map(ShellWords.quote).joined(separator: " ") }

    static func configure(_ value: ConfigValue, pipelineFolder: String, _ d: inout ConfigDiagnostics) -> ExecCommand? {
        var words: [String] = []
        if case .scalar = value.node {
            guard let text = value.string(&d, "command") else { return nil }
            do { words = try ShellWords.split(text) } catch {
                d.error("command: \(error)", at: value)
                return nil
            }
        } else if let items = value.strings(&d, "command") {
            for item in items { if let s = item.string(&d, "command") { words.append(s) } }
        } else {
            return nil
        }
        guard let program = words.first, !program.isEmpty else {
            d.error("command is empty; it needs at least the program to run", at: value)
            return nil
        }
        // A C string ends at a NUL: the word the process got would not be the word written.
        if let n = words.firstIndex(where: { $0.utf8.contains(0) }) {
            d.error("command: word \(n + 1) holds a NUL character, which no program argument can carry", at: value)
            return nil
        }
        let folder = (pipelineFolder as NSString).standardizingPath
        let absoluteFolder = folder.hasPrefix("/") ? folder : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(folder)
        switch resolve(program, folder: absoluteFolder, path: ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin") {
        case .success(let executable):
            return ExecCommand(executable: executable, arguments: Array(words.dropFirst()), name: program, workingDirectory: absoluteFolder)
        case .failure(let problem):
            d.error(problem.message, at: value)
            return nil
        }
    }

    struct Problem: Error { let message: String }

    /// Finds the executable for `program` the way the issue's contract says, and checks it can run.
    static func resolve(_ program: String, folder: String, path: String) -> Result<String, Problem> {
        if program.contains("/") {
            let full = program.hasPrefix("/") ? program : (folder as NSString).appendingPathComponent(program)
            let standardized = (full as NSString).standardizingPath
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: standardized, isDirectory: &isDirectory) else {
                let relative = program.hasPrefix("/") ? "" : " (relative paths resolve against the pipeline file's folder, \(folder))"
                return .failure(Problem(message: "command '\(program.cutForMessage())' does not exist\(relative)"))
            }
            guard !isDirectory.boolValue else { return .failure(Problem(message: "command '\(program.cutForMessage())' is a folder, not a program")) }
            guard access(standardized, X_OK) == 0 else {
                return .failure(Problem(message: "command '\(program.cutForMessage())' is not executable; run: chmod +x \(standardized.cutForMessage(200))"))
            }
            return .success(standardized)
        }
        for dir in path.split(separator: ":", omittingEmptySubsequences: true) {
            let candidate = (String(dir) as NSString).appendingPathComponent(program)
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue, access(candidate, X_OK) == 0 {
                return .success(candidate)
            }
        }
        return .failure(
            Problem(message: "command '\(program.cutForMessage())' was not found in PATH; write a path (with a '/') for a program beside the pipeline"))
    }
}

/// Splits a command string into words like a POSIX shell (spaces, single and double quotes,
/// backslash escapes), without expanding anything: no variables, globs or substitutions.
enum ShellWords {
    /// Why a command string cannot be split: an unterminated quote, a trailing backslash, or shell
    /// syntax.
    struct SplitError: Error, CustomStringConvertible {
        /// What is wrong, in one line.
        let description: String
    }

    /// The words of `text`; throws on shell syntax (pipes, redirections, variables, globs), which
    /// would need a shell to mean anything.
    static func split(_ text: String) throws(SplitError) -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var chars = Array(text)[...]
        while let c = chars.popFirst() {
            switch c {
            case " ", "\t", "\n":
                if inWord { words.append(current); current = ""; inWord = false }
            case "'":
                inWord = true
                guard let close = chars.firstIndex(of: "'") else { throw SplitError(description: "unterminated single quote") }
                current += String(chars[chars.startIndex..<close])
                chars = chars[(close + 1)...]
            case "\"":
                inWord = true
                var closed = false
                while let d = chars.popFirst() {
                    if d == "\"" { closed = true; break }
                    if d == "\\", let next = chars.first, ["\"", "\\", "$", "`"].contains(next) {
                        current.append(next)
                        chars.removeFirst()
                    } else {
                        current.append(d)
                    }
                }
                if !closed { throw SplitError(description: "unterminated double quote") }
            case "\\":
                inWord = true
                guard let next = chars.popFirst() else { throw SplitError(description: "trailing backslash") }
                current.append(next)
            default:
                if "|&;<>()$`*?[".contains(c) || (!inWord && "#~".contains(c)) {
                    throw SplitError(description: "'\(c)' is shell syntax, but no shell runs the command; use a list, or write a script")
                }
                inWord = true
                current.append(c)
            }
        }
        if inWord { words.append(current) }
        return words
    }

    /// A word as a shell would need it written (for messages).
    static func quote(_ word: String) -> String {
        if !word.isEmpty, word.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0) }) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
    }
}
