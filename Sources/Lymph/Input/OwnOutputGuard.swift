import Foundation

/// Keeps a run from reading what it writes. Replaying the dead-letter file into the pipeline
/// that writes it would read back the records it appends, for ever on a large file, so the file
/// is first moved aside (one atomic rename: new failures go to a fresh file). An input that is
/// the pipeline's output or a log stage's file is refused.
public enum OwnOutputGuard {
    /// A file this run writes, and what it is, for the messages.
    public struct Written: Sendable {
        /// The file's path, as the run was given it.
        public let path: String
        /// What the file is, for messages: `output`, `log file (stage 'NAME')`.
        public let role: String
        /// A file this run writes to at `path`, described as `role`.
        public init(path: String, role: String) {
            self.path = path
            self.role = role
        }
    }

    /// Why the run cannot start: an input it also writes to, dead letters sharing a file with
    /// another output, or a dead-letter file that cannot be moved aside.
    public struct Refusal: Error, Sendable, CustomStringConvertible {
        /// What is refused and why, in one line.
        public let description: String
    }

    /// The dead-letter file moved aside: read from `aside`, while new dead letters go to a fresh
    /// `original`.
    public struct Moved: Sendable, Equatable {
        /// The dead-letter file's path, where new dead letters go.
        public let original: String
        /// Where its records were moved to and are read from: `ORIGINAL.replay-TIME`.
        public let aside: String
    }

    /// The inputs to read, and what was moved to make that safe.
    public struct Prepared: Sendable {
        /// What to read instead of the inputs given.
        public let inputs: [String]
        /// One for each dead-letter file moved aside, for stderr.
        public let notes: [String]
        /// The dead-letter files moved aside, for the caller to put back or clean up after.
        public let moved: [Moved]
    }

    /// Why a file the run appends to would destroy the store at `state` or the pipeline file
    /// (the same path, or another name for the same file); nil when none would.
    public static func overwritten(_ written: [Written], state: String?, pipelineFile: String) -> String? {
        let storeFiles = state.map(PipelineLoader.storeFiles) ?? []
        for w in written where w.path != "none" {
            if storeFiles.contains(where: { sameFile(w.path, $0) }) {
                return "the \(w.role) ('\(w.path)') is the state store's file ('\(state ?? "")'): SQLite would write its pages over what is appended there"
            }
            if sameFile(w.path, pipelineFile) {
                return "the \(w.role) ('\(w.path)') is the pipeline file ('\(pipelineFile)'): what is appended would break it"
            }
        }
        return nil
    }

    /// Whether two paths of files name one file: the same file now (a hard link, a symlink), or
    /// the same path once symlinks are followed, which also catches a symlink to a file not made
    /// yet (the first write makes it). `-` and `stderr` are streams, never a file here.
    static func sameFile(_ a: String, _ b: String) -> Bool {
        let streams = ["-", "stderr"]
        if streams.contains(a) || streams.contains(b) { return false }
        if let x = FileIdentity(path: a), let y = FileIdentity(path: b), x == y { return true }
        return PipelineLoader.sameSink(linkTarget(a) ?? a, linkTarget(b) ?? b)
    }

    /// Where the symlink at `path` leads, through up to 40 links, even when nothing is there yet;
    /// nil when `path` is not a symlink.
    static func linkTarget(_ path: String) -> String? {
        var current = path
        var followed = 0
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        while followed < 40 {
            let n = readlink(current, &buffer, buffer.count - 1)
            guard n > 0 else { break }
            let link = String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let folder = PathParent.of(current)
            current = link.hasPrefix("/") || folder.isEmpty ? link : folder + "/" + link
            followed += 1
        }
        return followed == 0 ? nil : current
    }

