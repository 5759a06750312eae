import Crypto
import Foundation
import GRDB

/// Turns confident predictions and serious alerts into maintenance tickets (see `TicketBook`
/// for the merge rules) and, when a ticket opens or its due date or priority moves, emits a
/// `maintenance.scheduled` event right after the source event.
///
/// Priority of a prediction, from its confidence and the time left before the predicted failure:
/// critical when ≤ 72 h are left and confidence ≥ 0.9; high when ≤ 72 h are left, or ≤ 7 days and
/// confidence ≥ 0.9; medium when confidence ≥ 0.8 or ≤ 14 days are left; low otherwise.
/// Alerts take their severity (low, medium, high, critical).
public struct ScheduleMaintenanceStage: Stage {
    /// The options of `schedule_maintenance`: thresholds, due dates and where the fields are.
    public struct Options: Sendable {
        /// `min_confidence`: predictions less confident than this open no ticket.
        public var minConfidence = 0.8
        /// `alert_severities`: the alert severities that open a ticket.
        public var alertSeverities = ["high", "critical"]
        /// `lead_time`: seconds before the predicted failure a ticket is due (never before the
        /// prediction).
        public var leadTime = 48.0 * 3600
        /// `alert_due_in`: seconds after an alert its ticket is due.
        public var alertDueIn = 24.0 * 3600
        /// `emit`: whether a `maintenance.scheduled` event follows each ticket opened or moved.
        public var emit = true
        /// `max_future`: how far ahead of the machine's clock a request's `created_at` may be
        /// (`FutureTimeCheck`); one further ahead is a dead letter.
        public var maxFuture = FutureTimeCheck.defaultMaxFuture
        /// `fields.equipment`: where the equipment's id is.
        public var equipment = try! JSONPath(parsing: "data.equipment_id")
        /// `fields.action`: where the action to take is.
        public var action = try! JSONPath(parsing: "data.recommended_action")
        /// `fields.failure_time`: where a prediction's failure time (RFC 3339) is.
        public var failureTime = try! JSONPath(parsing: "data.predicted_failure_time")
        /// `fields.confidence`: where a prediction's confidence (0 to 1) is.
        public var confidence = try! JSONPath(parsing: "data.confidence")
        /// `fields.severity`: where an alert's severity is.
        public var severity = try! JSONPath(parsing: "data.severity")
        /// `fields.metric`: where an alert's metric is, named in its action when it has none.
        public var metric = try! JSONPath(parsing: "data.metric")
        /// The defaults, as for a `schedule_maintenance` stage with no options.
        public init() {}
    }

    let options: Options
    let book: TicketBook

    /// A stage applying its tickets to `book`.
    public init(options: Options, book: TicketBook) {
        self.options = options
        self.book = book
    }

    /// False: tickets merge in event order.
    public var runsConcurrently: Bool { false }

    static let prediction = Array("prediction.created".utf8)
    static let alert = Array("alert.triggered".utf8)

    struct Rejection: Error {
        let reason: Reason
        let message: String
    }

    /// Turns the batch's predictions and alerts into ticket requests, applies them to the book, and
    /// puts a `maintenance.scheduled` event after each source event whose ticket opened or moved.
    public func process(_ events: [Event], context: StageContext) async throws -> [StageOutcome] {
        var outcomes = [StageOutcome](repeating: .pass, count: events.count)
        var requests: [TicketRequest] = []
        var positions: [Int] = []
        for (i, event) in events.enumerated() {
            do {
                if let request = try request(for: event, now: context.now) {
                    requests.append(request)
                    positions.append(i)
                }
            } catch let r as Rejection {
                outcomes[i] = .fail(r.reason, message: r.message)
            }
        }
        // One read transaction for the whole batch: per-event transactions cost more than the lookups.
        let changes = try await book.record(requests)
        for (n, i) in positions.enumerated() {
            switch changes[n] {
            case .opened(let t), .merged(let t, changed: true):
                if options.emit { outcomes[i] = .replace([events[i], Self.scheduledEvent(t, source: events[i], now: context.now)]) }
            case .merged, .alreadyApplied:
                break
            }
        }
        return outcomes
    }

