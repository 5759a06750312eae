import Glibc

/// Reads a small file whole, with a limit on its size and on the wait: a FIFO no one writes
/// to, a terminal, or a device that never ends must not hold lymph at start.
///
/// Opened without blocking (opening a FIFO for reading would wait for a writer), then read as
/// each part becomes readable, until the end, `maxBytes + 1` bytes (too large) or `timeout`.
struct SmallFileRead {
    enum Failure: Error, Equatable {
        case cannotOpen(Int32)
        case folder
        case tooLarge
        case timedOut
        case readFailed(Int32)
    }

    let maxBytes: Int
    let timeout: Duration

    func read(_ path: String) throws(Failure) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 { throw .cannotOpen(errno) }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR { throw .folder }
        let deadline = ContinuousClock.now + timeout
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let left = deadline - ContinuousClock.now
            if left <= .zero { throw .timedOut }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let millis = Int32(clamping: max(1, left.components.seconds * 1_000 + left.components.attoseconds / 1_000_000_000_000_000))
            let ready = poll(&pfd, 1, millis)
            if ready < 0 && errno != EINTR { throw .readFailed(errno) }
            if ready <= 0 { continue }
            let want = min(chunk.count, maxBytes + 1 - bytes.count)
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, want) }
            if n < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                throw .readFailed(errno)
            }
            if n == 0 { return bytes }
            bytes += chunk[..<n]
            if bytes.count > maxBytes { throw .tooLarge }
        }
    }
}
