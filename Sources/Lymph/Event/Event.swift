/// An IMMUNE event on its way through a pipeline.
///
/// `document` holds the event's JSON bytes and index; the parse stage has checked that it is an
/// object with `id`, `type`, `created_at` and `data`. Stages that change an event build a new
/// document; untouched events are written out as the bytes they arrived as.
public struct Event: Sendable {
    /// The event's JSON: its bytes and their index. Set once: `fields` are positions on its tape.
    public private(set) var document: JSONDocument
    /// Where the item was read: file (or `stdin`) and line.
    public var source: SourcePosition
    /// Present when the event arrived as a captured webhook request.
    public var delivery: Delivery?
    /// The item as read, when it is not simply `document.bytes` or the delivery (see `origin`).
    /// Kept optional so the common case copies one reference less per event.
    var storedOrigin: ItemOrigin?
    /// Dedup keys this event holds until it leaves the pipeline (see `DedupStage`).
    var claims: [DedupClaim] = []
    /// Tape indices of the envelope fields, found once (-1 when absent).
    let fields: EventFields
    /// Set by parse for a dead-letter record that resumes at a stage (see `ResumePoint`).
    var resumeRequest: ResumeRequest?
    /// Index (in the pipeline's stages) of the stage a replayed event re-enters at: the stages
    /// before it let the event pass untouched. -1 for an event that runs every stage.
    var resumeAt: Int32 = -1

    /// An event over `document`, read as `origin`; `delivery` when it came as a captured webhook
    /// request.
    public init(document: JSONDocument, source: SourcePosition, origin: ItemOrigin, delivery: Delivery? = nil) {
        self.init(document: document, fields: EventFields(document), source: source, origin: origin, delivery: delivery)
    }

    init(document: JSONDocument, fields: EventFields, source: SourcePosition, origin: ItemOrigin?, delivery: Delivery?) {
        self.document = document
        self.fields = fields
        self.source = source
        self.storedOrigin = origin
        self.delivery = delivery
    }

    /// The item exactly as it was read (for dead letters and replay).
    public var origin: ItemOrigin {
        get {
            if let storedOrigin { return storedOrigin }
            if let delivery { return ItemOrigin(form: .delivery, bytes: delivery.document.bytes) }
            return ItemOrigin(form: .raw, bytes: document.bytes)
        }
        set { storedOrigin = newValue }
    }

    /// The top-level value: an object, once parse has checked it.
    public var root: JSONValue { document.root }

    /// The value at `path`, or nil when the event has none there.
    public func value(at path: JSONPath) -> JSONValue? {
        // Most paths start at an envelope member (`id`, `data.…`), which parse found already:
        // start there instead of walking the top-level keys again.
        if case .key(let first)? = path.components.first, let member = fields.index(ofMember: first) {
            guard member >= 0 else { return nil }
            return document.index(at: path.components.dropFirst(), from: Int(member)).map { JSONValue(document: document, index: $0) }
        }
        return document.index(at: path).map { JSONValue(document: document, index: $0) }
    }

    /// The `type` string's bytes (validated present by parse).
    public var typeBytes: ArraySlice<UInt8> {
        fields.type >= 0 ? document.stringBytes(at: Int(fields.type)) ?? [] : []
    }

    /// The `id` string, or empty when there is none.
    public var id: String {
        guard fields.id >= 0, let b = document.stringBytes(at: Int(fields.id)) else { return "" }
        return String(decoding: b, as: UTF8.self)
    }

    /// Whether the type matches `m`, read from the bytes in place: every event is filtered by
    /// type, and a slice of the bytes (`typeBytes`) retains and releases their buffer.
    func typeMatches(_ m: TypeMatcher) -> Bool {
        guard fields.type >= 0, case let e = document.entry(Int(fields.type)), e.kind == .string, !e.hasEscapes else {
            return m.matches(typeBytes)
        }
        return document.bytes.withUnsafeBufferPointer { b in m.matches(UnsafeBufferPointer(rebasing: b[Int(e.start)..<Int(e.end)])) }
    }

    /// The `created_at` string's bytes, or nil when it is absent or not a string.
    public var createdAtBytes: ArraySlice<UInt8>? {
        fields.createdAt >= 0 ? document.stringBytes(at: Int(fields.createdAt)) : nil
    }
}

/// Where the top-level members that Lymph reads sit on an object's tape: one pass over the keys.
struct EventFields: Sendable {
    var id: Int32 = -1
    var type: Int32 = -1
    var createdAt: Int32 = -1
    var data: Int32 = -1
    var headers: Int32 = -1
    var body: Int32 = -1
    var error: Int32 = -1
    /// The envelope's members that appear more than once (`Repeated`): Lymph reads the first,
    /// and many JSON readers (Python's, jq, Go's) the last.
    var repeated: UInt8 = 0

