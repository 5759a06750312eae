import Foundation

/// `lymph replay`'s decisions around the run itself: what to replay, and what becomes of the
/// replayed file afterwards. The run is `lymph run`'s; `OwnOutputGuard` moves the pipeline's own
/// dead-letter file aside before it, so failures go to a fresh file.
public enum DeadLetterReplay {
    /// Which file a replay reads, and so whether it may move and delete it.
    public enum Source: Sendable, Equatable {
        /// Nothing to do, and why (the file is missing or empty): nothing is changed.
        case nothing(String)
        /// The pipeline's own dead-letter file: moved aside, replayed, deleted when it all went through.
        case own(String)
        /// Another file: read in place, never moved or deleted.
        case other(String)
    }

    /// What to replay: `file`, or the pipeline's dead-letter file `deadLetter` when nil. A
    /// missing or empty dead-letter file is `.nothing`; another file that does not exist throws
    /// (a wrong name must not pass for "nothing to replay").
    public static func source(file: String?, deadLetter: String) throws(RecoveryFileError) -> Source {
        if file == nil, isStandardStream(deadLetter) {
            throw RecoveryFileError(path: deadLetter, message: "the pipeline's dead letters go to \(deadLetter), not to a file: name the file to replay")
        }
        let path = file ?? deadLetter
        let own = file == nil || isSameFile(path, deadLetter)
        var st = stat()
        guard stat(path, &st) == 0 else {
            if own && errno == ENOENT { return .nothing("nothing to replay: '\(path)' does not exist") }
            throw RecoveryFileError(path: path, message: "cannot read: \(String(cString: strerror(errno)))")
        }
        if (st.st_mode & S_IFMT) == S_IFREG && st.st_size == 0 { return .nothing("nothing to replay: '\(path)' is empty") }
        return own ? .own(path) : .other(path)
    }

    /// `-`, `stdout` and `stderr`: a `dead_letter` that is no file (see `SinkRegistry`).
    public static func isStandardStream(_ path: String) -> Bool { ["-", "stdout", "stderr"].contains(path) }

    /// Whether two paths name one file: the same device and inode, or (when either is missing)
    /// the same absolute path with its folders' symlinks resolved.
    static func isSameFile(_ a: String, _ b: String) -> Bool {
        if let x = FileIdentity(path: a), let y = FileIdentity(path: b) { return x == y }
        return StoreLock.resolved(a) == StoreLock.resolved(b)
    }

    /// What became of the replayed file once the run ended.
    public enum Ending: Sendable, Equatable {
        case deleted(String)
        /// Kept, and why.
        case kept(String, String)

        /// What became of the file, in one line for stderr.
        public var message: String {
            switch self {
            case .deleted(let path): return "every record went through: deleted '\(path)'"
            case .kept(let path, let why): return "kept '\(path)': \(why)"
            }
        }
    }

    /// After the run over `moved` (the dead-letter file moved aside): deleted only when the
    /// run read it to the end (`interruptedBy` 0, `deadLetters` not nil: nil means it stopped
    /// on an error) with no new dead letters; kept otherwise, saying why.
    public static func finish(moved: String, deadLetters: Int?, interruptedBy: Int32, into deadLetter: String) -> Ending {
        guard let deadLetters else { return .kept(moved, "the replay stopped on an error before the end") }
        if interruptedBy != 0 { return .kept(moved, "the replay was stopped by signal \(interruptedBy) before the end") }
        if deadLetters > 0 {
            return .kept(moved, "\(deadLetters) record\(deadLetters == 1 ? "" : "s") failed again (now in '\(deadLetter)')")
        }
        if unlink(moved) != 0 && errno != ENOENT {
            return .kept(moved, "cannot delete it: \(String(cString: strerror(errno)))")
        }
        return .deleted(moved)
    }

    /// A file moved aside by an earlier replay and kept: `<dead letters>.replay-<UTC time>`.
    public struct Kept: Sendable {
        /// The file's path.
        public let path: String
        /// The file's size in bytes.
        public let bytes: Int64
        /// Its lines that are not blank (records, unless edited by hand).
        public let records: Int
    }

    /// Whether `file` is one of the dead-letter file's kept replays (`keptReplays`): in its folder,
    /// named `<its name>.replay-…`. Replayed by name to the end with no new dead letters, it is
    /// deleted as the moved file would have been: Lymph made it, and otherwise it would be named
    /// as waiting after every later replay.
    public static func isKeptReplay(_ file: String, of deadLetter: String) -> Bool {
        let prefix = (deadLetter as NSString).lastPathComponent + ".replay-"
        guard (file as NSString).lastPathComponent.hasPrefix(prefix) else { return false }
        func folder(_ path: String) -> String? {
            let dir = PathParent.of(path)
            guard let resolved = realpath(dir.isEmpty ? "." : dir, nil) else { return nil }
            defer { free(resolved) }
            return String(cString: resolved)
        }
        guard let a = folder(file), let b = folder(deadLetter) else { return false }
        return a == b
    }

    /// The kept replays of the dead-letter file `path`, oldest first (their names sort by time).
    /// Each is read once to count its lines.
    public static func keptReplays(of path: String) -> [Kept] {
        let folder = PathParent.of(path)
        let prefix = (path as NSString).lastPathComponent + ".replay-"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.isEmpty ? "." : folder)) ?? []
        return names.filter { $0.hasPrefix(prefix) }.sorted().compactMap { name in
            let full = folder.isEmpty ? name : (folder as NSString).appendingPathComponent(name)
            var st = stat()
            guard stat(full, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
            var records = 0
            try? NDJSONLines.forEach(path: full) { _, line in
                if case .bytes(let b) = line, b.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return true }
                records += 1
                return true
            }
            return Kept(path: full, bytes: Int64(st.st_size), records: records)
        }
    }
}
