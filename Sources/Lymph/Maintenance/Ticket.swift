import Crypto
import Foundation

/// A maintenance job: at most one open ticket per (equipment, action).
public struct Ticket: Sendable, Equatable {
    /// A ticket is open until `lymph tickets` closes it as done or cancelled.
    public enum Status: String, Sendable, CaseIterable { case open, done, cancelled }

    /// How urgent the job is, from `low` to `critical`; merging keeps the higher one.
    public enum Priority: Int, Sendable, Comparable, CaseIterable, CustomStringConvertible {
        case low, medium, high, critical
        /// Orders by urgency: `low` before `critical`.
        public static func < (a: Priority, b: Priority) -> Bool { a.rawValue < b.rawValue }
        /// `low`, `medium`, `high` or `critical`.
        public var description: String { ["low", "medium", "high", "critical"][rawValue] }
        /// The priority named `name` (`low`, `medium`, `high`, `critical`), or nil.
        public init?(name: String) {
            guard let p = Priority.allCases.first(where: { $0.description == name }) else { return nil }
            self = p
        }
    }

    /// `mt_` and 16 hex digits, stable across replays (see `makeID`).
    public var ticketID: String
    /// The equipment the job is for.
    public var equipmentID: String
    /// What to do, such as a prediction's recommended action or `Inspect sensor S-1`.
    public var action: String
    /// The highest priority any of its requests asked for.
    public var priority: Priority
    /// Seconds since the epoch.
    public var dueBy: Double
    /// Open, done or cancelled.
    public var status: Status
    /// The events that opened the ticket or merged into it, in the order they were applied.
    public var sourceEventIDs: [String]
    /// How many source events the ticket has, when `sourceEventIDs` lists only the latest of
    /// them (a change a pipeline stage reports); nil when it lists them all.
    public var sourceEventCount: Int? = nil
    /// When the ticket was opened (the time of the request that opened it), in seconds since 1970.
    public var createdAt: Double
    /// When it last changed, in seconds since 1970.
    public var updatedAt: Double
    /// The note given when it was closed, if any.
    public var note: String?

    /// `mt_` and 16 hex digits of SHA-256 over equipment, action and the event that opened it:
    /// the same on every replay, and different for a later ticket for the same job.
    static func makeID(equipment: String, action: String, openedBy eventID: String) -> String {
        let digest = SHA256.hash(data: Array("\(equipment)\u{0}\(action)\u{0}\(eventID)".utf8))
        return "mt_" + Hex.string(digest.prefix(8))
    }

    /// The ticket as a JSON object (the `data` of `maintenance.scheduled`, and `lymph tickets --format json`).
    /// With `listing`, a list of more source events than that gives only the latest that many,
    /// and `source_event_count` says how many there are.
    public func json(extra: [(String, String)] = [], listing limit: Int? = nil) -> [UInt8] {
        var out: [UInt8] = []
        func key(_ k: String) {
            out.append(out.isEmpty ? UInt8(ascii: "{") : UInt8(ascii: ","))
            JSONStringEncoder.append(k, to: &out)
            out.append(UInt8(ascii: ":"))
        }
        func string(_ k: String, _ v: String) { key(k); JSONStringEncoder.append(v, to: &out) }
        string("ticket_id", ticketID)
        string("equipment_id", equipmentID)
        string("action", action)
        string("priority", priority.description)
        string("due_by", Timestamp.format(dueBy))
        string("status", status.rawValue)
        key("source_event_ids")
        out.append(UInt8(ascii: "["))
        let listed = limit.map { sourceEventIDs.suffix($0) } ?? sourceEventIDs[...]
        let count = sourceEventCount ?? sourceEventIDs.count
        for (i, id) in listed.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONStringEncoder.append(id, to: &out)
        }
        out.append(UInt8(ascii: "]"))
        if listed.count < count {
            key("source_event_count")
            out.append(contentsOf: String(count).utf8)
        }
        string("created_at", Timestamp.format(createdAt))
        string("updated_at", Timestamp.format(updatedAt))
        if let note { string("note", note) }
        for (k, v) in extra { string(k, v) }
        out.append(UInt8(ascii: "}"))
        return out
    }
}
