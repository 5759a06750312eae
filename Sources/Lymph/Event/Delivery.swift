/// The request side of a delivery: its headers and the exact body bytes that were signed.
public struct Delivery: Sendable {
    /// The delivery object (`{"headers": {...}, "body": "..."}`).
    public let document: JSONDocument
    /// Tape index of the `headers` object inside `document`.
    let headersIndex: Int
    /// The body exactly as sent (the signature covers these bytes).
    public let body: ArraySlice<UInt8>

    init(document: JSONDocument, headersIndex: Int, body: ArraySlice<UInt8>) {
        self.document = document
        self.headersIndex = headersIndex
        self.body = body
    }

    /// The first header named `name` (ASCII case-insensitive), as a string.
    public func header(_ name: String) -> String? {
        let wanted = Array(name.lowercased().utf8)
        let headers = JSONValue(document: document, index: headersIndex)
        for (key, value) in JSONMembers(document: headers.document, container: headers.index) {
            guard let k = key.stringBytes, k.count == wanted.count else { continue }
            if zip(k, wanted).allSatisfy({ lowercaseASCII($0) == $1 }) {
                return value.string
            }
        }
        return nil
    }

    private func lowercaseASCII(_ b: UInt8) -> UInt8 {
        b >= 0x41 && b <= 0x5A ? b + 0x20 : b
    }
}
