import Foundation

/// Turns raw items into events: plain events, captured deliveries, and Lymph's own dead-letter
/// records (whose delivery or raw line is processed again: this is replay).
///
/// Checks the envelope every later stage relies on: `id` and `type` non-empty strings,
/// `created_at` an RFC 3339 timestamp, `data` an object.
public struct ParseStage: Sendable {
    public static let defaultMaxBytes = 1 << 20
    public let maxBytes: Int
    public let name: String
    /// With a `verify` stage, a record's resume point must carry this seal to resume past it
    /// (`ResumeSeal`); set by the pipeline.
    var resumeSeal: ResumeSeal?
    /// How many file names records may add to `SourceFiles` (tests lower it).
    var recordedFileNames = SourceFiles.recordedLimit.names

    /// The largest dead-letter record replay reads: the largest is a rejected line kept as
    /// `raw`, a JSON string in which each control byte takes six (`\u0001`), and one resuming
    /// holds the event (up to `maxBytes`) and the delivery it came in (its body escaped into a
    /// string: up to twice as long). Room for the rest of the record on top. Other items stay
    /// within `maxBytes`.
    public var maxRecordBytes: Int {
        let (times6, overflow) = maxBytes.multipliedReportingOverflow(by: 6)
        return overflow ? Int.max / 2 : times6 + 65_536
    }

    public init(name: String = "parse", maxBytes: Int = ParseStage.defaultMaxBytes) {
        self.name = name
        self.maxBytes = maxBytes
    }

    public enum Result: Sendable {
        case event(Event)
        case rejected(DeadLetter)
    }

    struct Rejection: Error {
        let reason: Reason
        let message: String
        /// Where the rejected item first came from, when not where it was read: a dead-letter
        /// record replayed from the top names its first source position.
        var source: SourcePosition? = nil
    }

    static let headersKey = Array("headers".utf8)
    static let bodyKey = Array("body".utf8)
    static let errorKey = Array("error".utf8)
    static let deliveryKey = Array("delivery".utf8)
    static let rawKey = Array("raw".utf8)
    static let rawBase64Key = Array("raw_base64".utf8)
    static let truncatedKey = Array("truncated".utf8)
    static let resumeKey = Array("resume".utf8)

    /// Parses a batch: the tapes of all its documents go into one shared array, so a batch
    /// costs one tape allocation instead of one per event. Results are in item order.
    public func parse(_ items: [RawItem], events: inout [Event], deadLetters: inout [DeadLetter]) {
        // About a token per eight bytes of an event; a delivery, whose body is one string, has
        // far fewer (its body is parsed on a tape of its own below).
        var arena = JSONTapeBuilder(capacity: min(items.reduce(0) { $0 + $1.bytes.count } / 8, items.count * 32))
        var spans = [Range<Int>?](repeating: nil, count: items.count)
        for i in items.indices where !items[i].oversize && items[i].bytes.count <= maxRecordBytes {
            let start = arena.count
            if (try? JSONParser.parse(items[i].bytes, appendingTo: &arena)) != nil { spans[i] = start..<arena.count }
        }
        let shared = arena.finish()
        let bodies = parsedBodies(items, spans: spans, tape: shared)
        for i in items.indices {
            // Items that did not parse go the single-item way, which says why.
            let document = spans[i].map { JSONDocument(bytes: items[i].bytes, tape: shared[$0]) }
            switch parse(items[i], document: consume document, parsedBody: bodies[i]) {
            case .event(let e): events.append(consume e)
            case .rejected(let dl): deadLetters.append(dl)
            }
        }
    }

