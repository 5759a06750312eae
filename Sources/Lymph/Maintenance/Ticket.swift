import Crypto
import Foundation

/// A maintenance job: at most one open ticket per (equipment, action).
public struct Ticket: Sendable, Equatable {
    public enum Status: String, Sendable, CaseIterable { case open, done, cancelled }

    public enum Priority: Int, Sendable, Comparable, CaseIterable, CustomStringConvertible {
        case low, medium, high, critical
        public static func < (a: Priority, b: Priority) -> Bool { a.rawValue < b.rawValue }
        public var description: String { ["low", "medium", "high", "critical"][rawValue] }
        public init?(name: String) {
            guard let p = Priority.allCases.first(where: { $0.description == name }) else { return nil }
            self = p
        }
    }

    public var ticketID: String
    public var equipmentID: String
    public var action: String
    public var priority: Priority
    /// Seconds since the epoch.
    public var dueBy: Double
    public var status: Status
    public var sourceEventIDs: [String]
    public var createdAt: Double
    public var updatedAt: Double
    public var note: String?

    /// `mt_` and 16 hex digits of SHA-256 over equipment, action and the event that opened it:
    /// the same on every replay, and different for a later ticket for the same job.
    static func makeID(equipment: String, action: String, openedBy eventID: String) -> String {
        let digest = SHA256.hash(data: Array("\(equipment)\u{0}\(action)\u{0}\(eventID)".utf8))
        return "mt_" + Hex.string(digest.prefix(8))
    }

    /// The ticket as a JSON object (the `data` of `maintenance.scheduled`, and `lymph tickets --format json`).
    public func json(extra: [(String, String)] = []) -> [UInt8] {
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
        for (i, id) in sourceEventIDs.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONStringEncoder.append(id, to: &out)
        }
        out.append(UInt8(ascii: "]"))
        string("created_at", Timestamp.format(createdAt))
        string("updated_at", Timestamp.format(updatedAt))
        if let note { string("note", note) }
        for (k, v) in extra { string(k, v) }
        out.append(UInt8(ascii: "}"))
        return out
    }
}