    /// What to read instead of `inputs`, and a note for each dead-letter file moved aside.
    /// `now` names the moved file (`<dead letters>.replay-<UTC time>`).
    public static func prepare(
        inputs: [String], deadLetter: String, written: [Written],
        now: Date = Date()
    ) throws(Refusal) -> Prepared {
        var result: [String] = []
        var notes: [String] = []
        var movedFiles: [Moved] = []
        var moved: [FileIdentity: String] = [:]
        let deadIdentity = FileIdentity(path: deadLetter)
        // Two names for one file (a symlink, a hard link) must not split dead letters from events.
        if let same = written.first(where: { sameFile($0.path, deadLetter) }) {
            throw Refusal(
                description:
                    "the dead letters ('\(deadLetter)') and the \(same.role) ('\(same.path)') are the same file: rejected items would mix with the others")
        }
        for input in inputs.isEmpty ? ["-"] : inputs {
            // stdin may be a file redirected in: it is checked by what it is, not by its name.
            guard let identity = input == "-" ? FileIdentity(descriptor: 0) : FileIdentity(path: input) else {
                result.append(input)
                continue
            }
            if let other = written.first(where: { FileIdentity(path: $0.path) == identity }) {
                throw Refusal(
                    description:
                        "input '\(input == "-" ? "stdin" : input)' is this pipeline's \(other.role) ('\(other.path)'): a run never reads what it writes")
            }
            if identity == deadIdentity {
                if let already = moved[identity] {
                    result.append(already)
                    continue
                }
                let aside = try moveAside(deadLetter, now: now)
                moved[identity] = aside
                movedFiles.append(Moved(original: deadLetter, aside: aside))
                if input == "-" {
                    // The open descriptor follows the file to its new name.
                    notes.append("replaying stdin (the dead-letter file, now '\(aside)'); new dead letters go to a fresh '\(deadLetter)'")
                    result.append(input)
                } else {
                    notes.append("replaying '\(input)' from '\(aside)'; new dead letters go to a fresh '\(deadLetter)'")
                    result.append(aside)
                }
            } else {
                result.append(input)
            }
        }
        return Prepared(inputs: result, notes: notes, moved: movedFiles)
    }

    /// Undoes a move when the run never started (the pipeline could not be opened): the file
    /// gets its name back unless a non-empty file has taken that name since (opening the
    /// pipeline may have created an empty one). Returns a message saying what was done.
    public static func putBack(_ moved: Moved) -> String {
        var st = stat()
        if stat(moved.original, &st) == 0, st.st_size > 0 || (st.st_mode & S_IFMT) != S_IFREG {
            return "left the dead letters in '\(moved.aside)': '\(moved.original)' is in use again"
        }
        // rename(2) replaces the empty file in one step.
        guard rename(moved.aside, moved.original) == 0 else {
            return "left the dead letters in '\(moved.aside)': cannot rename it back: \(String(cString: strerror(errno)))"
        }
        return "put the dead letters back in '\(moved.original)'"
    }

    static func moveAside(_ path: String, now: Date) throws(Refusal) -> String {
        // Every process appending to the file holds a shared lock on it (`FileSink.append`): one
        // that is running now would go on writing into the moved file.
        let held = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        if held >= 0 {
            defer { close(held) }
            if flock(held, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK {
                throw Refusal(
                    description:
                        "the dead-letter file '\(path)' is being written by another lymph process (a run or a server with another store): replay it once that has ended, so that no dead letter lands in the file being replayed"
                )
            }
        }
        let stamp = Timestamp.compact(now.timeIntervalSince1970)
        for attempt in 0..<100 {
            let candidate = "\(path).replay-\(stamp)" + (attempt == 0 ? "" : "-\(attempt)")
            // link + unlink is an atomic rename that never replaces an existing file.
            if link(path, candidate) == 0 {
                unlink(path)
                return candidate
            }
            if errno != EEXIST {
                throw Refusal(description: "cannot move the dead-letter file '\(path)' aside before replaying it: \(String(cString: strerror(errno)))")
            }
        }
        throw Refusal(description: "cannot move the dead-letter file '\(path)' aside before replaying it: too many earlier replays this second")
    }
}

/// A file's device and inode: two paths name the same file when these are equal.
struct FileIdentity: Hashable {
    let device: UInt64
    let inode: UInt64

    init?(path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        self.init(st)
    }

    init?(descriptor: Int32) {
        var st = stat()
        guard fstat(descriptor, &st) == 0 else { return nil }
        self.init(st)
    }

    private init?(_ st: stat) {
        guard (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
    }
}
