import Foundation

/// What a run did, stage by stage.
public struct RunSummary: Sendable {
    /// One stage's counts over the run.
    public struct StageLine: Sendable {
        /// The stage's name.
        public let name: String
        /// The stage's kind (`parse`, `dedup`, ...).
        public let kind: String
        /// What the stage received, emitted, dropped and dead-lettered.
        public let stats: StageStats
        /// Seconds spent in the stage, summed over its batches: for parse and the stages that
        /// run on several batches at once, time on several cores at once; for the others, time
        /// on the ordered path, which every batch passes one at a time.
        public let seconds: Double
    }

    /// The pipeline's name.
    public let pipeline: String
    /// Items read from the inputs.
    public var itemsRead = 0
    /// Events that left the last stage (written to the output, unless it is `none`).
    public var passed = 0
    /// Items that went to the dead letters.
    public var deadLetters = 0
    /// Seconds the run took.
    public var seconds = 0.0
    /// Set when a signal stopped reading early.
    public var interruptedBy: Int32 = 0
    /// The stop cut plugin work short (`ExecStage.stopGrace`): those events are dead letters.
    public var workCutShort = false
    /// Every stage, parse first, in pipeline order.
    public var stages: [StageLine] = []
    /// Seconds per stage, parse first, summed as batches finish (into `stages` at the end).
    var stageSeconds: [Double] = []
    /// Items not read again because an interrupted run over the same files had done them.
    public var skippedDone = 0

    /// Events dropped as duplicates: by dedup stages, and replayed records whose key another
    /// event committed since (dropped before they resume, counted at parse).
    public var duplicates: Int {
        stages.filter { $0.kind == "dedup" || $0.kind == "parse" }.reduce(0) { $0 + ($1.stats.dropped[Reason.duplicate.rawValue] ?? 0) }
    }

    /// Events dropped by filter stages.
    public var filtered: Int {
        stages.filter { $0.kind == "filter" }.reduce(0) { $0 + $1.stats.droppedTotal }
    }

    /// Events dropped by any stage, for any reason.
    public var dropped: Int { stages.reduce(0) { $0 + $1.stats.droppedTotal } }

    /// Items read per second over the run; 0 for a run that took no time.
    public var eventsPerSecond: Double { seconds > 0 ? Double(itemsRead) / seconds : 0 }

    /// The summary as one JSON object (`--summary json`), keys sorted.
    public func json() -> String {
        var stageObjects: [[String: Any]] = []
        for s in stages {
            stageObjects.append([
                "name": s.name, "kind": s.kind, "in": s.stats.received, "out": s.stats.emitted,
                "skipped": s.stats.skipped, "resumed_past": s.stats.resumedPast, "dropped": s.stats.dropped, "dead_letters": s.stats.deadLetters,
                "seconds": (s.seconds * 1000).rounded() / 1000,
            ])
        }
        let object: [String: Any] = [
            "pipeline": pipeline, "events_read": itemsRead, "passed": passed, "duplicates": duplicates,
            "filtered": filtered, "dropped": dropped, "dead_letters": deadLetters,
            "seconds": (seconds * 1000).rounded() / 1000, "events_per_second": eventsPerSecond.rounded(),
            "interrupted": interruptedBy != 0, "skipped_done": skippedDone, "stages": stageObjects,
        ]
        return ReportJSON.string(object)
    }

    /// The summary for people: a headline, then a table of stages with their drop reasons.
    public func text() -> String {
        var lines: [String] = []
        let head = "\(pipeline): \(itemsRead) read, \(passed) passed, \(duplicates) duplicates, \(filtered) filtered, \(deadLetters) dead letters"
        lines.append(head + String(format: " in %.3fs (%.0f events/s)", seconds, eventsPerSecond))
        if interruptedBy != 0 && workCutShort {
            lines.append(
                "stopped early by signal \(interruptedBy): plugins and requests still working \(DedupSpec.describe(ExecStage.stopGrace)) after it were stopped, their events dead letters (plugin_cancelled; http_unavailable for an http stage) for lymph replay; any input left was not read"
            )
        } else if interruptedBy != 0 {
            lines.append("stopped early by signal \(interruptedBy): the rest of the input was not read")
        }
        if skippedDone > 0 { lines.append("continued an interrupted run: \(skippedDone) items done before it were skipped") }
        let width = max(8, stages.map(\.name.count).max() ?? 8)
        lines.append("  " + "stage".padding(toLength: width, withPad: " ", startingAt: 0) + "        in       out   dropped   dead")
        for s in stages {
            let name = s.name.padding(toLength: width, withPad: " ", startingAt: 0)
            var line =
                "  \(name) "
                + [s.stats.received, s.stats.emitted, s.stats.droppedTotal, s.stats.deadLetters]
                .map { String($0).leftPadded(9) }.joined(separator: " ")
            let reasons = s.stats.dropped.sorted { $0.value > $1.value }.map { "\($0.key): \($0.value)" }
            if !reasons.isEmpty { line += "   (" + reasons.joined(separator: ", ") + ")" }
            if s.stats.skipped > 0 { line += "   skipped by when: \(s.stats.skipped)" }
            if s.stats.resumedPast > 0 { line += "   replayed past: \(s.stats.resumedPast)" }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
