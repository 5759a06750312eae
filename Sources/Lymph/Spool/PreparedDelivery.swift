/// What `lymph serve` already did with a delivery before spooling it, handed to its worker in
/// memory with the entry (`RawItem.prepared`), so the pipeline does not do it twice.
///
/// Only `SpoolSource` attaches it, and only to entries taken from the in-memory handoff. It is
/// never encoded: nothing read from a file, a request or a dead-letter record can carry it, so
/// an entry read back from the spool file, or replayed, is parsed and verified in full.
public struct PreparedDelivery: Sendable {
    /// The request body as the server parsed it: exactly the bytes the entry's `body` string
    /// holds (the server hands it on only for a body that was valid UTF-8). The parse stage takes
    /// it instead of unescaping the body string and parsing it again, unless it holds line
    /// breaks to strip. Nil when the server has none to give.
    package let body: JSONDocument?
    /// The server checked the signature with the secrets of the running pipeline's only verify
    /// stage: that stage skips the HMAC (and still judges `max_age`).
    package let signatureChecked: Bool

    package init(body: JSONDocument?, signatureChecked: Bool) {
        self.body = body
        self.signatureChecked = signatureChecked
    }
}
