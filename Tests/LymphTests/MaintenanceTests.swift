import Foundation
import Testing
@testable import Lymph

@Suite("maintenance tickets and sensors")
struct MaintenanceTests {
    @Test(
        "an identifier is refused for exactly the control characters (Cc) and the bidirectional controls of every Unicode scalar, named in the reason, and when blank"
    )
    func identifierCheckAgreesWithUnicode() {
        var disagreements: [UInt32] = []
        for value in UInt32(0)...0x10FFFF {
            guard let scalar = Unicode.Scalar(value) else { continue }
            let refused = IdentifierCheck.problem("pump-\(Character(scalar))-7") != nil
            // Unicode's bidirectional formatting characters: the Bidi_Control property.
            let bidi = scalar.properties.isBidiControl
            if refused != (scalar.properties.generalCategory == .control || bidi) { disagreements.append(value) }
        }
        #expect(disagreements.isEmpty)
        #expect(IdentifierCheck.problem("pump_1\u{202E}") == "must not contain bidirectional controls (found U+202E)")
        #expect(IdentifierCheck.problem("\u{2066}pump") == "must not contain bidirectional controls (found U+2066)")
        #expect(IdentifierCheck.problem("   ") == "must not be blank")
        #expect(IdentifierCheck.problem("\u{3000} \u{A0}") == "must not be blank")
        #expect(IdentifierCheck.problem(" pump ") == nil && IdentifierCheck.problem("ポンプ") == nil)
        #expect(IdentifierCheck.problem("é-pump\u{85}") == "must not contain control characters (found U+0085)")
        #expect(IdentifierCheck.problem("pump\u{7F}") == "must not contain control characters (found U+007F)")
        #expect(IdentifierCheck.problem("\u{0}") == "must not contain control characters (found U+0000)")
        #expect(IdentifierCheck.problem("pump-é-\u{A0}-ü-✓") == nil)
    }

    let dir = Fixture.temporaryDirectory()

    static func prediction(
        _ id: String, equipment: String = "pump_001", action: String = "Replace bearing", confidence: Double = 0.9,
        created: String = "2026-06-01T00:00:00Z", failure: String = "2026-06-20T00:00:00Z"
    ) -> String {
        #"{"id":"\#(id)","type":"prediction.created","created_at":"\#(created)","data":{"equipment_id":"\#(equipment)","confidence":\#(confidence),"predicted_failure_time":"\#(failure)","recommended_action":"\#(action)"}}"#
    }

    static func alert(_ id: String, severity: String = "critical", metric: String = "temperature", created: String = "2026-06-01T00:00:00Z") -> String {
        #"{"id":"\#(id)","type":"alert.triggered","created_at":"\#(created)","data":{"equipment_id":"pump_009","sensor_id":"s1","metric":"\#(metric)","severity":"\#(severity)"}}"#
    }

    static func sensor(_ id: String, _ sensor: String, _ status: String, created: String) -> String {
        #"{"id":"\#(id)","type":"sensor.status_changed","created_at":"\#(created)","data":{"sensor_id":"\#(sensor)","equipment_id":"pump_777","status":"\#(status)"}}"#
    }

    func spec(_ yaml: String = "") -> PipelineSpec {
        let (spec, d) = PipelineLoader.parse(
            yaml: """
                state: \(dir)/state.sqlite
                output: \(dir)/out.ndjson
                dead_letter: \(dir)/dead.ndjson
                stages:
                  - parse
                  - dedup
                  - schedule_maintenance
                  - track_sensors:
                      offline_ticket: 30m
                \(yaml)
                """, file: "m.yaml")
        #expect(!d.hasErrors, "\(d.items)")
        return spec!
    }

    /// A pipeline of parse then `stages` (list items, indented as in the file), its store and
    /// files named `name` in `dir`.
    func spec(stages: String, name: String) -> PipelineSpec {
        let (spec, d) = PipelineLoader.parse(
            yaml: """
                state: \(dir)/\(name).sqlite
                output: \(dir)/\(name).ndjson
                dead_letter: \(dir)/\(name)-dead.ndjson
                stages:
                  - parse
                \(stages)
                """, file: "\(name).yaml")
        #expect(!d.hasErrors, "\(d.items)")
        return spec!
    }

