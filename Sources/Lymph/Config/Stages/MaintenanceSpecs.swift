/// Options of `schedule_maintenance`.
public struct ScheduleMaintenanceSpec: StageSpec {
    /// The thresholds, due dates and field paths, defaults where the file says nothing.
    public var options: ScheduleMaintenanceStage.Options

    /// The thresholds and due dates, then whether it emits `maintenance.scheduled` events.
    public var summary: String {
        "min_confidence \(options.minConfidence), alerts \(options.alertSeverities.joined(separator: "/")), lead_time \(DedupSpec.describe(options.leadTime)), alert_due_in \(DedupSpec.describe(options.alertDueIn))"
            + (options.emit ? ", emits maintenance.scheduled" : "")
    }

    /// Tickets live in the store.
    public var usesStore: Bool { true }

    /// Builds the stage over the pipeline's ticket book; throws without a store.
    public func build(_ env: StageBuildEnvironment) throws -> any Stage {
        guard let book = env.tickets else { throw StageBuildError(stage: env.stageName, message: "needs the store") }
        return ScheduleMaintenanceStage(options: options, book: book)
    }

    static let fieldKeys = ["equipment", "action", "failure_time", "confidence", "severity", "metric"]

    static let kind = StageKind(
        name: "schedule_maintenance",
        optionKeys: ["min_confidence", "alert_severities", "lead_time", "alert_due_in", "emit", "max_future", "fields"]
    ) { m, d in
        var o = ScheduleMaintenanceStage.Options()
        if let v = m["min_confidence"] {
            if case .scalar(let s) = v.node, let x = Double(s.string), (0...1).contains(x) {
                o.minConfidence = x
            } else {
                d.error("min_confidence must be a number from 0 to 1", at: v)
            }
        }
        if let v = m["alert_severities"], let items = v.strings(&d, "alert_severities") {
            if items.isEmpty {
                d.error("alert_severities is empty: no alert would ever open a ticket (leave it out for [high, critical])", at: v)
            }
            o.alertSeverities = items.compactMap { item in
                guard let s = item.string(&d, "a severity") else { return nil }
                guard Ticket.Priority(name: s) != nil else {
                    d.error("unknown severity '\(s.cutForMessage())'\(Suggestion.didYouMean(s, in: Ticket.Priority.allCases.map(\.description)))", at: item)
                    return nil
                }
                return s
            }
        }
        if let v = m["lead_time"], let x = v.duration(&d, "lead_time") { o.leadTime = x }
        if let v = m["alert_due_in"], let x = v.duration(&d, "alert_due_in") { o.alertDueIn = x }
        if let v = m["emit"], let b = v.bool(&d, "emit") { o.emit = b }
        if let v = m["max_future"], let x = v.duration(&d, "max_future") { o.maxFuture = x }
        if let v = m["fields"], let fm = ConfigMapping(v, context: "fields", diagnostics: &d) {
            fm.rejectUnknownKeys(allowed: fieldKeys, &d)
            for (key, keyPath) in [
                ("equipment", \ScheduleMaintenanceStage.Options.equipment), ("action", \.action),
                ("failure_time", \.failureTime), ("confidence", \.confidence), ("severity", \.severity), ("metric", \.metric),
            ] {
                guard let fv = fm[key], let text = fv.string(&d, key) else { continue }
                do { o[keyPath: keyPath] = try JSONPath(parsing: text) } catch { d.error("\(error)", at: fv) }
            }
        }
        return ScheduleMaintenanceSpec(options: o)
    }
}

/// Options of `track_sensors`.
public struct TrackSensorsSpec: StageSpec {
    /// `offline_ticket:`: seconds a sensor may stay offline or in error before a ticket opens; nil
    /// opens none.
    public var offlineTicket: Double?
    /// `ticket_due_in:`: seconds from the ticket's opening to its due date, 24 hours by default.
    public var dueIn: Double
    /// `max_future:`: how far ahead of this machine's clock an event's `created_at` may be, five
    /// minutes by default; one further ahead is a dead letter (`in_future`).
    public var maxFuture: Double = FutureTimeCheck.defaultMaxFuture

    /// How long a sensor may be down and when its ticket is due, or `no tickets`.
    public var summary: String {
        offlineTicket.map { "ticket when offline or in error for \(DedupSpec.describe($0)), due in \(DedupSpec.describe(dueIn))" } ?? "no tickets"
    }

    /// Sensor statuses live in the store.
    public var usesStore: Bool { true }

    /// Builds the stage over the pipeline's store and ticket book; throws without a store.
    public func build(_ env: StageBuildEnvironment) throws -> any Stage {
        guard let store = env.store, let book = env.tickets else { throw StageBuildError(stage: env.stageName, message: "needs the store") }
        return TrackSensorsStage(store: store, book: book, offlineTicket: offlineTicket, dueIn: dueIn, maxFuture: maxFuture, clock: env.clock)
    }

    static let kind = StageKind(name: "track_sensors", optionKeys: ["offline_ticket", "ticket_due_in", "max_future"]) { m, d in
        let offlineTicket = m["offline_ticket"].flatMap { $0.duration(&d, "offline_ticket") }
        let dueIn = m["ticket_due_in"].flatMap { $0.duration(&d, "ticket_due_in") } ?? 24 * 3600
        if let v = m["ticket_due_in"], m["offline_ticket"] == nil {
            d.error("ticket_due_in is only used with offline_ticket (which opens the tickets it dates)", at: v)
        }
        let maxFuture = m["max_future"].flatMap { $0.duration(&d, "max_future") } ?? FutureTimeCheck.defaultMaxFuture
        return TrackSensorsSpec(offlineTicket: offlineTicket, dueIn: dueIn, maxFuture: maxFuture)
    }
}

/// A stage could not be built from valid options (a missing resource).
public struct StageBuildError: Error, Sendable, CustomStringConvertible {
    /// The stage's name.
    public let stage: String
    /// Why it could not be built.
    public let message: String
    /// `stage 'NAME': message`.
    public var description: String { "stage '\(stage)': \(message)" }
}