    /// The bodies of the batch's deliveries, unescaped into one buffer and parsed into one tape,
    /// so an event costs neither allocation of its own (nor their frees, on the ordered path).
    /// A body that is too large, holds line breaks or does not parse is left to `parseDelivery`,
    /// which says why; so is an item handed over by the server (`prepared`).
    func parsedBodies(_ items: [RawItem], spans: [Range<Int>?], tape: [JSONTapeEntry]) -> [JSONDocument?] {
        var bodies = [JSONDocument?](repeating: nil, count: items.count)
        var found: [(item: Int, raw: ArraySlice<UInt8>, escaped: Bool)] = []
        for i in items.indices where items[i].prepared == nil {
            guard let span = spans[i] else { continue }
            let doc = JSONDocument(bytes: items[i].bytes, tape: tape[span])
            let fields = EventFields(doc)
            guard fields.headers >= 0, fields.body >= 0, doc.entry(Int(fields.headers)).kind == .object else { continue }
            let body = doc.entry(Int(fields.body))
            guard body.kind == .string else { continue }
            let start = items[i].bytes.startIndex
            found.append((i, items[i].bytes[(start + Int(body.start))..<(start + Int(body.end))], body.hasEscapes))
        }
        if found.isEmpty { return bodies }
        // Unescaped text is never longer than its escaped form: each body has room for that.
        var texts = [Range<Int>](repeating: 0..<0, count: found.count)
        let room = found.reduce(0) { $0 + ($1.escaped ? $1.raw.count : 0) }
        let unescaped = [UInt8](unsafeUninitializedCapacity: room) { out, count in
            var at = 0
            for (n, body) in found.enumerated() where body.escaped {
                let written = body.raw.withUnsafeBufferPointer { JSONParser.unescape($0, into: out.baseAddress! + at) }
                texts[n] = at..<(at + written)
                at += written
            }
            count = at
        }
        var bodyTape = JSONTapeBuilder(capacity: min(room / 8 + found.count * 8, found.count * 32))
        var bodySpans = [Range<Int>?](repeating: nil, count: found.count)
        for (n, body) in found.enumerated() {
            let text = body.escaped ? unescaped[texts[n]] : body.raw
            if text.count > maxBytes || ByteScan.containsLineBreak(text) { continue }
            let start = bodyTape.count
            if (try? JSONParser.parse(text, appendingTo: &bodyTape)) != nil { bodySpans[n] = start..<bodyTape.count }
        }
        let sharedTape = bodyTape.finish()
        for (n, body) in found.enumerated() {
            guard let span = bodySpans[n] else { continue }
            bodies[body.item] = JSONDocument(bytes: body.escaped ? unescaped[texts[n]] : body.raw, tape: sharedTape[span])
        }
        return bodies
    }

    /// For an item that is not JSON: a hint when its bytes look like UTF-16 (a byte-order mark,
    /// or NUL bytes, which UTF-8 text never holds), the one thing to do about such a file.
    static func encodingHint(_ bytes: ArraySlice<UInt8>) -> String {
        let start = bytes.prefix(2)
        guard start.elementsEqual([0xFF, 0xFE]) || start.elementsEqual([0xFE, 0xFF]) || bytes.contains(0) else { return "" }
        return
            "; the item holds NUL bytes or a UTF-16 byte-order mark: the file looks like UTF-16, and lymph reads UTF-8 (convert it: iconv -f UTF-16 -t UTF-8)"
    }

    /// The one message for an item over `max_bytes`, whether its dead letter keeps it whole or
    /// only its beginning.
    static func tooLargeMessage(_ maxBytes: Int) -> String {
        "item is larger than max_bytes (\(maxBytes) bytes); raise parse.max_bytes if such events are expected"
    }

    public func parse(_ item: RawItem) -> Result {
        parse(item, document: nil)
    }

    /// `document`: the item's bytes already parsed, when the caller has them; `parsedBody`: a
    /// delivery's body, unescaped and parsed (`parsedBodies`).
    func parse(_ item: RawItem, document: consuming JSONDocument?, parsedBody: JSONDocument? = nil) -> Result {
        if item.oversize {
            return .rejected(
                DeadLetter(
                    stage: name, reason: Reason.tooLarge.rawValue,
                    message: Self.tooLargeMessage(maxBytes), source: item.source,
                    origin: ItemOrigin(form: .raw, bytes: item.bytes, truncated: true)))
        }
        do {
            return .event(
                try parseItem(
                    item.bytes, source: item.source, replayDepth: 0, document: consume document, prepared: item.prepared, parsedBody: parsedBody,
                    singleLine: item.singleLine))
        } catch let r as Rejection {
            return .rejected(
                DeadLetter(stage: name, reason: r.reason.rawValue, message: r.message, source: r.source ?? item.source, origin: rejectedOrigin(item.bytes)))
        } catch {
            return .rejected(
                DeadLetter(
                    stage: name, reason: Reason.invalid.rawValue, message: "\(error)", source: item.source, origin: ItemOrigin(form: .raw, bytes: item.bytes)))
        }
    }

