import Foundation

/// What a dead-letter file holds, grouped by the stage and reason that rejected each record,
/// for `lymph dead-letters`.
///
/// Read in one streaming pass (`NDJSONLines`): memory grows with the number of groups, not with
/// the file. Header values never reach the summary (only the error's stage, reason, message and
/// time do; Lymph's messages hold no secret or signature).
public struct DeadLetterSummary: Sendable {
    /// The records rejected by one stage for one reason.
    public struct Group: Sendable {
        /// The stage that rejected them.
        public let stage: String
        /// Why, the snake_case code from `Reason`.
        public let reason: String
        /// How many records the group has.
        public internal(set) var count = 0
        /// Records that a replay resumes at a later stage (`resume`); the others replay from
        /// the start.
        public internal(set) var resumes = 0
        /// The earliest `at` (as written), among the records whose `at` parses.
        public internal(set) var oldest: String?
        /// The latest `at` (as written), among the records whose `at` parses.
        public internal(set) var newest: String?
        var oldestTime = Double.infinity
        var newestTime = -Double.infinity
        /// The message of the group's first record: its first line, cut to `exampleLimit`.
        public internal(set) var example = ""
        /// Line number of the group's first record (for `lymph dead-letters show`).
        public internal(set) var firstLine = 0

        /// Records that replay from the start (the delivery or raw line goes through parse again).
        public var fromStart: Int { count - resumes }
    }

    /// The file read.
    public let file: String
    /// False when the file does not exist (then everything is empty).
    public let exists: Bool
    /// Groups ordered by stage (in `stageOrder`, then as stages first appear in the file), then
    /// by count, largest first (ties in order of first appearance).
    public let groups: [Group]
    /// Lines that are not dead-letter records, and why (the first `maxUnreadableListed`).
    public let unreadable: [(line: Int, why: String)]
    /// How many lines are not dead-letter records, listed or not.
    public let unreadableCount: Int
    /// Blank lines (skipped, as replay skips them).
    public let blankLines: Int

    /// Dead-letter records read, every group together.
    public var records: Int { groups.reduce(0) { $0 + $1.count } }
    /// Records that a replay resumes at a later stage, every group together.
    public var resumes: Int { groups.reduce(0) { $0 + $1.resumes } }

    /// How many unreadable lines `unreadable` lists at most.
    public static let maxUnreadableListed = 100
    /// Length of a group's example message.
    public static let exampleLimit = 200

    /// Reads `path`. `stageOrder` (the pipeline's stage names, parse first) orders the groups;
    /// stages it does not name follow in order of first appearance. A missing file is a summary
    /// with `exists == false`; a file that cannot be read throws.
    public static func read(
        path: String, stageOrder: [String] = [],
        maxLineBytes: Int = NDJSONLines.defaultMaxLineBytes
    ) throws -> DeadLetterSummary {
        var st = stat()
        if stat(path, &st) != 0, errno == ENOENT {
            return DeadLetterSummary(file: path, exists: false, groups: [], unreadable: [], unreadableCount: 0, blankLines: 0)
        }
        var groups: [Group] = []
        var index: [GroupKey: Int] = [:]
        var unreadable: [(line: Int, why: String)] = []
        var unreadableCount = 0
        var blank = 0
        func unreadableLine(_ number: Int, _ why: String) {
            unreadableCount += 1
            if unreadable.count < maxUnreadableListed { unreadable.append((number, why)) }
        }
        try NDJSONLines.forEach(path: path, maxLineBytes: maxLineBytes) { number, line in
            switch line {
            case .tooLong(let length):
                unreadableLine(number, "longer than \(maxLineBytes) bytes (\(length))")
            case .bytes(let bytes):
                if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) {
                    blank += 1
                    return true
                }
                do throws(DeadLetterRecord.Unreadable) {
                    let record = try DeadLetterRecord.read(bytes)
                    let key = GroupKey(stage: record.stage, reason: record.reason)
                    let i: Int
                    if let found = index[key] {
                        i = found
                    } else {
                        i = groups.count
                        index[key] = i
                        var group = Group(stage: record.stage, reason: record.reason)
                        group.example = record.messageLine(exampleLimit)
                        group.firstLine = number
                        groups.append(group)
                    }
                    groups[i].add(record)
                } catch {
                    unreadableLine(number, error.description)
                }
            }
            return true
        }
        return DeadLetterSummary(
            file: path, exists: true, groups: ordered(groups, stageOrder: stageOrder), unreadable: unreadable,
            unreadableCount: unreadableCount, blankLines: blank)
    }

    struct GroupKey: Hashable {
        let stage: String
        let reason: String
    }

    /// Stages in the pipeline's order, unknown ones after them as first seen; within a stage,
    /// the largest group first.
    static func ordered(_ groups: [Group], stageOrder: [String]) -> [Group] {
        var rank: [String: Int] = [:]
        for name in stageOrder where rank[name] == nil { rank[name] = rank.count }
        for g in groups where rank[g.stage] == nil { rank[g.stage] = rank.count }
        return groups.enumerated().sorted { a, b in
            let ra = rank[a.element.stage]!, rb = rank[b.element.stage]!
            if ra != rb { return ra < rb }
            if a.element.count != b.element.count { return a.element.count > b.element.count }
            return a.offset < b.offset
        }.map(\.element)
    }

    /// The summary as one JSON object: `file`, `exists`, `records`, `resumes`, `from_start`,
    /// `groups` (each `stage`, `reason`, `count`, `resumes`, `from_start`, `oldest`, `newest`,
    /// `example`, `first_line`), `unreadable` (`count`, `lines`: the first 100 as `line`, `why`),
    /// `blank_lines`. `extra` members are added at the top level.
    public func json(extra: [String: Any] = [:]) -> String {
        var object: [String: Any] = [
            "file": file, "exists": exists, "records": records, "resumes": resumes, "from_start": records - resumes,
            "groups": groups.map { g -> [String: Any] in
                [
                    "stage": g.stage, "reason": g.reason, "count": g.count, "resumes": g.resumes, "from_start": g.fromStart,
                    "oldest": g.oldest ?? NSNull(), "newest": g.newest ?? NSNull(), "example": g.example, "first_line": g.firstLine,
                ]
            },
            "unreadable": ["count": unreadableCount, "lines": unreadable.map { ["line": $0.line, "why": $0.why] as [String: Any] }] as [String: Any],
            "blank_lines": blankLines,
        ]
        for (k, v) in extra { object[k] = v }
        return ReportJSON.string(object)
    }
}

extension DeadLetterSummary.Group {
    init(stage: String, reason: String) {
        self.stage = stage
        self.reason = reason
    }

    mutating func add(_ record: DeadLetterRecord) {
        count += 1
        if record.resumes { resumes += 1 }
        if let t = record.atTime {
            if t < oldestTime { oldestTime = t; oldest = record.at }
            if t > newestTime { newestTime = t; newest = record.at }
        }
    }
}
