import HTTPTypes

/// The request headers a webhook's handling reads, found in one pass over the fields.
///
/// `HTTPFields`' subscript by name walks the fields and joins the values of each lookup
/// (`joined(separator:)`, an allocation even for one value); four lookups a request were 4% of
/// the event loop's time. A header sent more than once is joined with ", " as that subscript
/// does, so a doubled signature header still fails verification rather than picking one.
struct RequestHeaders {
    var contentLength: String?
    var contentType: String?
    var signature: String?

    init(_ fields: HTTPFields) {
        for field in fields {
            switch field.name {
            case .contentLength: Self.add(field.value, to: &contentLength)
            case .contentType: Self.add(field.value, to: &contentType)
            case WebhookServer.signatureField: Self.add(field.value, to: &signature)
            default: continue
            }
        }
    }

    private static func add(_ value: String, to slot: inout String?) {
        if let existing = slot { slot = existing + ", " + value } else { slot = value }
    }
}