    /// A rejected item keeps its delivery form when it is recognisably one, so replay works; a
    /// rejected dead-letter record keeps the item it stands for, exactly as replay read it (a
    /// record that resumes at a stage is that item itself).
    func rejectedOrigin(_ bytes: ArraySlice<UInt8>) -> ItemOrigin {
        // One level less than the limit: the dead-letter record adds one around a delivery.
        if let doc = try? JSONDocument(parsing: bytes, maxDepth: JSONParser.defaultMaxDepth - 1),
            doc.root.member(Self.headersKey)?.kind == .object, doc.root.member(Self.bodyKey)?.kind == .string
        {
            return ItemOrigin(form: .delivery, bytes: doc.root.rawBytes)  // without surrounding blanks, as replay reads it
        }
        if let doc = try? JSONDocument(parsing: bytes), doc.root.member(Self.errorKey) != nil {
            // A record that resumes at a stage stays whole: its delivery alone would replay from
            // the top, past a stage that already did its work.
            if doc.root.member(Self.resumeKey) != nil { return ItemOrigin(form: .raw, bytes: bytes) }
            if let d = doc.root.member(Self.deliveryKey) {
                // Not a delivery replay can read: the record itself is the item.
                return d.kind == .object ? ItemOrigin(form: .delivery, bytes: d.rawBytes) : ItemOrigin(form: .raw, bytes: bytes)
            }
            if let raw = doc.root.member(Self.rawKey) {
                guard let line = try? Self.replayedLine(doc.root, raw: raw) else { return ItemOrigin(form: .raw, bytes: bytes) }
                return ItemOrigin(form: .raw, bytes: line, truncated: doc.root.member(Self.truncatedKey)?.bool == true)
            }
        }
        return ItemOrigin(form: .raw, bytes: bytes)
    }

    /// The line a dead-letter record's `raw` stands for. `raw_base64` (written when the line was
    /// not UTF-8, which `raw` shows with U+FFFD) gives the exact bytes, but only while `raw` still
    /// shows them: an operator who fixed `raw` by hand gets the fixed line replayed.
    static func replayedLine(_ record: JSONValue, raw: JSONValue) throws(Rejection) -> ArraySlice<UInt8> {
        guard let shown = raw.stringBytes else {
            throw Rejection(reason: .invalidDeadLetter, message: "dead-letter record: 'raw' must be a string")
        }
        guard let encoded = record.member(Self.rawBase64Key) else { return shown }
        guard let text = encoded.string, let data = Data(base64Encoded: text) else {
            throw Rejection(reason: .invalidDeadLetter, message: "dead-letter record: 'raw_base64' must be base64 text")
        }
        let exact = Array(data)
        return String(decoding: exact, as: UTF8.self).utf8.elementsEqual(shown) ? exact[...] : shown
    }

