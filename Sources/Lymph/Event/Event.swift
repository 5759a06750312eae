/// An IMMUNE event on its way through a pipeline.
///
/// `document` holds the event's JSON bytes and index; the parse stage has checked that it is an
/// object with `id`, `type`, `created_at` and `data`. Stages that change an event build a new
/// document; untouched events are written out as the bytes they arrived as.
public struct Event: Sendable {
    public var document: JSONDocument
    public var source: SourcePosition
    public var origin: ItemOrigin
    /// Present when the event arrived as a captured webhook request.
    public var delivery: Delivery?
    /// Dedup keys this event holds until it leaves the pipeline (see `DedupStage`).
    var claims: [DedupClaim] = []

    public init(document: JSONDocument, source: SourcePosition, origin: ItemOrigin, delivery: Delivery? = nil) {
        self.document = document
        self.source = source
        self.origin = origin
        self.delivery = delivery
    }

    public var root: JSONValue { document.root }

    public func value(at path: JSONPath) -> JSONValue? { document.root.value(at: path) }

    /// The `type` string's bytes (validated present by parse).
    public var typeBytes: ArraySlice<UInt8> { document.root.member(EventField.type)?.stringBytes ?? [] }

    public var id: String { document.root.member(EventField.id)?.string ?? "" }
}

/// Field names of the IMMUNE envelope, as bytes for fast lookups.
enum EventField {
    static let id = Array("id".utf8)
    static let type = Array("type".utf8)
    static let createdAt = Array("created_at".utf8)
    static let data = Array("data".utf8)
}
