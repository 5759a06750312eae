#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import Foundation
import GRDB
import Logging
import Synchronization

/// Makes a pipeline's output files exactly-once across a crash: each file's length is committed
/// in the runner's store transaction (with the dedup keys, tickets and spool progress of the
/// same work), and at the next start the file is cut back to it. What lay beyond belonged to
/// events that were not committed, and they are processed, and written, again.
///
/// Only regular files that Lymph alone appends to are cut. stdout, stderr, pipes, FIFOs and
/// devices are left out (at-least-once). A file is left as it is, with a warning, when it is
/// not the file last committed to (another inode: rotated or replaced), is shorter than its
/// committed length, or its bytes before that length changed (the fingerprint of up to 64 of
/// them differs). A file another program also appends to (seen at a commit: its size is not
/// what Lymph wrote since the last one) is marked shared and never cut again.
///
/// Costs one `fstat` per file per commit, and one small upsert when the file changed. The
/// runner must not write to the files while it commits (it writes and commits in its serial
/// part, one after the other).
public final class OutputLedger: Sendable {
    /// What the start found for one file.
    public enum Reconciliation: Sendable, Equatable {
        /// Nothing recorded yet: the file's length now is where it starts.
        case new
        /// Exactly as committed.
        case unchanged
        /// This many bytes past the committed length were cut off.
        case cut(bytes: Int64)
        /// Another file than the one committed to is at the path (rotated or replaced): left as is.
        case replaced
        /// A new empty file is at the path (the old one was moved away or removed): nothing to cut.
        case recreated
        /// Shorter than its committed length (truncated by someone): left as is.
        case shorter(by: Int64)
        /// Its bytes before the committed length changed: left as is.
        case changed
        /// Another program appends to it: never cut.
        case shared
        /// Longer than committed by bytes no process of this store wrote: another process holds
        /// the file open to append now, or bytes came after this store's last process ended
        /// cleanly (it had committed all it wrote). Marked shared, never cut.
        case appendedByAnother(bytes: Int64)
    }

    struct Entry {
        let sink: FileSink
        let realPath: String
        var device: UInt64
        var inode: UInt64
        /// The file's length at the last commit.
        var committedLength: Int64
        /// `sink.progress.total` at the last commit.
        var writtenAtCommit: Int
        var shared: Bool
        /// The "another program appends to it" warning was given.
        var warnedShared = false
        /// What the transaction in progress records, applied once it has committed.
        var staged: (length: Int64, written: Int, shared: Bool)?
    }

    let store: StateStore
    let logger: Logger
    let entries: Mutex<[Entry]>
    /// Set for the last commit of a process that ends cleanly (`closing`).
    private let closingNow = Atomic<Bool>(false)
    /// What the start found, by path as opened.
    public let reconciled: [(path: String, outcome: Reconciliation)]

    private init(store: StateStore, logger: Logger, entries: [Entry], reconciled: [(path: String, outcome: Reconciliation)]) {
        self.store = store
        self.logger = logger
        self.entries = Mutex(entries)
        self.reconciled = reconciled
    }