    /// `prepared` and `singleLine` (see `RawItem`) hold for the item itself, not for a delivery
    /// replayed from inside a dead-letter record.
    func parseItem(
        _ bytes: ArraySlice<UInt8>, source: SourcePosition, replayDepth: Int, document: consuming JSONDocument? = nil,
        prepared: PreparedDelivery? = nil, parsedBody: JSONDocument? = nil, singleLine: Bool = false
    ) throws -> Event {
        // A function, not a value: its message is formatted only for an item that is too large.
        func tooLarge() -> Rejection { Rejection(reason: .tooLarge, message: ParseStage.tooLargeMessage(maxBytes)) }
        if bytes.count > maxRecordBytes { throw tooLarge() }
        let doc: JSONDocument
        if let document = consume document {
            doc = document
        } else {
            do { doc = try JSONDocument(parsing: bytes) } catch {
                if bytes.count > maxBytes { throw tooLarge() }
                throw Rejection(reason: .invalidJSON, message: error.description + Self.encodingHint(bytes))
            }
        }
        // The tape's first entry rather than `doc.root`: a JSONValue is another copy of the
        // document, on every event's path.
        guard doc.entry(0).kind == .object else {
            throw Rejection(reason: .notAnObject, message: "expected a JSON object (an event or a delivery), found \(Self.kindName(doc.entry(0).kind))")
        }
        let fields = EventFields(doc)
        // Only Lymph's own dead-letter records may be longer than max_bytes (`maxRecordBytes`).
        if bytes.count > maxBytes && !(replayDepth < 4 && fields.error >= 0 && !(fields.headers >= 0 && fields.body >= 0)) { throw tooLarge() }
        if fields.headers >= 0 && fields.body >= 0 {
            if let name = fields.repeatedDeliveryMember { throw Self.repeated(name, context: "delivery") }
            return try parseDelivery(
                doc, headers: JSONValue(document: doc, index: Int(fields.headers)), body: JSONValue(document: doc, index: Int(fields.body)), source: source,
                prepared: prepared, parsedBody: parsedBody)
        }
        if replayDepth < 4, fields.error >= 0 {
            let root = doc.root
            if let resume = root.member(Self.resumeKey) {
                return try resumedEvent(root, resume: resume, source: source)
            }
            if let delivery = root.member(Self.deliveryKey) {
                guard delivery.kind == .object else {
                    throw Rejection(reason: .invalidDeadLetter, message: "dead-letter record: 'delivery' must be an object")
                }
                return try replayedItem(delivery.rawBytes, record: root, read: source, replayDepth: replayDepth)
            }
            if let raw = root.member(Self.rawKey) {
                let rawBytes = try Self.replayedLine(root, raw: raw)
                if root.member(Self.truncatedKey)?.bool == true {
                    throw Rejection(reason: .tooLarge, message: "dead-letter record holds only the beginning of an over-long item; it cannot be replayed")
                }
                return try replayedItem(rawBytes, record: root, read: source, replayDepth: replayDepth)
            }
        }
        if singleLine || !ByteScan.containsLineBreak(bytes) {
            try Self.checkEnvelope(doc, fields, context: "event")
            // The origin is the document's own bytes: nothing extra to keep.
            return Event(document: consume doc, fields: fields, source: source, origin: nil, delivery: nil)
        }
        let eventDoc = try JSONDocument(parsing: Self.withoutLineBreaks(bytes))
        let eventFields = EventFields(eventDoc)
        try Self.checkEnvelope(eventDoc, eventFields, context: "event")
        return Event(document: eventDoc, fields: eventFields, source: source, origin: ItemOrigin(form: .raw, bytes: bytes), delivery: nil)
    }

    /// The item a dead-letter record replays from the top, at the record's first source position:
    /// an event from it, and a rejection of it, name where it first came from, not the kept
    /// `.replay-` file it was read from this time.
    func replayedItem(_ bytes: ArraySlice<UInt8>, record: JSONValue, read source: SourcePosition, replayDepth: Int) throws -> Event {
        let first =
            Self.recordedSource(record).flatMap { given in
                SourceFiles.id(forRecorded: given.file, limit: recordedFileNames).map { SourcePosition(fileID: $0, line: given.line) }
            } ?? source
        do {
            return try parseItem(bytes, source: first, replayDepth: replayDepth + 1)
        } catch var r as Rejection {
            if r.source == nil { r.source = first }
            throw r
        }
    }

    /// The `source` a dead-letter record names, when it names a file and a whole line number.
    static func recordedSource(_ record: JSONValue) -> (file: String, line: Int)? {
        guard let given = record.member("source"), let file = given.member("file")?.string, let line = given.member("line")?.double,
            line >= 0, line < 1e15, line == line.rounded()
        else { return nil }
        return (file, Int(line))
    }

