#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads a file line by line in fixed-size blocks, for the commands that look into dead-letter
/// files: memory stays within one block plus one line, whatever the file's size.
///
/// Lines are numbered from 1 as an editor numbers them (blank ones included). A trailing CR is
/// dropped, and a UTF-8 byte-order mark before the first line; a last line without a newline is
/// still a line. A line longer than `maxLineBytes` is not buffered: it comes as `.tooLong` with
/// its length, and reading goes on after it.
public enum NDJSONLines {
    /// The longest line read by default; a longer one comes as `.tooLong`.
    public static let defaultMaxLineBytes = 16 << 20
    static let blockSize = 1 << 20

    /// One line as handed to the caller.
    public enum Line {
        /// The line's bytes, without its terminator; valid only during the call.
        case bytes(ArraySlice<UInt8>)
        /// A line over the limit, and its length in bytes (terminator excluded).
        case tooLong(Int)
    }

    /// Calls `body` with each line and its number until it returns false or the file ends.
    public static func forEach(
        path: String, maxLineBytes: Int = defaultMaxLineBytes,
        _ body: (_ number: Int, _ line: Line) throws -> Bool
    ) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw RecoveryFileError(path: path, message: "cannot read: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        try forEach(descriptor: fd, path: path, maxLineBytes: maxLineBytes, readSize: blockSize, body)
    }

    /// The loop itself, on an open descriptor; `readSize` is small in tests so that block ends
    /// fall everywhere.
    static func forEach(
        descriptor fd: Int32, path: String, maxLineBytes: Int, readSize: Int,
        _ body: (_ number: Int, _ line: Line) throws -> Bool
    ) throws {
        var block = [UInt8](repeating: 0, count: readSize)
        // The start of a line that crossed a block's end (at most `maxLineBytes`).
        var carried: [UInt8] = []
        // Bytes of an over-long line seen so far; its rest is skipped up to the newline.
        var overLength: Int?
        var number = 0

        func emit(_ piece: ArraySlice<UInt8>) throws -> Bool {
            number += 1
            if let length = overLength {
                overLength = nil
                return try body(number, .tooLong(length + piece.count))
            }
            var line = piece
            if !carried.isEmpty {
                if carried.count + piece.count > maxLineBytes {
                    let length = carried.count + piece.count
                    carried.removeAll(keepingCapacity: false)
                    return try body(number, .tooLong(length))
                }
                carried.append(contentsOf: piece)
                line = carried[...]
            } else if piece.count > maxLineBytes {
                return try body(number, .tooLong(piece.count))
            }
            if line.last == 0x0D { line = line.dropLast() }
            // A UTF-8 byte-order mark before the first line is the file's, not the line's, as
            // `lymph run` and `lymph replay` read it (`ItemReader`).
            if number == 1, line.starts(with: SourceReader.byteOrderMark) { line = line.dropFirst(SourceReader.byteOrderMark.count) }
            let more = try body(number, .bytes(line))
            carried.removeAll(keepingCapacity: carried.count <= readSize)
            return more
        }

        while true {
            let n = block.withUnsafeMutableBytes { read(fd, $0.baseAddress, readSize) }
            if n < 0 {
                if errno == EINTR { continue }
                throw RecoveryFileError(path: path, message: "read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            var start = 0
            while start < n {
                guard let newline = block[start..<n].firstIndex(of: 0x0A) else {
                    // The line goes on in the next block: keep it, or only count it once too long.
                    let rest = block[start..<n]
                    if let length = overLength {
                        overLength = length + rest.count
                    } else if carried.count + rest.count > maxLineBytes {
                        overLength = carried.count + rest.count
                        carried.removeAll(keepingCapacity: false)
                    } else {
                        carried.append(contentsOf: rest)
                    }
                    break
                }
                guard try emit(block[start..<newline]) else { return }
                start = newline + 1
            }
        }
        if overLength != nil || !carried.isEmpty {
            _ = try emit(block[0..<0])
        }
    }
}

/// A file the recovery commands read cannot be read (it is missing, or reading failed).
public struct RecoveryFileError: Error, Sendable, CustomStringConvertible {
    /// The file's path, as given.
    public let path: String
    /// What went wrong, such as the system's reason.
    public let message: String
    /// `'PATH': message`.
    public var description: String { "'\(path)': \(message)" }
}