    /// Bits of `repeated`.
    enum Repeated {
        static let id: UInt8 = 1, type: UInt8 = 2, createdAt: UInt8 = 4, data: UInt8 = 8, headers: UInt8 = 16, body: UInt8 = 32
    }

    /// The first of an event's members (`id`, `type`, `created_at`, `data`) given more than once.
    var repeatedEventMember: String? {
        Self.first(of: repeated, [(Repeated.id, "id"), (Repeated.type, "type"), (Repeated.createdAt, "created_at"), (Repeated.data, "data")])
    }

    /// The first of a delivery's members (`headers`, `body`) given more than once.
    var repeatedDeliveryMember: String? { Self.first(of: repeated, [(Repeated.headers, "headers"), (Repeated.body, "body")]) }

    private static func first(of bits: UInt8, _ names: [(UInt8, String)]) -> String? {
        bits == 0 ? nil : names.first { bits & $0.0 != 0 }?.1
    }

    /// Borrowed: an initializer's parameters are otherwise owned, and every parsed event would
    /// pay a copy of its document (a retain and release of its bytes and tape) to be read here.
    init(_ document: borrowing JSONDocument) {
        guard document.tape.first?.kind == .object else { return }
        document.tape.withUnsafeBufferPointer { t in
            document.bytes.withUnsafeBufferPointer { b in
                let end = Int(t[0].next)
                var i = 1
                while i < end {
                    let k = t[i]
                    let value = Int32(i + 1)
                    if !k.hasEscapes {
                        let s = Int(k.start)
                        switch Int(k.end - k.start) {
                        case 2 where b[s] == 0x69 && b[s + 1] == 0x64:  // id
                            if id < 0 { id = value } else { repeated |= Repeated.id }
                        case 4 where Self.equal(b, s, "type"):
                            if type < 0 { type = value } else { repeated |= Repeated.type }
                        case 4 where Self.equal(b, s, "data"):
                            if data < 0 { data = value } else { repeated |= Repeated.data }
                        case 4 where Self.equal(b, s, "body"):
                            if body < 0 { body = value } else { repeated |= Repeated.body }
                        case 5 where Self.equal(b, s, "error"):
                            if error < 0 { error = value }
                        case 7 where Self.equal(b, s, "headers"):
                            if headers < 0 { headers = value } else { repeated |= Repeated.headers }
                        case 10 where Self.equal(b, s, "created_at"):
                            if createdAt < 0 { createdAt = value } else { repeated |= Repeated.createdAt }
                        default: break
                        }
                    } else if let key = document.stringBytes(at: i) {
                        // Escaped keys are rare; decode and compare.
                        let k = Array(key)
                        if k == EventField.id { if id < 0 { id = value } else { repeated |= Repeated.id } }
                        if k == EventField.type { if type < 0 { type = value } else { repeated |= Repeated.type } }
                        if k == EventField.data { if data < 0 { data = value } else { repeated |= Repeated.data } }
                        if k == EventField.body { if body < 0 { body = value } else { repeated |= Repeated.body } }
                        if k == EventField.error && error < 0 { error = value }
                        if k == EventField.headers { if headers < 0 { headers = value } else { repeated |= Repeated.headers } }
                        if k == EventField.createdAt { if createdAt < 0 { createdAt = value } else { repeated |= Repeated.createdAt } }
                    }
                    i = Int(t[i + 1].next)
                }
            }
        }
    }

    /// The tape index of top-level member `key`'s value when it is one this finds (-1 when the
    /// event has none); nil for any other key, which is looked up in the document.
    func index(ofMember key: [UInt8]) -> Int32? {
        switch key.count {
        case 2 where key == EventField.id: id
        case 4 where key == EventField.type: type
        case 4 where key == EventField.data: data
        case 10 where key == EventField.createdAt: createdAt
        default: nil
        }
    }

    @inline(__always)
    static func equal(_ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ key: StaticString) -> Bool {
        // StaticString: no reference counting on this per-event path.
        let k = key.utf8Start
        for n in 0..<key.utf8CodeUnitCount where b[start + n] != k[n] { return false }
        return true
    }
}

/// Field names of the IMMUNE envelope, as bytes for fast lookups.
enum EventField {
    static let id = Array("id".utf8)
    static let type = Array("type".utf8)
    static let createdAt = Array("created_at".utf8)
    static let data = Array("data".utf8)
    static let headers = Array("headers".utf8)
    static let body = Array("body".utf8)
    static let error = Array("error".utf8)
    /// Stream plugins' answers that replace or fail an event name it with these.
    static let answerTo = Array("answer_to".utf8)
    static let events = Array("events".utf8)
}