    /// The event a record with `resume` stands for: the event as it entered the stage that failed
    /// it, at its first run's source position, still carrying the original item for the next
    /// dead letter. The runner finds the stage (`PipelineRunner.resolveResumes`).
    func resumedEvent(_ record: JSONValue, resume: JSONValue, source: SourcePosition) throws -> Event {
        func invalid(_ what: String) -> Rejection {
            Rejection(reason: .invalidDeadLetter, message: "dead-letter record: 'resume' \(what)")
        }
        guard resume.kind == .object else { throw invalid("must be an object") }
        guard let stage = resume.member("stage")?.string, !stage.isEmpty else { throw invalid("needs the name of a stage in 'stage'") }
        guard let kind = resume.member("kind")?.string, !kind.isEmpty else { throw invalid("needs the stage's kind in 'kind'") }
        guard let event = resume.member("event"), event.kind == .object else { throw invalid("needs the event object in 'event'") }
        var claims: [ResumePoint.Claim] = []
        if let list = resume.member("claims") {
            guard let elements = list.elements else { throw invalid("'claims' must be a list") }
            for claim in elements {
                guard let dedup = claim.member("stage")?.string, let text = claim.member("key")?.string,
                    let key = Data(base64Encoded: text)
                else { throw invalid("'claims' must hold {\"stage\", \"key\" (base64)} objects") }
                claims.append(ResumePoint.Claim(stage: dedup, key: Array(key)))
            }
        }
        let eventBytes = event.rawBytes
        if eventBytes.count > maxBytes {
            throw Rejection(reason: .tooLarge, message: "resumed event is larger than max_bytes (\(maxBytes) bytes)")
        }
        let doc = try JSONDocument(parsing: eventBytes)
        let fields = EventFields(doc)
        // A resumed event is one a stage of this pipeline passed on, as it was then.
        try Self.checkEnvelope(doc, fields, context: "resumed event", repeatedMembers: true)
        let origin: ItemOrigin
        if let delivery = record.member(Self.deliveryKey), delivery.kind == .object {
            origin = ItemOrigin(form: .delivery, bytes: delivery.rawBytes)
        } else if let raw = record.member(Self.rawKey) {
            origin = ItemOrigin(form: .raw, bytes: try Self.replayedLine(record, raw: raw))
        } else {
            // The record is its own item: a later dead letter still holds the resume point.
            origin = ItemOrigin(form: .raw, bytes: eventBytes)
        }
        // The first source position, as the record gives it (where this record was read, when
        // it gives none).
        let first = Self.recordedSource(record) ?? (file: source.file, line: source.line)
        let point = ResumePoint(stage: stage, kind: kind, claims: claims)
        if let resumeSeal {
            // Unsealed, it would carry an event past `verify` that no secret signed.
            guard let seal = resume.member("seal")?.string, resumeSeal.opens(seal, point, event: eventBytes, file: first.file, line: first.line) else {
                throw Rejection(
                    reason: .invalidDeadLetter,
                    message:
                        "dead-letter record: its resume point is not sealed with a secret of this pipeline's verify stage (a record lymph did not write, one edited since, or one sealed with a secret no longer listed), so it cannot skip verify; remove 'resume' to replay its delivery from the top"
                )
            }
        }
        // File names from records are numbered only while few: a stream of records naming a new
        // file each would otherwise grow the table without end. Past that, the event keeps the
        // position it was read at, which is true too, and the record there names the first.
        let position = SourceFiles.id(forRecorded: first.file, limit: recordedFileNames).map { SourcePosition(fileID: $0, line: first.line) } ?? source
        var e = Event(document: doc, fields: fields, source: position, origin: origin, delivery: nil)
        e.resumeRequest = ResumeRequest(point)
        return e
    }

    /// `prepared`: what the process that received it already did (see `PreparedDelivery`); its
    /// parsed body is used only when it has no line breaks to strip. `parsedBody`: the body
    /// string unescaped and parsed with the rest of its batch (`parsedBodies`).
    func parseDelivery(
        _ doc: JSONDocument, headers: JSONValue, body: JSONValue, source: SourcePosition,
        prepared: PreparedDelivery? = nil, parsedBody: JSONDocument? = nil
    ) throws -> Event {
        guard headers.kind == .object else {
            throw Rejection(reason: .invalidDelivery, message: "delivery 'headers' must be an object of header names to values")
        }
        guard body.kind == .string else {
            throw Rejection(reason: .invalidDelivery, message: "delivery 'body' must be a string holding the raw request body")
        }
        // The body the server parsed, when there are no line breaks to strip from it; else the
        // body string, unescaped (and kept, so no stage unescapes it again).
        let handed = prepared?.body.flatMap { ByteScan.containsLineBreak($0.bytes) ? nil : $0 }
        let unescapedBody = handed == nil ? parsedBody?.bytes ?? body.stringBytes ?? [] : nil
        if (handed?.bytes.count ?? unescapedBody?.count ?? 0) > maxBytes {
            throw Rejection(reason: .tooLarge, message: "delivery body is larger than max_bytes (\(maxBytes) bytes)")
        }
        let eventDoc: JSONDocument
        if let handed {
            eventDoc = handed
        } else if let parsedBody {
            eventDoc = parsedBody
        } else {
            do { eventDoc = try JSONDocument(parsing: Self.withoutLineBreaks(unescapedBody ?? [])) } catch {
                throw Rejection(reason: .invalidJSON, message: "delivery body: \(error.description)")
            }
        }
        guard eventDoc.entry(0).kind == .object else {
            throw Rejection(reason: .notAnObject, message: "delivery body: expected a JSON object, found \(Self.kindName(eventDoc.entry(0).kind))")
        }
        let fields = EventFields(eventDoc)
        try Self.checkEnvelope(eventDoc, fields, context: "delivery body")
        return Event(
            document: consume eventDoc, fields: fields, source: source, origin: nil,
            delivery: Delivery(
                document: doc, headersIndex: headers.index, bodyIndex: body.index, unescapedBody: unescapedBody,
                prepared: prepared))
    }

