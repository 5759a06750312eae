/// One line of a dead-letter file, as the recovery commands read it back (`DeadLetter` writes it).
///
/// Only what the summary needs is decoded; `document` keeps the whole record for `show`.
public struct DeadLetterRecord: Sendable {
    /// `error.stage`: the stage that rejected the item.
    public let stage: String
    /// `error.reason`: the snake_case code from `Reason`.
    public let reason: String
    /// The error's message; empty when the record has none.
    public let message: String
    /// `at` as written (UTC, ISO 8601), and as seconds since the epoch when it parses.
    public let at: String?
    /// `at` in seconds since 1970, when it parses.
    public let atTime: Double?
    /// Where the item was read from, when the record says.
    public let sourceFile: String?
    /// The line the item was read at, when the record says.
    public let sourceLine: Int?
    /// The stage a replay re-enters the pipeline at (`resume.stage`); nil when it replays from
    /// the start (the delivery or raw line goes through parse again).
    public let resumeStage: String?
    /// `resume.kind`, the resumed stage's kind, when given.
    public let resumeKind: String?
    /// The record's whole JSON.
    public let document: JSONDocument

    /// Why a line is not a dead-letter record.
    public struct Unreadable: Error, Sendable, CustomStringConvertible {
        /// What is wrong with the line, in one line.
        public let description: String
    }

    /// Reads one line; a line that is not JSON, not an object, or has no `error` object with a
    /// string `stage` and `reason` is `Unreadable` (never a crash: the file may have been edited).
    public static func read(_ line: ArraySlice<UInt8>) throws(Unreadable) -> DeadLetterRecord {
        let document: JSONDocument
        do {
            document = try JSONDocument(parsing: line)
        } catch {
            throw Unreadable(description: "not JSON (\(error))")
        }
        let root = document.root
        guard root.kind == .object else { throw Unreadable(description: "not a JSON object") }
        guard let error = root.member("error"), error.kind == .object,
            let stage = error.member("stage")?.string, let reason = error.member("reason")?.string
        else {
            throw Unreadable(description: #"no "error" object with a "stage" and a "reason""#)
        }
        let at = root.member("at")?.string
        let source = root.member("source")
        let resume = root.member("resume")
        return DeadLetterRecord(
            stage: stage, reason: reason, message: error.member("message")?.string ?? "",
            at: at, atTime: at.flatMap { Timestamp.parse($0) },
            sourceFile: source?.member("file")?.string, sourceLine: source?.member("line")?.double.flatMap { Int(exactly: $0) },
            resumeStage: resume?.member("stage")?.string, resumeKind: resume?.member("kind")?.string,
            document: document)
    }

    /// Whether a replay re-enters the pipeline at a later stage rather than at the start.
    public var resumes: Bool { resumeStage != nil }

    /// The first line of the message, at most `limit` characters: for tables and summaries.
    public func messageLine(_ limit: Int) -> String {
        let first = message.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" }).first ?? ""
        return String(first).cutForMessage(limit)
    }
}

extension DeadLetterRecord {
    /// What line `number` of a dead-letter file holds.
    public enum Lookup: Sendable {
        case record(DeadLetterRecord)
        /// The line exists but is not a record (blank, too long, not JSON, no `error`).
        case unreadable(String)
        /// The file has fewer lines: how many it has.
        case beyondEnd(lines: Int)
    }

    /// Reads `path` up to line `number` (1-based, blank lines counted) and no further; a number
    /// under 1 is past the end without reading.
    public static func lookUp(
        line number: Int, in path: String,
        maxLineBytes: Int = NDJSONLines.defaultMaxLineBytes
    ) throws -> Lookup {
        var found: Lookup?
        var lines = 0
        guard number >= 1 else { return .beyondEnd(lines: 0) }
        try NDJSONLines.forEach(path: path, maxLineBytes: maxLineBytes) { n, line in
            lines = n
            guard n == number else { return n < number }
            switch line {
            case .tooLong(let length):
                found = .unreadable("longer than \(maxLineBytes) bytes (\(length))")
            case .bytes(let bytes):
                if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) {
                    found = .unreadable("a blank line")
                } else {
                    do throws(Unreadable) { found = .record(try read(bytes)) } catch { found = .unreadable(error.description) }
                }
            }
            return false
        }
        return found ?? .beyondEnd(lines: lines)
    }
}
