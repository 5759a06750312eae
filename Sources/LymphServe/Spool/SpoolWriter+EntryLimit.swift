import Lymph

extension SpoolWriter {
    /// The largest spool entry a webhook body of `maxBody` bytes makes: the body as a JSON
    /// string (escaping can make it up to six times longer) plus its headers and the entry's
    /// other fields.
    public static func maxEntryBytes(maxBody: Int) -> Int { 6 * maxBody + 4096 }

    /// `spec`'s parse stage as `lymph serve` runs it: `max_bytes` raised, when it is smaller, to
    /// take any entry whose body passed `serve.max_body` (else accepted webhooks would become
    /// dead letters).
    public static func parseStage(for spec: PipelineSpec) -> ParseStage {
        let limit = maxEntryBytes(maxBody: spec.serve.maxBody)
        return spec.parse.maxBytes < limit ? ParseStage(name: spec.parse.name, maxBytes: limit) : spec.parse
    }
}