    /// Why parse would refuse `doc` as an event (its reason and message), or nil: `lymph serve`
    /// answers 400 with it, so a sender learns at once what the worker would only have put in the
    /// dead letters after a 202.
    package static func envelopeProblem(_ doc: JSONDocument) -> (reason: String, message: String)? {
        do {
            try checkEnvelope(doc, EventFields(doc), context: "the event")
            return nil
        } catch let r as Rejection {
            return (r.reason.rawValue, r.message)
        } catch {
            return (Reason.invalid.rawValue, "\(error)")
        }
    }

    /// A member of the envelope given twice: Lymph reads the first, and a plugin or receiver
    /// reading the last would see another event (another id to answer, another type).
    static func repeated(_ name: String, context: String) -> Rejection {
        Rejection(
            reason: .invalidField,
            message: "\(context) has '\(name)' more than once: JSON readers differ on which one counts (lymph reads the first, many the last); send it once")
    }

    /// `repeatedMembers`: a member given twice is let through (see `EventFields.repeated`).
    static func checkEnvelope(_ doc: JSONDocument, _ fields: EventFields, context: String, repeatedMembers: Bool = false) throws {
        if !repeatedMembers, let name = fields.repeatedEventMember { throw repeated(name, context: context) }
        func field(_ index: Int32, _ name: String) throws -> Int {
            guard index >= 0 else {
                throw Rejection(reason: .missingField, message: "\(context) has no '\(name)' field")
            }
            return Int(index)
        }
        func value(_ i: Int) -> JSONValue { JSONValue(document: doc, index: i) }
        // Read from the tape and the bytes in place: this runs for every event, and a slice of
        // the bytes would retain and release their buffer each time. A string whose text is not
        // empty is not empty decoded either (every escape stands for at least one byte).
        func isNonEmptyString(_ i: Int) -> Bool {
            let e = doc.entry(i)
            return e.kind == .string && e.end > e.start
        }
        let id = try field(fields.id, "id")
        guard isNonEmptyString(id) else {
            throw Rejection(reason: .invalidField, message: "\(context): 'id' must be a non-empty string, found \(describe(value(id)))")
        }
        let type = try field(fields.type, "type")
        guard isNonEmptyString(type) else {
            throw Rejection(reason: .invalidField, message: "\(context): 'type' must be a non-empty string, found \(describe(value(type)))")
        }
        let created = try field(fields.createdAt, "created_at")
        guard isTimestamp(doc, at: created) else {
            throw Rejection(
                reason: .invalidField,
                message: "\(context): 'created_at' must be an RFC 3339 timestamp such as 2026-06-01T12:00:00Z, found \(describe(value(created)))")
        }
        let data = try field(fields.data, "data")
        guard doc.entry(data).kind == .object else {
            throw Rejection(reason: .invalidField, message: "\(context): 'data' must be an object, found \(describe(value(data)))")
        }
    }

    /// Whether the value at `index` is an RFC 3339 timestamp.
    static func isTimestamp(_ doc: JSONDocument, at index: Int) -> Bool {
        let e = doc.entry(index)
        guard e.kind == .string else { return false }
        if e.hasEscapes { return doc.stringBytes(at: index).flatMap(Timestamp.parse) != nil }
        return doc.bytes.withUnsafeBufferPointer { b in
            Timestamp.isValid(buffer: UnsafeBufferPointer(rebasing: b[Int(e.start)..<Int(e.end)]))
        }
    }

    static func describe(_ v: JSONValue) -> String {
        let raw = v.rawBytes
        let text = String(decoding: raw.prefix(60), as: UTF8.self)
        return raw.count > 60 ? "\(text)…" : text
    }

    static func kindName(_ k: JSONTapeEntry.Kind) -> String {
        switch k {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .number: return "a number"
        case .true, .false: return "a boolean"
        case .null: return "null"
        }
    }

    /// Output is one event a line, so a pretty-printed event loses its line breaks (and only them).
    static func withoutLineBreaks(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        guard ByteScan.containsLineBreak(bytes) else { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        for b in bytes where b != 0x0A && b != 0x0D { out.append(b) }
        return out[...]
    }
}
