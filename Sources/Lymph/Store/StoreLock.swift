import Foundation

/// One state file (and its spool) belongs to one process at a time: two servers draining one
/// spool process entries twice. Held as an exclusive `flock` on `<state>.lock` for the life of
/// the process (the kernel drops it when the process dies, `kill -9` included); the holder
/// writes its pid there for the message a second process prints. Readers (`lymph tickets`,
/// `lymph sensors`) take no lock: SQLite's WAL lets them read while the owner writes.
public final class StoreLock: Sendable {
    /// The lock file's path, `<state>.lock`.
    public let path: String
    private let fd: Int32

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    deinit { if fd >= 0 { close(fd) } }

    /// `<state>.lock` beside the store's real path, so every spelling of the path (relative,
    /// absolute, through a symlink) takes the same lock.
    public static func lockPath(forState state: String) -> String { resolved(state) + ".lock" }

    /// The path with its folder's symlinks resolved (the file itself may not exist yet).
    static func resolved(_ path: String) -> String {
        if let real = realpath(path, nil) {
            defer { free(real) }
            return String(cString: real)
        }
        let parent = PathParent.of(path)
        guard let real = realpath(parent.isEmpty ? "." : parent, nil) else { return path }
        defer { free(real) }
        return (String(cString: real) as NSString).appendingPathComponent((path as NSString).lastPathComponent)
    }

    /// Takes the lock of the store at `state` at once, or throws naming the holder's pid.
    public static func acquire(forState state: String) throws(StoreLockError) -> StoreLock {
        // A store in memory is its process's own: there is nothing to share, and a lock file
        // named `:memory:.lock` in the working folder would make a second such store in the
        // process (or another process's in that folder) be refused as in use.
        if state == ":memory:" { return StoreLock(path: state, fd: -1) }
        let parent = PathParent.of(state)
        if !parent.isEmpty { try? FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) }
        // A second name for the database (a hard link) would get its own lock and its own
        // journal: SQLite names the journal after the path, so two writers could corrupt it.
        var st = stat()
        if stat(state, &st) == 0, st.st_mode & S_IFMT == S_IFDIR {
            throw StoreLockError(state: state, message: "is a folder; state names the SQLite file to keep it in (for example '.lymph/NAME.sqlite')")
        }
        if stat(state, &st) == 0, st.st_nlink > 1 {
            throw StoreLockError(
                state: state,
                message: "has \(st.st_nlink) hard links; a SQLite store needs exactly one name (its journal is named after it): remove the other links")
        }
        let path = lockPath(forState: state)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw StoreLockError(state: state, message: "cannot open its lock file '\(path)': \(String(cString: strerror(errno)))")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let reason = errno
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = pread(fd, &buffer, buffer.count, 0)
            close(fd)
            guard reason == EWOULDBLOCK else {
                throw StoreLockError(state: state, message: "cannot lock '\(path)': \(String(cString: strerror(reason)))")
            }
            let holder = n > 0 ? Int(String(decoding: buffer[..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) : nil
            throw StoreLockError(
                state: state,
                message:
                    "is in use by another lymph process\(holder.map { " (pid \($0))" } ?? ""); one state file belongs to one process at a time (read-only commands such as 'lymph tickets' still work)"
            )
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, pid, pid.count, 0)
        return StoreLock(path: path, fd: fd)
    }
}

/// The store is held by another process, or its lock cannot be taken: nothing was done (exit 2).
public struct StoreLockError: Error, Sendable, CustomStringConvertible {
    /// The state file's path, as given.
    public let state: String
    /// Why the lock could not be taken, after the path: held by another process (its pid when
    /// known), a hard-linked store, or a system error.
    public let message: String
    /// `state 'PATH' message`.
    public var description: String { "state '\(state)' \(message)" }
}