    /// The ticket request `event` makes, judged at `now`, the machine's clock (which its time
    /// may not be more than `max_future` ahead of); nil for one that makes none.
    func request(for event: Event, now: Double) throws -> TicketRequest? {
        let type = event.typeBytes
        // Worked out only for an event that asks for a ticket: most events do not.
        func createdAt() throws -> Double {
            let created = event.createdAtBytes.flatMap(Timestamp.parse) ?? 0
            if let problem = FutureTimeCheck.problem(created: created, now: now, maxFuture: options.maxFuture) {
                throw Rejection(reason: .inFuture, message: problem + "; taken as is, the ticket's dates would follow it")
            }
            return created
        }
        func present(_ path: JSONPath, _ what: String) throws -> ArraySlice<UInt8> {
            guard let v = event.value(at: path) else { throw Rejection(reason: .missingField, message: "\(what) (\(path)) is missing") }
            guard let bytes = v.stringBytes, !bytes.isEmpty else {
                throw Rejection(reason: .invalidField, message: "\(what) (\(path)) must be a non-empty string")
            }
            return bytes
        }
        func string(_ path: JSONPath, _ what: String) throws -> String {
            let value = String(decoding: try present(path, what), as: UTF8.self)
            if let problem = IdentifierCheck.problem(value) {
                throw Rejection(reason: .invalidField, message: "\(what) (\(path)) \(problem)")
            }
            return value
        }
        if type.elementsEqual(Self.prediction) {
            guard let value = event.value(at: options.confidence) else {
                throw Rejection(reason: .missingField, message: "confidence (\(options.confidence)) is missing")
            }
            guard let confidence = value.double else {
                throw Rejection(reason: .invalidField, message: "confidence (\(options.confidence)) must be a number")
            }
            // Out of range it is no confidence: 1.5 would open a critical ticket.
            guard confidence >= 0 && confidence <= 1 else {
                throw Rejection(reason: .invalidField, message: "confidence (\(options.confidence)) must be between 0 and 1, not \(confidence)")
            }
            if confidence < options.minConfidence { return nil }
            let equipment = try string(options.equipment, "equipment")
            let action = try string(options.action, "recommended action")
            let failureBytes = try present(options.failureTime, "predicted failure time")
            guard let failure = Timestamp.parse(failureBytes) else {
                throw Rejection(
                    reason: .invalidField,
                    message: "predicted failure time (\(options.failureTime)) is not an RFC 3339 timestamp: '\(String(decoding: failureBytes, as: UTF8.self))'")
            }
            let created = try createdAt()
            guard failure > created else {
                throw Rejection(
                    reason: .pastFailureTime,
                    message:
                        "predicted_failure_time \(String(decoding: failureBytes, as: UTF8.self)) is not after the event's created_at: nothing left to schedule"
                )
            }
            let left = failure - created
            let priority: Ticket.Priority
            if left <= 72 * 3600 && confidence >= 0.9 {
                priority = .critical
            } else if left <= 72 * 3600 || (left <= 7 * 86_400 && confidence >= 0.9) {
                priority = .high
            } else if confidence >= 0.8 || left <= 14 * 86_400 {
                priority = .medium
            } else {
                priority = .low
            }
            return TicketRequest(
                equipmentID: equipment, action: action, priority: priority,
                dueBy: max(failure - options.leadTime, created), sourceEventID: event.id, at: created)
        }
        if type.elementsEqual(Self.alert) {
            let severity = try string(options.severity, "severity")
            // One of the four, exactly: "HIGH" taken as no ticket would let a serious alert pass
            // unseen.
            guard let priority = Ticket.Priority(name: severity) else {
                throw Rejection(
                    reason: .invalidField, message: "severity (\(options.severity)) must be low, medium, high or critical, not '\(severity.cutForMessage(40))'")
            }
            if !options.alertSeverities.contains(severity) { return nil }
            let equipment = try string(options.equipment, "equipment")
            let created = try createdAt()
            // An alert's own action when it has one (checked as a prediction's), else one made
            // from its metric, checked the same way; a null is none.
            func given(_ path: JSONPath) -> Bool { event.value(at: path).map { $0.kind != .null } ?? false }
            let action: String
            if given(options.action) {
                action = try string(options.action, "recommended action")
            } else if given(options.metric) {
                action = "Inspect \(try string(options.metric, "metric")) on \(equipment)"
            } else {
                action = "Inspect equipment on \(equipment)"
            }
            return TicketRequest(
                equipmentID: equipment, action: action, priority: priority,
                dueBy: created + options.alertDueIn, sourceEventID: event.id, at: created)
        }
        return nil
    }

    /// `{"id": "evt_mt_…", "type": "maintenance.scheduled", "created_at": now, "data": {ticket…, "source_event_id"}}`.
    /// The id is stable for a (ticket, source event) pair, so a replay emits the same id.
    static func scheduledEvent(_ t: Ticket, source: Event, now: Double) -> Event {
        let sourceID = source.id
        let digest = SHA256.hash(data: Array("\(t.ticketID)\u{0}\(sourceID)".utf8))
        var out: [UInt8] = Array(#"{"id":"evt_mt_"#.utf8)
        out.append(contentsOf: Hex.string(digest.prefix(10)).utf8)
        out.append(contentsOf: #"","type":"maintenance.scheduled","created_at":"#.utf8)
        JSONStringEncoder.append(Timestamp.format(now), to: &out)
        out.append(contentsOf: #","data":"#.utf8)
        out.append(contentsOf: t.json(extra: [("source_event_id", sourceID)], listing: TicketBook.listedSources))
        out.append(UInt8(ascii: "}"))
        let document = try! JSONDocument(parsing: out)
        return Event(document: document, source: source.source, origin: ItemOrigin(form: .raw, bytes: out[...]))
    }

    /// Larger commit groups than the default: each commit writes every ticket and sensor changed
    /// since the last (`TicketBook.commitGroup`).
    public var commitGroup: Int { TicketBook.commitGroup }

    /// Writes the book's changes in the runner's transaction.
    public func takePending() throws -> PendingWrite? { book.takePending() }
    /// Keeps the book's changes for the next transaction.
    public func pendingNotWritten() { book.pendingNotWritten() }
    /// The book's changes are committed.
    public func pendingWritten() { book.pendingWritten() }
}