    func run(_ lines: [String], spec: PipelineSpec? = nil) async throws -> RunSummary {
        let path = dir + "/in-\(UUID().uuidString).ndjson"
        FileManager.default.createFile(atPath: path, contents: Data((lines.joined(separator: "\n") + "\n").utf8))
        let pipeline = try Pipeline.open(spec ?? self.spec())
        defer { pipeline.close() }
        return try await PipelineRunner(pipeline: pipeline).run(reader: ItemReader(paths: [path], maxItemBytes: 1 << 20))
    }

    func tickets(_ status: Ticket.Status? = .open) throws -> [Ticket] {
        try StateStore.open(path: dir + "/state.sqlite").tickets(status: status, equipment: nil)
    }

    func output() -> [String] {
        ((try? String(contentsOfFile: dir + "/out.ndjson", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    @Test("a ticket changed while its commit is in flight lists each source event once")
    func ticketChangedDuringCommit() throws {
        let store = try StateStore.open(path: ":memory:")
        let book = TicketBook(store: store)
        func request(_ source: String, _ priority: Ticket.Priority, due: Double) -> TicketRequest {
            TicketRequest(equipmentID: "pump_7", action: "Replace bearing", priority: priority, dueBy: due, sourceEventID: source, at: 1)
        }
        _ = try book.apply(request("e1", .low, due: 1000))
        // The runner takes the book's changes and its commit lands; it hears of it only at its
        // next commit point, and batches go on meanwhile.
        let write = book.takePending()
        try store.write { db in try write?.write(db) }
        guard case .merged(let t2, changed: true) = try book.apply(request("e2", .high, due: 500)) else {
            Issue.record("expected a change to the open ticket")
            return
        }
        #expect(t2.sourceEventIDs == ["e1", "e2"])
        book.pendingWritten()
        let write2 = book.takePending()
        try store.write { db in try write2?.write(db) }
        book.pendingWritten()
        guard case .merged(let t3, changed: true) = try book.apply(request("e3", .critical, due: 400)) else {
            Issue.record("expected a change to the open ticket")
            return
        }
        #expect(t3.sourceEventIDs == ["e1", "e2", "e3"])
        #expect(try store.tickets(status: nil, equipment: nil).map(\.sourceEventIDs) == [["e1", "e2"]])
    }

    @Test(
        "merges that change neither due date nor priority report only the event they added; the ticket keeps every one, in order, also when a commit rolls back"
    )
    func unchangedMergesReportTheirEvent() throws {
        let store = try StateStore.open(path: ":memory:")
        let book = TicketBook(store: store)
        func request(_ source: String) -> TicketRequest {
            TicketRequest(equipmentID: "pump_7", action: "Replace bearing", priority: .low, dueBy: 1000, sourceEventID: source, at: 1)
        }
        guard case .opened(let t1) = try book.apply(request("e1")) else {
            Issue.record("expected a new ticket")
            return
        }
        #expect(t1.sourceEventIDs == ["e1"])
        var reported: [[String]] = []
        for source in ["e2", "e3", "e4"] {
            guard case .merged(let t, changed: false) = try book.apply(request(source)) else {
                Issue.record("expected an unchanged merge for \(source)")
                return
            }
            reported.append(t.sourceEventIDs)
        }
        #expect(reported == [["e2"], ["e3"], ["e4"]])
        // A commit that rolls back leaves every event to the next; an event applied meanwhile joins.
        _ = book.takePending()
        book.pendingNotWritten()
        #expect(try book.apply(request("e3")) == .alreadyApplied)
        _ = try book.apply(request("e5"))
        let write = book.takePending()
        try store.write { db in try write?.write(db) }
        book.pendingWritten()
        #expect(try store.tickets(status: nil, equipment: nil).map(\.sourceEventIDs) == [["e1", "e2", "e3", "e4", "e5"]])
        #expect(try book.apply(request("e4")) == .alreadyApplied)
        guard case .merged(_, changed: false) = try book.apply(request("e6")) else {
            Issue.record("expected an unchanged merge after the commit")
            return
        }
    }

    @Test("three predictions for one job merge into one ticket with three sources and the earliest due date")
    func merging() async throws {
        _ = try await run([
            Self.prediction("p1", failure: "2026-06-20T00:00:00Z"),
            Self.prediction("p2", created: "2026-06-02T00:00:00Z", failure: "2026-06-10T00:00:00Z"),
            Self.prediction("p3", created: "2026-06-03T00:00:00Z", failure: "2026-06-25T00:00:00Z"),
        ])
        let t = try tickets()
        #expect(t.count == 1)
        #expect(t[0].sourceEventIDs == ["p1", "p2", "p3"])
        #expect(t[0].dueBy == Timestamp.parse("2026-06-08T00:00:00Z"))  // 10th minus 48 h lead time
        // Emitted: after p1 (opened) and p2 (due date moved), not after p3 (nothing moved).
        let types = output().map { $0.contains("maintenance.scheduled") ? "m" : "e" }
        #expect(types == ["e", "m", "e", "m", "e"])
    }

    @Test(
        "an emitted maintenance.scheduled lists the latest 100 source events and counts them all: a job predicted again and again does not make each event longer than the last"
    )
    func emittedListIsBounded() async throws {
        // Each prediction an hour later and its failure an hour sooner: every one moves the due date.
        let start = Timestamp.parse("2026-06-01T00:00:00Z")!
        let lines = (0..<150).map { n in
            Self.prediction(
                "p\(n)", created: Timestamp.format(start + Double(n) * 3_600), failure: Timestamp.format(start + 30 * 86_400 - Double(n) * 3_600))
        }
        _ = try await run(lines)
        let emitted = output().filter { $0.contains("maintenance.scheduled") }
        #expect(emitted.count == 150)
        let last = try #require(emitted.last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        let data = try #require(last["data"] as? [String: Any])
        #expect(data["source_event_ids"] as? [String] == (50..<150).map { "p\($0)" })
        #expect(data["source_event_count"] as? Int == 150)
        // An event with fewer lists them all, without a count.
        let first = try #require(emitted.first.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        #expect((first["data"] as? [String: Any])?["source_event_count"] == nil)
        // The store keeps every one.
        #expect(try tickets()[0].sourceEventIDs.count == 150)
    }

    @Test("different actions make different tickets; low confidence makes none")
    func separateTickets() async throws {
        _ = try await run([Self.prediction("a"), Self.prediction("b", action: "Replace seal"), Self.prediction("c", action: "Other", confidence: 0.5)])
        #expect(try tickets().map(\.action).sorted() == ["Replace bearing", "Replace seal"])
    }

    @Test(
        "priority rules",
        arguments: [
            (0.95, "2026-06-03T00:00:00Z", "critical"), (0.85, "2026-06-03T00:00:00Z", "high"), (0.92, "2026-06-06T00:00:00Z", "high"),
            (0.85, "2026-06-06T00:00:00Z", "medium"), (0.81, "2026-07-30T00:00:00Z", "medium"),
        ])
    func priorities(_ confidence: Double, _ failure: String, _ expected: String) async throws {
        _ = try await run([Self.prediction("p", confidence: confidence, failure: failure)])
        #expect(try tickets().first?.priority.description == expected)
    }

    @Test("alerts: severity is the priority, due in 24 h, action from the metric")
    func alerts() async throws {
        let s = try await run([Self.alert("a1"), Self.alert("a2", severity: "low")])
        // A severity not among `alert_severities` opens no ticket, and is no dead letter.
        #expect(s.deadLetters == 0 && s.itemsRead == 2)
        let t = try tickets()
        #expect(t.count == 1)
        #expect(t[0].action == "Inspect temperature on pump_009")
        #expect(t[0].priority == .critical)
        #expect(t[0].dueBy == Timestamp.parse("2026-06-02T00:00:00Z"))
    }

    @Test("an alert whose action is null takes one made from its metric, as one without an action")
    func alertNullAction() async throws {
        let line = Self.alert("a1").replacingOccurrences(of: #""severity""#, with: #""recommended_action":null,"severity""#)
        let s = try await run([line])
        #expect(s.deadLetters == 0)
        #expect(try tickets().map(\.action) == ["Inspect temperature on pump_009"])
    }

    @Test("replaying the same file three times leaves the same ticket table")
    func replay() async throws {
        let lines = [Self.prediction("p1"), Self.prediction("p2", action: "Replace seal"), Self.alert("a1")]
        _ = try await run(lines)
        let first = try tickets(nil)
        // No dedup here, so only the ticket book's own idempotency protects the table.
        let (noDedup, _) = PipelineLoader.parse(
            yaml: "state: \(dir)/state.sqlite\noutput: none\ndead_letter: \(dir)/dead.ndjson\nstages: [parse, schedule_maintenance]\n", file: "x.yaml")
        _ = try await run(lines, spec: noDedup!)
        _ = try await run(lines, spec: noDedup!)
        #expect(try tickets(nil) == first)
    }

    @Test("a crash after the ticket is decided and before the end: the re-run makes exactly one ticket")
    func crash() async throws {
        var crashing = spec()
        crashing.stages.append(StageEntry(kind: "test", name: "crash", hasExplicitName: true, line: 1, column: 1, when: nil, spec: CrashSpec()))
        await #expect(throws: CrashStage.Crash.self) { try await run([Self.prediction("p1")], spec: crashing) }
        #expect(try tickets(nil).isEmpty)  // nothing committed: tickets commit with the dedup keys
        let rerun = try await run([Self.prediction("p1")])
        #expect(rerun.passed == 2)
        #expect(try tickets(nil).count == 1)
        _ = try await run([Self.prediction("p1")])
        #expect(try tickets(nil).count == 1)
    }

    @Test("closing a ticket, then a new prediction for the same job opens a new ticket")
    func closeThenReopen() async throws {
        _ = try await run([Self.prediction("p1")])
        let store = try StateStore.open(path: dir + "/state.sqlite")
        let first = try #require(try tickets().first)
        #expect(try store.closeTicket(id: first.ticketID, cancel: false, note: "done", at: 0)?.status == .done)
        _ = try await run([Self.prediction("p2")])
        let open = try tickets()
        #expect(open.count == 1 && open[0].ticketID != first.ticketID && open[0].sourceEventIDs == ["p2"])
    }

    @Test(
        "a NUL in an equipment id or an action is a dead letter: it neither merges two jobs nor stops a later run on the store's unique index"
    )
    func nulInJobIsRejected() async throws {
        let first = try await run([
            Self.prediction("e1", equipment: #"a\u0000b"#, action: "c"), Self.prediction("e2", equipment: "a", action: #"b\u0000c"#),
            Self.prediction("ok", equipment: "a", action: "c"),
        ])
        #expect(first.deadLetters == 2)
        let second = try await run([Self.prediction("e3", equipment: #"a\u0000b"#, action: "c"), Self.prediction("ok2", equipment: "a", action: "c")])
        #expect(second.deadLetters == 1)
        let open = try tickets()
        #expect(open.count == 1 && open[0].equipmentID == "a" && open[0].action == "c" && open[0].sourceEventIDs == ["ok", "ok2"])
    }

    @Test("equipment ids spelled with different bytes are different jobs, even when Unicode calls them equivalent, in one run and across runs")
    func jobsByBytes() async throws {
        let composed = #"caf\u00e9"#, combining = #"cafe\u0301"#
        _ = try await run([Self.prediction("p1", equipment: composed), Self.prediction("p2", equipment: combining)])
        #expect(try tickets().count == 2)
        _ = try await run([Self.prediction("p3", equipment: combining), Self.prediction("p4", equipment: composed)])
        let open = try tickets()
        #expect(open.count == 2)
        let byEquipment = Dictionary(uniqueKeysWithValues: open.map { (Array($0.equipmentID.utf8), $0.sourceEventIDs) })
        #expect(byEquipment[Array("caf\u{e9}".utf8)] == ["p1", "p4"])
        #expect(byEquipment[Array("cafe\u{301}".utf8)] == ["p2", "p3"])
    }

    @Test("sensor ids spelled with different bytes are different sensors: an older event of one is not stale against the other")
    func sensorsByBytes() async throws {
        let composed = #"s\u00e9"#, combining = #"se\u0301"#
        _ = try await run([
            Self.sensor("a", composed, "offline", created: "2026-06-01T10:00:00Z"), Self.sensor("b", combining, "online", created: "2026-06-01T09:00:00Z"),
        ])
        _ = try await run([Self.sensor("c", combining, "error", created: "2026-06-01T09:30:00Z")])
        let sensors = try StateStore.open(path: dir + "/state.sqlite").sensors(status: nil)
        let byID = Dictionary(uniqueKeysWithValues: sensors.map { (Array($0.sensorID.utf8), $0.status) })
        #expect(byID == [Array("s\u{e9}".utf8): "offline", Array("se\u{301}".utf8): "error"])
    }

    @Test("whether an outage opens a ticket, and the ticket, do not depend on where the batches end")
    func sensorTicketsIndependentOfBatches() async throws {
        let lines =
            [Self.sensor("x1", "sen_x", "error", created: "2026-06-01T10:00:00Z")]
            + (0..<200).map { Self.sensor("y\($0)", "sen_y\($0)", "online", created: "2026-06-01T10:35:00Z") }
            + [Self.sensor("x2", "sen_x", "online", created: "2026-06-01T10:40:00Z")]
        let path = dir + "/in.ndjson"
        FileManager.default.createFile(atPath: path, contents: Data((lines.joined(separator: "\n") + "\n").utf8))
        func ticketsAfterRun(readSize: Int) async throws -> [String] {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: dir + "/state.sqlite" + suffix) }
            func runOnce() async throws -> RunSummary {
                let pipeline = try Pipeline.open(spec())
                defer { pipeline.close() }
                return try await PipelineRunner(pipeline: pipeline).run(reader: ItemReader(paths: [path], maxItemBytes: 1 << 20, readSize: readSize))
            }
            _ = try await runOnce()
            return try tickets(nil).map { String(decoding: $0.json(), as: UTF8.self) }.sorted()
        }
        let whole = try await ticketsAfterRun(readSize: 1 << 20)
        let small = try await ticketsAfterRun(readSize: 512)
        #expect(whole == small)
        // sen_x was in error for 40 minutes: one ticket, stamped when it had been 30.
        let x = try #require(try tickets(nil).first { $0.action == "Inspect sensor sen_x" })
        #expect(x.sourceEventIDs == ["x1"] && x.priority == .high && x.dueBy == Timestamp.parse("2026-06-02T10:30:00Z"))
    }

    /// Hands out its reader's first batch, then stops the run as a signal would.
    final class StoppedAfterFirstBatch: ItemSource {
        let reader: ItemReader
        var handedOut = false
        init(_ reader: ItemReader) { self.reader = reader }
        func nextBatch(control: RunControl) async throws -> InputBatch? {
            if handedOut {
                control.requestStop(signal: 15)
                return nil
            }
            handedOut = true
            return try await reader.nextBatch(control: control)
        }
        var finished: Bool { false }
    }

    @Test("a run a signal stops does not judge its sensors by the wall clock: the run that continues its input does, and the sensor is back by then")
    func stoppedRunDoesNotJudge() async throws {
        let offline = dir + "/offline.ndjson"
        FileManager.default.createFile(atPath: offline, contents: Data((Self.sensor("x1", "sen_x", "offline", created: "2026-06-01T10:00:00Z") + "\n").utf8))
        func runStopped() async throws -> RunSummary {
            let pipeline = try Pipeline.open(spec())
            defer { pipeline.close() }
            return try await PipelineRunner(pipeline: pipeline).run(reader: StoppedAfterFirstBatch(ItemReader(paths: [offline], maxItemBytes: 1 << 20)))
        }
        let stopped = try await runStopped()
        #expect(stopped.interruptedBy == 15)
        #expect(try tickets(nil).isEmpty)
        _ = try await run([Self.sensor("x2", "sen_x", "online", created: "2026-06-01T10:10:00Z")])
        #expect(try tickets(nil).isEmpty)
        // Read to the end, the same offline event is judged against the wall clock (days later).
        _ = try await run([Self.sensor("y1", "sen_y", "offline", created: "2026-06-01T10:00:00Z")])
        #expect(try tickets().map(\.action) == ["Inspect sensor sen_y"])
    }

    @Test(
        "bad payloads are dead letters with the reason",
        arguments: [
            (prediction("x", failure: "2026-05-01T00:00:00Z"), "past_failure_time"),
            (#"{"id":"y","type":"prediction.created","created_at":"2026-06-01T00:00:00Z","data":{"confidence":0.9}}"#, "missing_field"),
            (
                #"{"id":"z","type":"prediction.created","created_at":"2026-06-01T00:00:00Z","data":{"confidence":0.9,"equipment_id":"e","recommended_action":"a","predicted_failure_time":"soon"}}"#,
                "invalid_field"
            ),
            (#"{"id":"w","type":"alert.triggered","created_at":"2026-06-01T00:00:00Z","data":{"equipment_id":"e"}}"#, "missing_field"),
            // A field of the wrong type is invalid, not missing, and an alert's is not replaced.
            (prediction("c", confidence: 0.9).replacingOccurrences(of: #""confidence":0.9"#, with: #""confidence":"0.9""#), "invalid_field"),
            (alert("a").replacingOccurrences(of: #""severity""#, with: #""recommended_action":42,"severity""#), "invalid_field"),
            (alert("b").replacingOccurrences(of: #""severity""#, with: #""recommended_action":"","severity""#), "invalid_field"),
            (alert("m").replacingOccurrences(of: #""metric":"temperature""#, with: #""metric":7"#), "invalid_field"),
            (#"{"id":"s","type":"sensor.status_changed","created_at":"2026-06-01T00:00:00Z","data":{"sensor_id":7,"status":"offline"}}"#, "invalid_field"),
            (sensor("q", "s1", "offline", created: "2026-06-01T00:00:00Z").replacingOccurrences(of: #""pump_777""#, with: "5"), "invalid_field"),
            // Control characters in what keys a job or a sensor.
            (prediction("n1", equipment: #"a\u0000b"#), "invalid_field"),
            (prediction("n2", action: #"Replace\u001b[2Jbearing"#), "invalid_field"),
            (alert("n3", metric: #"temp\nerature"#), "invalid_field"),
            (sensor("n4", #"sen\u0000x"#, "offline", created: "2026-06-01T00:00:00Z"), "invalid_field"),
            (sensor("n5", "s1", "offline", created: "2026-06-01T00:00:00Z").replacingOccurrences(of: "pump_777", with: #"pump\u009b7"#), "invalid_field"),
            // Blank names, and names a table would show in another order.
            (prediction("b1", equipment: "   "), "invalid_field"),
            (prediction("b2", equipment: #"pump_1\u202e"#), "invalid_field"),
            (alert("b3", metric: #"\u2067temp"#), "invalid_field"),
            (sensor("b4", "  ", "offline", created: "2026-06-01T00:00:00Z"), "invalid_field"),
            // A confidence outside 0 to 1, and a severity that is not one of the four, exactly.
            (prediction("c1", confidence: 1.5), "invalid_field"),
            (prediction("c2", confidence: -0.2), "invalid_field"),
            (alert("s1", severity: "HIGH"), "invalid_field"),
            (alert("s2", severity: "urgent"), "invalid_field"),
        ])
    func badPayloads(_ line: String, _ reason: String) async throws {
        let s = try await run([line])
        #expect(s.deadLetters == 1)
        let dead = try String(contentsOfFile: dir + "/dead.ndjson", encoding: .utf8)
        #expect(dead.contains(#""reason":"\#(reason)""#))
        #expect(try tickets(nil).isEmpty)
    }

    @Test(
        "a bad predicted failure time's dead letter quotes it as sent",
        arguments: [
            (prediction("x", failure: "2026-05-01T00:00:00Z"), "predicted_failure_time 2026-05-01T00:00:00Z is not after the event's created_at"),
            (prediction("y", failure: "soon"), "is not an RFC 3339 timestamp: 'soon'"),
            (prediction("z", failure: ""), "predicted failure time (data.predicted_failure_time) must be a non-empty string"),
        ])
    func badFailureTimeMessages(_ line: String, _ message: String) async throws {
        let s = try await run([line])
        #expect(s.deadLetters == 1)
        let dead = try String(contentsOfFile: dir + "/dead.ndjson", encoding: .utf8)
        #expect(dead.contains(message), "\(dead)")
    }

    @Test("stale sensor events are dropped; a sensor down too long opens an inspection ticket")
    func sensors() async throws {
        let s = try await run([
            Self.sensor("s1", "sen_1", "offline", created: "2026-06-01T00:00:00Z"),
            Self.sensor("s0", "sen_1", "online", created: "2026-05-31T23:00:00Z"),  // late, older: stale
            Self.sensor("s2", "sen_2", "online", created: "2026-06-01T00:10:00Z"),
            Self.sensor("s3", "sen_2", "online", created: "2026-06-01T01:00:00Z"),  // advances the clock past 30 min
        ])
        #expect(s.stages.first { $0.kind == "track_sensors" }?.stats.dropped["stale"] == 1)
        let store = try StateStore.open(path: dir + "/state.sqlite")
        #expect(try store.sensors(status: "offline").map(\.sensorID) == ["sen_1"])
        let t = try tickets()
        #expect(t.map(\.action) == ["Inspect sensor sen_1"])
        #expect(t[0].sourceEventIDs == ["s1"])
    }

    @Test(
        "a sensor event dated more than max_future ahead of the clock is a dead letter (in_future): the sensor's later events are not stale, and its outage is judged by real times"
    )
    func sensorEventFromTheFuture() async throws {
        let s = try await run([
            Self.sensor("s1", "sen_1", "offline", created: "2026-06-01T00:00:00Z"),
            Self.sensor("f1", "sen_1", "online", created: "2099-01-01T00:00:00Z"),  // a sender's clock 73 years off
            Self.sensor("s2", "sen_1", "online", created: "2026-06-01T00:10:00Z"),
        ])
        #expect(s.deadLetters == 1)
        #expect(s.stages.first { $0.kind == "track_sensors" }?.stats.dropped["stale"] == nil)
        let dead = try String(contentsOfFile: dir + "/dead.ndjson", encoding: .utf8)
        #expect(dead.contains(#""reason":"in_future""#) && dead.contains("ahead of this machine's clock, more than max_future (5m)"), "\(dead)")
        let store = try StateStore.open(path: dir + "/state.sqlite")
        #expect(try store.sensors(status: nil).map { "\($0.sensorID) \($0.status) \($0.lastEventID)" } == ["sen_1 online s2"])
        // Down for ten minutes, not until 2099: no ticket.
        #expect(try tickets(nil).isEmpty)
    }

    @Test(
        "a prediction or alert dated more than max_future ahead of the clock is a dead letter (in_future), not a ticket opened and updated in the sender's future; max_future widens it"
    )
    func ticketRequestFromTheFuture() async throws {
        let ahead = Timestamp.format(Timestamp.now() + 2 * 86_400)
        let far = Timestamp.format(Timestamp.now() + 30 * 86_400)
        let s = try await run([
            Self.alert("a1", created: ahead),
            Self.prediction("p1", created: ahead, failure: far),
            Self.alert("a2"),  // dated in the past: its ticket opens as usual
        ])
        #expect(s.deadLetters == 2)
        let dead = try String(contentsOfFile: dir + "/dead.ndjson", encoding: .utf8)
        #expect(dead.components(separatedBy: #""reason":"in_future""#).count == 3, "\(dead)")
        #expect(dead.contains("ahead of this machine's clock, more than max_future (5m): check the sender's clock"), "\(dead)")
        var t = try tickets()
        #expect(t.map(\.sourceEventIDs) == [["a2"]])
        #expect(t.first?.updatedAt == Timestamp.parse("2026-06-01T00:00:00Z"))
        let widened = spec(stages: "  - schedule_maintenance:\n      max_future: 3d", name: "wide")
        let w = try await run([Self.alert("a1", created: ahead)], spec: widened)
        #expect(w.deadLetters == 0)
        t = try StateStore.open(path: dir + "/wide.sqlite").tickets(status: .open, equipment: nil)
        #expect(t.map(\.sourceEventIDs) == [["a1"]])
    }

    @Test("max_future sets how far ahead of the clock a sensor event may be")
    func sensorMaxFuture() async throws {
        let ahead = Timestamp.format(Timestamp.now() + 2 * 86_400)
        let s = try await run([Self.sensor("a1", "sen_1", "online", created: ahead)])
        #expect(s.deadLetters == 1)  // two days ahead: more than the default five minutes
        let widened = spec(stages: "  - track_sensors:\n      max_future: 3d", name: "wide")
        let t = try await run([Self.sensor("a1", "sen_1", "online", created: ahead)], spec: widened)
        #expect(t.deadLetters == 0 && t.passed == 1)
    }

    @Test("an event a little ahead of the clock, within max_future, does not move the clock that judges outages past the machine's")
    func sensorClockNotPastTheMachines() async throws {
        let now = Timestamp.now()
        // The store `tickets()` reads.
        let spec = spec(stages: "  - track_sensors:\n      offline_ticket: 10m\n      max_future: 1h", name: "state")
        let s = try await run(
            [
                Self.sensor("a1", "sen_a", "offline", created: Timestamp.format(now - 5 * 60)),
                // Another sender's clock, 30 minutes fast: by its time sen_a would be down 35 minutes.
                Self.sensor("b1", "sen_b", "online", created: Timestamp.format(now + 30 * 60)),
            ], spec: spec)
        #expect(s.deadLetters == 0)
        #expect(try tickets(nil).isEmpty)
    }

    @Test(
        "a sensor is judged by its latest event: one back online opens nothing, one whose status changed is down since then, and a later event of one down too long joins its ticket"
    )
    func sensorsJudgedByLatestEvent() async throws {
        _ = try await run([
            Self.sensor("a1", "sen_a", "offline", created: "2026-06-01T00:00:00Z"),
            Self.sensor("b1", "sen_b", "offline", created: "2026-06-01T00:05:00Z"),
            Self.sensor("c1", "sen_c", "offline", created: "2026-06-01T00:10:00Z"),
            Self.sensor("d1", "sen_d", "error", created: "2026-06-01T00:15:00Z"),
            Self.sensor("b2", "sen_b", "online", created: "2026-06-01T00:20:00Z"),
            Self.sensor("d2", "sen_d", "error", created: "2026-06-01T00:40:00Z"),
            Self.sensor("c2", "sen_c", "error", created: "2026-06-01T00:50:00Z"),
            Self.sensor("z1", "sen_z", "online", created: "2026-06-01T01:00:00Z"),
        ])
        let store = try StateStore.open(path: dir + "/state.sqlite")
        #expect(try store.sensors(status: "error").map(\.sensorID).sorted() == ["sen_c", "sen_d"])
        #expect(try store.sensors(status: "error").first { $0.sensorID == "sen_c" }?.since == Timestamp.parse("2026-06-01T00:50:00Z"))
        // sen_c was offline for 40 minutes before its error (a ticket, as it was then), and is in
        // error for 10 minutes by the events' clock and for months by the wall clock the run
        // ends with: the judgement at the end adds that to its ticket.
        var t = try tickets().sorted { $0.action < $1.action }
        #expect(t.map(\.action) == ["Inspect sensor sen_a", "Inspect sensor sen_c", "Inspect sensor sen_d"])
        #expect(t.map(\.sourceEventIDs) == [["a1"], ["c1", "c2"], ["d2"]])
        #expect(t.map(\.priority) == [.medium, .high, .high])
        // Stamped when each reached the limit by the events' clock.
        #expect(t.map(\.dueBy) == ["2026-06-02T00:30:00Z", "2026-06-02T00:40:00Z", "2026-06-02T00:45:00Z"].map { Timestamp.parse($0) })
        _ = try await run([Self.sensor("a2", "sen_a", "offline", created: "2026-06-01T02:00:00Z")])
        t = try tickets().sorted { $0.action < $1.action }
        #expect(t.count == 3)
        #expect(t.first?.sourceEventIDs == ["a1", "a2"])
    }

    @Test("two stages that open tickets share one book: the same job in one commit is one ticket")
    func sharedBook() async throws {
        let (twoStages, d) = PipelineLoader.parse(
            yaml: """
                state: \(dir)/state.sqlite
                output: none
                dead_letter: \(dir)/dead.ndjson
                stages:
                  - parse
                  - schedule_maintenance: { name: first, emit: false }
                  - schedule_maintenance: { name: second, emit: false }
                """, file: "two.yaml")
        #expect(!d.hasErrors)
        let s = try await run([Self.prediction("p1"), Self.prediction("p2")], spec: twoStages!)
        #expect(s.deadLetters == 0)
        let t = try tickets()
        #expect(t.count == 1 && t[0].sourceEventIDs == ["p1", "p2"])
    }
}
