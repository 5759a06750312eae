import Foundation

/// Writes to stderr: stdout carries only events.
///
/// With write(2), not `FileHandle`, whose `write` stops the process on a failed write: a
/// stderr that is closed, a full disk or a reader gone (`2>&1 | head`) must not crash lymph in
/// the middle of a run. What cannot be written to stderr is not said anywhere else.
enum Console {
    static func error(_ line: String) {
        _ = write(line + "\n", to: 2)
    }

    /// `text` as it is (a progress line rewrites itself with `\r`).
    static func errorText(_ text: String) {
        _ = write(text, to: 2)
    }

    /// Writes all of `text` to `fd`, retrying when interrupted; the errno of a failed write, or 0.
    static func write(_ text: String, to fd: Int32) -> Int32 {
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBytes { buffer -> Int32 in
            var offset = 0
            while offset < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += n
            }
            return 0
        }
    }
}