    /// Cuts each regular file among `sinks` back to its committed length where that is safe,
    /// records where each one starts, and returns the ledger the runner commits lengths with.
    /// Call before anything is written to the sinks.
    public static func open(store: StateStore, sinks: [FileSink], logger: Logger = Logger(label: "lymph.outputs")) throws -> OutputLedger {
        var entries: [Entry] = []
        var reconciled: [(path: String, outcome: Reconciliation)] = []
        var records: [StateStore.OutputFileRecord] = []
        for sink in sinks where sink.ownsDescriptor {
            var st = stat()
            guard fstat(sink.fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            let device = UInt64(st.st_dev), inode = UInt64(st.st_ino)
            let realPath = Self.realPath(sink.path)
            var length = Int64(st.st_size)
            let outcome: Reconciliation
            var shared = false
            if let record = try store.outputFileRecord(realPath: realPath) {
                if record.device != device || record.inode != inode {
                    outcome = length == 0 ? .recreated : .replaced
                } else if record.shared {
                    outcome = .shared
                    shared = true
                } else if length < record.length {
                    outcome = .shorter(by: record.length - length)
                } else if length == record.length {
                    outcome = .unchanged
                } else if record.closed || Self.othersAppend(sink) {
                    // Not this store's uncommitted work: cutting would delete another writer's
                    // lines (another pipeline's dead letters, say).
                    outcome = .appendedByAnother(bytes: length - record.length)
                    shared = true
                } else {
                    let start = record.length - Int64(record.fingerprintLength)
                    let before = Self.read(path: sink.path, device: device, inode: inode, offset: start, count: record.fingerprintLength)
                    if let before, Self.fingerprint(before[...]) == record.fingerprint {
                        guard ftruncate(sink.fd, off_t(record.length)) == 0 else {
                            throw OutputError(
                                path: sink.path, message: "cannot cut back to its committed length \(record.length): \(String(cString: strerror(errno)))")
                        }
                        outcome = .cut(bytes: length - record.length)
                        length = record.length
                    } else {
                        outcome = .changed
                    }
                }
            } else {
                outcome = .new
            }
            log(outcome, path: sink.path, length: length, logger: logger)
            reconciled.append((sink.path, outcome))
            let tail =
                shared
                ? []
                : Self.read(
                    path: sink.path, device: device, inode: inode,
                    offset: max(0, length - Int64(WriteProgress.tailLimit)), count: Int(min(length, Int64(WriteProgress.tailLimit))))
            let written = sink.progress.withLock { p in
                p.seed(tail ?? [])
                return p.total
            }
            let trusted = sink.progress.withLock { $0.trustedBytes }
            records.append(
                .init(
                    realPath: realPath, path: sink.path, device: device, inode: inode, length: length,
                    fingerprint: Self.fingerprint(trusted), fingerprintLength: trusted.count, shared: shared))
            entries.append(
                Entry(
                    sink: sink, realPath: realPath, device: device, inode: inode, committedLength: length,
                    writtenAtCommit: written, shared: shared))
        }
        if !records.isEmpty {
            // Where each file starts is committed work too: a crash before the first commit
            // cuts back to here.
            try store.recordOutputFiles(records, at: Timestamp.now())
        }
        return OutputLedger(store: store, logger: logger, entries: entries, reconciled: reconciled)
    }

    /// Each file's length now, for the runner's transaction: everything written so far belongs
    /// to the work this transaction commits (taken on the ordered path, so no later batch's
    /// lines are counted). A file whose size is not what Lymph wrote since the last commit has
    /// another writer: it is marked shared (with a warning, once).
    ///
    /// Throws when a file was deleted while Lymph wrote to it: what it held since the last commit
    /// is in no file now, so that work must not be committed; the next run does it again, into a
    /// new file at the path.
    public func takePending() throws(OutputError) -> PendingWrite? {
        let now = Timestamp.now()
        var records: [StateStore.OutputFileRecord] = []
        var deleted: String?
        // Once: a run that goes on after it (a server's worker starting its next run on this
        // pipeline) must not mark later commits as the last.
        let closing = closingNow.exchange(false, ordering: .relaxed)
        entries.withLock { entries in
            for i in entries.indices where !entries[i].shared {
                var e = entries[i]
                e.staged = nil
                let written = e.sink.progress.withLock { $0.total }
                var st = stat()
                guard fstat(e.sink.fd, &st) == 0 else { entries[i] = e; continue }
                if st.st_nlink == 0 {
                    deleted = e.sink.path
                    break
                }
                let size = Int64(st.st_size)
                let expected = e.committedLength + Int64(written - e.writtenAtCommit)
                var shared = false
                if size == expected {
                    // Nothing written, nobody else wrote: the row already says so (but for the
                    // last commit, which says the process ended).
                    if written == e.writtenAtCommit && !closing { entries[i] = e; continue }
                } else if size > expected {
                    shared = true
                    if !e.warnedShared {
                        logger.warning(
                            """
                            '\(e.sink.path)' grew by \(size - expected) bytes Lymph did not write since the last commit: another \
                            program appends to it. It is marked shared and never cut back after a crash: events processed \
                            since the last commit before a crash may appear twice in it
                            """)
                    }
                    e.warnedShared = true
                } else {
                    // Truncated behind Lymph's back (copytruncate, say): the bytes at its end are
                    // no longer known, so the fingerprint starts over with the next write.
                    e.sink.progress.withLock { $0.trustedTail = 0 }
                    logger.warning(
                        """
                        '\(e.sink.path)' is \(expected - size) bytes shorter than what Lymph wrote to it (truncated by another \
                        program?): its length now is taken as committed
                        """)
                }
                let trusted = e.sink.progress.withLock { $0.trustedBytes }
                let record = StateStore.OutputFileRecord(
                    realPath: e.realPath, path: e.sink.path, device: UInt64(st.st_dev), inode: UInt64(st.st_ino),
                    length: size, fingerprint: Self.fingerprint(trusted), fingerprintLength: trusted.count, shared: shared, closed: closing)
                records.append(record)
                e.staged = (size, written, shared)
                entries[i] = e
            }
        }
        if let deleted {
            throw OutputError(
                path: deleted,
                message:
                    "was deleted while lymph wrote to it: the lines written since the last commit are in no file, so that work is not committed and the run stops (exit 3); the next run does it again, into a new file at that path"
            )
        }
        if records.isEmpty { return nil }
        if let postgres = store.postgres {
            return PendingWrite(postgres: { [records] conn in try await postgres.recordOutputFiles(records, at: now, on: conn) })
        }
        return PendingWrite { [records] db in
            for record in records { try StateStore.recordOutputFile(db, record, at: now) }
        }
    }

    /// The transaction committed: what it recorded is now the baseline.
    public func pendingWritten() {
        entries.withLock { entries in
            for i in entries.indices {
                guard let staged = entries[i].staged else { continue }
                entries[i].committedLength = staged.length
                entries[i].writtenAtCommit = staged.written
                entries[i].shared = staged.shared
                entries[i].staged = nil
            }
        }
    }

    /// The transaction rolled back: the next one records again from the last baseline.
    public func pendingNotWritten() {
        entries.withLock { entries in
            for i in entries.indices { entries[i].staged = nil }
        }
    }

    static func log(_ outcome: Reconciliation, path: String, length: Int64, logger: Logger) {
        switch outcome {
        case .new, .unchanged:
            logger.debug("'\(path)': \(length) bytes, as committed")
        case .cut(let bytes):
            logger.notice(
                "cut \(bytes) bytes from '\(path)' back to its committed length \(length): they were written after the last commit, and their events are processed again"
            )
        case .replaced:
            logger.warning(
                "'\(path)' is not the file Lymph last committed to (another device or inode: rotated or replaced): left as is, and its length \(length) is taken as committed; events processed since the last commit before a crash may appear twice (in the old file and again here)"
            )
        case .recreated:
            logger.notice(
                "'\(path)' is a new file since the last commit (the old one was moved away or removed): nothing to cut; events processed since that commit may appear both in the old file and here"
            )
        case .shorter(let by):
            logger.warning(
                "'\(path)' is \(by) bytes shorter than its committed length (truncated by someone): left as is, and its length \(length) is taken as committed; events processed since the last commit before a crash may appear twice"
            )
        case .changed:
            logger.warning(
                "'\(path)' changed before its committed length since the last commit (its last committed bytes differ; another program rewrote it): not cut, and its length \(length) is taken as committed; events processed since the last commit before a crash may appear twice"
            )
        case .shared:
            logger.info("'\(path)' is shared with another program that appends to it: not cut back (at-least-once for this file)")
        case .appendedByAnother(let bytes):
            logger.warning(
                "'\(path)' has \(bytes) bytes past its committed length that no process of this store wrote (another program appends to it: one holding it open now, or one that wrote after this store's last process ended cleanly): not cut, and marked shared, never cut back (at-least-once for this file)"
            )
        }
    }

    /// Whether another process holds the file open to append (every lymph process appending to
    /// a file holds a shared lock on it, `FileSink`): this sink's own shared lock cannot become
    /// exclusive then. The conversion may drop the shared lock on failure, so it is taken again.
    static func othersAppend(_ sink: FileSink) -> Bool {
        if flock(sink.fd, LOCK_EX | LOCK_NB) == 0 {
            _ = flock(sink.fd, LOCK_SH | LOCK_NB)
            return false
        }
        let busy = errno == EWOULDBLOCK
        _ = flock(sink.fd, LOCK_SH | LOCK_NB)
        return busy
    }

    /// The next commit is the last of a process that ends cleanly, after everything it wrote:
    /// it records each file as closed, so that bytes past its length at the next start are known
    /// to be another program's (`Reconciliation.appendedByAnother`).
    public func closing() { closingNow.store(true, ordering: .relaxed) }

    /// FNV-1a, 64 bits: enough to tell whether the bytes before a cut are still Lymph's.
    static func fingerprint(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes {
            hash ^= UInt64(b)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }

    /// `realpath(3)`, or the path made absolute when that fails.
    static func realPath(_ path: String) -> String {
        if let resolved = Glibc.realpath(path, nil) {
            defer { free(resolved) }
            return String(cString: resolved)
        }
        return path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }

    /// `count` bytes at `offset` of the file at `path`, if it is still the file with this
    /// device and inode (the sinks are opened write-only, so this opens it again to read).
    static func read(path: String, device: UInt64, inode: UInt64, offset: Int64, count: Int) -> [UInt8]? {
        guard count > 0 else { return [] }
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, UInt64(st.st_dev) == device, UInt64(st.st_ino) == inode else { return nil }
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return nil }
            done += n
        }
        return out
    }
}
