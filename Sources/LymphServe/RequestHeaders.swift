import HTTPTypes

/// The request headers a request's handling reads, found in one pass over the fields.
///
/// `HTTPFields`' subscript by name walks the fields and joins the values of each lookup
/// (`joined(separator:)`, an allocation even for one value); four lookups a request were 4% of
/// the event loop's time. A header sent more than once is joined with ", " as that subscript
/// does, so a doubled signature header still fails verification rather than picking one.
struct RequestHeaders {
    var contentLength: String?
    var contentType: String?
    var signature: String?
    var connection: String?

    init(_ fields: HTTPFields) {
        for field in fields {
            switch field.name {
            case .contentLength: Self.add(field.value, to: &contentLength)
            case .contentType: Self.add(field.value, to: &contentType)
            case WebhookServer.signatureField: Self.add(field.value, to: &signature)
            case .connection: Self.add(field.value, to: &connection)
            default: continue
            }
        }
    }

    /// `Connection: close` from the client: the connection ends after this request's answer.
    var asksToClose: Bool {
        guard let connection else { return false }
        return connection.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces).lowercased() == "close" }
    }

    private static func add(_ value: String, to slot: inout String?) {
        if let existing = slot { slot = existing + ", " + value } else { slot = value }
    }
}
