#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif
import Foundation
import Synchronization

/// An append-only byte destination: a file, stdout or stderr.
///
/// Callers hand over whole batches, so each `write` is a single write(2) loop with no buffering
/// here; data is with the kernel when `write` returns, and on disk after `sync()`.
public final class FileSink: Sendable {
    /// The path as named in the pipeline, or `stdout` / `stderr`.
    public let path: String
    let fd: Int32
    let ownsDescriptor: Bool
    /// With one, a write that finds the disk full waits for space and goes on from where it
    /// stopped (no torn or doubled line); without, it fails.
    let diskFull: DiskFullWait?
    private let closed = Mutex(false)
    /// What went through `write`, for `OutputLedger`'s commit-time check.
    let progress = Mutex(WriteProgress())
    /// Set for a sink that keeps what it is given in memory instead (`lymph test`), with its limit.
    private let memory: CaptureBuffer?

    /// What a capturing sink keeps, and its limit.
    private final class CaptureBuffer: Sendable {
        let bytes = Mutex<[UInt8]>([])
        let limit: Int
        init(limit: Int) { self.limit = limit }
    }

    init(path: String, fd: Int32, ownsDescriptor: Bool, diskFull: DiskFullWait? = nil) {
        self.path = path
        self.fd = fd
        self.ownsDescriptor = ownsDescriptor
        self.diskFull = diskFull
        self.memory = nil
    }

    private init(capturing path: String, limit: Int) {
        self.path = path
        self.fd = -1
        self.ownsDescriptor = false
        self.diskFull = nil
        self.memory = CaptureBuffer(limit: limit)
    }

    /// A sink that writes nothing anywhere: it keeps the bytes in memory (`captured`), and a write
    /// that would take it past `limit` bytes fails as a full file would.
    public static func capturing(path: String, limit: Int) -> FileSink {
        FileSink(capturing: path, limit: limit)
    }

    /// What a capturing sink was given, in order; empty for any other sink.
    public var captured: [UInt8] { memory?.bytes.withLock { $0 } ?? [] }

    /// Standard output, never closed.
    public static let standardOutput = FileSink(path: "stdout", fd: 1, ownsDescriptor: false)
    /// Standard error, never closed.
    public static let standardError = FileSink(path: "stderr", fd: 2, ownsDescriptor: false)

    /// Opens `path` for appending (never truncating), creating it and its parent folders.
    public static func append(path: String, diskFull: DiskFullWait? = nil) throws(OutputError) -> FileSink {
        let parent = PathParent.of(path)
        if !parent.isEmpty {
            do {
                try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
            } catch {
                throw OutputError(path: path, message: "cannot create folder '\(parent)': \(error.localizedDescription)")
            }
        }
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw OutputError(path: path, message: "cannot open for appending: \(String(cString: strerror(errno)))") }
        // A shared lock for as long as it is open: other writers may share the file, but a
        // replay must not move it aside while anyone appends (`OwnOutputGuard.moveAside`), or
        // what is appended after the move lands in the moved file, which the replay then deletes.
        _ = flock(fd, LOCK_SH | LOCK_NB)
        return FileSink(path: path, fd: fd, ownsDescriptor: true, diskFull: diskFull)
    }

    /// Writes all of `bytes` in one write(2) loop (retrying on EINTR); throws on the first error,
    /// or on a full disk unless the sink waits one out.
    public func write(_ bytes: [UInt8]) throws(OutputError) {
        guard !bytes.isEmpty else { return }
        if let memory {
            let fits = memory.bytes.withLock { kept in
                guard kept.count + bytes.count <= memory.limit else { return false }
                kept.append(contentsOf: bytes)
                return true
            }
            if !fits { throw OutputError(path: path, message: "more than \(memory.limit) bytes written in a test") }
            return
        }
        let diskFull = self.diskFull, path = self.path
        var waited = 0
        let (result, written): (Int32, Int) = bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 {
                    let code = errno
                    if code == EINTR { continue }
                    if DiskFullWait.isNoSpace(code), let diskFull,
                        diskFull.pause("output '\(path)': \(String(cString: strerror(code))); waiting for space", attempt: waited)
                    {
                        waited += 1
                        continue
                    }
                    return (code, offset)
                }
                offset += n
            }
            return (0, offset)
        }
        progress.withLock { $0.record(bytes[..<written]) }
        if waited > 0 && result == 0 { diskFull?.cleared() }
        if result != 0 {
            let reason = result == EPIPE ? "the reader closed it (broken pipe)" : String(cString: strerror(result))
            throw OutputError(path: path, message: "cannot write: \(reason)")
        }
    }

    /// Forces written data to disk (no-op for terminals and pipes).
    public func sync() throws(OutputError) {
        if memory != nil { return }
        if fsync(fd) != 0 && errno != EINVAL && errno != EROFS {
            throw OutputError(path: path, message: "cannot sync to disk: \(String(cString: strerror(errno)))")
        }
    }

    /// Closes the file once (later calls do nothing); standard output and standard error stay open.
    public func close() {
        let wasClosed = closed.withLock { c in
            defer { c = true }
            return c
        }
        if ownsDescriptor && !wasClosed { _ = Glibc.close(fd) }
    }

    deinit { close() }
}

/// The bytes a sink has written since it was opened, and the last of them: with no other
/// writer, a file ends with `tail`'s last `trustedTail` bytes.
struct WriteProgress: Sendable {
    static let tailLimit = 64
    var total = 0
    var tail: [UInt8] = []
    /// How many of `tail`'s last bytes are known to be the file's last bytes.
    var trustedTail = 0

    mutating func record(_ bytes: ArraySlice<UInt8>) {
        guard !bytes.isEmpty else { return }
        total += bytes.count
        if bytes.count >= Self.tailLimit {
            tail = Array(bytes.suffix(Self.tailLimit))
        } else {
            tail.append(contentsOf: bytes)
            if tail.count > Self.tailLimit { tail.removeFirst(tail.count - Self.tailLimit) }
        }
        trustedTail = min(tail.count, trustedTail + bytes.count)
    }

    /// The file's last bytes, read at start: what follows is appended to them.
    mutating func seed(_ bytes: [UInt8]) {
        tail = Array(bytes.suffix(Self.tailLimit))
        trustedTail = tail.count
    }

    /// The bytes the fingerprint covers: the trusted end of `tail`.
    var trustedBytes: ArraySlice<UInt8> { tail.suffix(trustedTail) }
}

/// An output that cannot be written: the run cannot continue (exit 3).
public struct OutputError: Error, Sendable, CustomStringConvertible {
    /// The path that cannot be written, as named in the pipeline.
    public let path: String
    /// What went wrong, such as the system's reason.
    public let message: String
    /// `output 'PATH': message`.
    public var description: String { "output '\(path)': \(message)" }
}
