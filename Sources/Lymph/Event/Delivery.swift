/// The request side of a delivery: its headers and the exact body bytes that were signed.
///
/// A class, immutable: an event holds one by reference, so copying or moving an event (which
/// every stage does) moves one pointer, not the delivery's document and body.
public final class Delivery: Sendable {
    /// The delivery object (`{"headers": {...}, "body": "..."}`).
    public let document: JSONDocument
    /// Tape index of the `headers` object inside `document`.
    let headersIndex: Int
    /// Tape index of the `body` string inside `document`.
    let bodyIndex: Int
    /// The body already unescaped, when the parse stage had to (kept, so no stage does it again).
    let unescapedBody: ArraySlice<UInt8>?
    /// What `lymph serve` already did with it before spooling it (`RawItem.prepared`); nil for
    /// every delivery read from a file or replayed.
    let prepared: PreparedDelivery?

    init(document: JSONDocument, headersIndex: Int, bodyIndex: Int, unescapedBody: ArraySlice<UInt8>?, prepared: PreparedDelivery? = nil) {
        self.document = document
        self.headersIndex = headersIndex
        self.bodyIndex = bodyIndex
        self.unescapedBody = unescapedBody
        self.prepared = prepared
    }

    /// The body exactly as sent (the signature covers these bytes). Unescaped when asked for, if
    /// parsing did not need it: a webhook `lymph serve` already verified never does.
    public var body: ArraySlice<UInt8> { unescapedBody ?? document.stringBytes(at: bodyIndex) ?? [] }

    /// When `lymph serve` received it (`received_at`, seconds since the epoch); nil for
    /// deliveries captured elsewhere.
    public var receivedAt: Double? {
        document.root.member("received_at")?.stringBytes.flatMap(Timestamp.parse)
    }

    /// The first header named `name` (ASCII case-insensitive), as a string.
    public func header(_ name: String) -> String? {
        headerBytes(Array(name.lowercased().utf8)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The value bytes of the first header named `lowercasedName` (compared ignoring ASCII case);
    /// nil when absent or not a string.
    func headerBytes(_ lowercasedName: [UInt8]) -> ArraySlice<UInt8>? {
        let end = Int(document.entry(headersIndex).next)
        var i = headersIndex + 1
        while i < end {
            if let k = document.stringBytes(at: i), k.count == lowercasedName.count {
                var equal = true
                var n = 0
                for b in k {
                    if lowercaseASCII(b) != lowercasedName[n] {
                        equal = false
                        break
                    }
                    n += 1
                }
                if equal { return document.stringBytes(at: i + 1) }
            }
            i = Int(document.entry(i + 1).next)
        }
        return nil
    }

    private func lowercaseASCII(_ b: UInt8) -> UInt8 {
        b >= 0x41 && b <= 0x5A ? b + 0x20 : b
    }
}
