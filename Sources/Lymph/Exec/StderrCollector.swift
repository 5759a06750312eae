import Foundation
import Logging
import Subprocess
import Synchronization

/// Takes a plugin's stderr: each line goes to Lymph's log tagged with the stage (and event, in
/// event mode), and the last few lines are kept for the dead letter of a failed event.
///
/// stderr is never a failure signal. It is bounded: lines are cut at `maxLineBytes`, and past
/// `maxLoggedBytes` per process the rest is read and discarded (one note says so).
final class StderrCollector: Sendable {
    static let maxLineBytes = 2048
    static let maxLoggedBytes = 256 * 1024
    static let tailLines = 5

    struct State {
        var partial: [UInt8] = []
        var tail: [String] = []
        var logged = 0
        var truncatedNoted = false
    }

    let logger: Logger
    /// Values of the stage's `env:` references: a plugin that prints one does not get it logged.
    let redact: Redactor
    /// Bytes kept of a line while reading: the cut comes after redaction, so a secret that
    /// straddles the limit is still found whole.
    let keepBytes: Int
    let state = Mutex(State())

    init(logger: Logger, redact: Redactor) {
        self.logger = logger
        self.redact = redact
        self.keepBytes = Self.maxLineBytes + redact.longest
    }

    func append(_ chunk: UnsafeRawBufferPointer) {
        var lines: [String] = []
        state.withLock { s in
            var start = 0
            for i in 0..<chunk.count where chunk[i] == 0x0A {
                s.partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[start..<i]).prefix(max(0, keepBytes - s.partial.count)))
                lines.append(Self.text(s.partial))
                s.partial.removeAll(keepingCapacity: true)
                start = i + 1
            }
            if start < chunk.count, s.partial.count < keepBytes {
                s.partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[start...]).prefix(keepBytes - s.partial.count))
            }
            lines = record(lines, &s)
        }
        for line in lines { logger.info("plugin stderr: \(line)") }
    }

    /// Reads a process's stderr to its end (or until the process is gone), then takes the
    /// unfinished last line.
    func drain(_ sequence: SubprocessOutputSequence) async {
        do {
            for try await buffer in sequence { buffer.withUnsafeBytes { append($0) } }
        } catch {
            // The process ended while a grandchild still held the pipe: what was read stands.
        }
        finish()
    }

    /// The unfinished last line, once the stream has ended.
    func finish() {
        var lines: [String] = []
        state.withLock { s in
            if !s.partial.isEmpty { lines = record([Self.text(s.partial)], &s); s.partial = [] }
        }
        for line in lines { logger.info("plugin stderr: \(line)") }
    }

    /// Keeps the tail and returns the lines that may still be logged.
    private func record(_ lines: [String], _ s: inout State) -> [String] {
        guard !lines.isEmpty else { return [] }
        let lines = lines.map { Self.cut(redact($0)) }
        s.tail.append(contentsOf: lines.suffix(Self.tailLines))
        if s.tail.count > Self.tailLines { s.tail.removeFirst(s.tail.count - Self.tailLines) }
        var out: [String] = []
        for line in lines {
            if s.logged + line.utf8.count > Self.maxLoggedBytes {
                if !s.truncatedNoted {
                    s.truncatedNoted = true
                    out.append("[more than \(Self.maxLoggedBytes) bytes on stderr; the rest is not logged]")
                }
                continue
            }
            s.logged += line.utf8.count
            out.append(line)
        }
        return out
    }

    /// The last lines, for a dead letter: `; stderr: "a" | "b"`, or "" when there were none.
    var tailDescription: String {
        let tail = state.withLock { $0.tail }
        guard !tail.isEmpty else { return "" }
        return "; stderr: " + tail.map { "\"\($0)\"" }.joined(separator: " | ")
    }

    /// A line cut to `maxLineBytes` (on a character boundary), marked when cut.
    static func cut(_ line: String) -> String {
        guard line.utf8.count > maxLineBytes else { return line }
        var out = ""
        for c in line {
            if out.utf8.count + c.utf8.count > maxLineBytes { break }
            out.append(c)
        }
        return out + "…"
    }

    static func text(_ bytes: [UInt8]) -> String {
        var t = String(decoding: bytes, as: UTF8.self)
        if t.hasSuffix("\r") { t.removeLast() }
        return t
    }
}
