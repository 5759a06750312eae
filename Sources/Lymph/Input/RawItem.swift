/// One item as the reader found it, before parsing: a line, an array element or a document.
public struct RawItem: Sendable {
    public var bytes: ArraySlice<UInt8>
    public var source: SourcePosition
    /// The item was longer than the limit; `bytes` holds only its beginning.
    public var oversize: Bool
    /// The signature of this delivery was already checked, with the secrets of the pipeline's
    /// only verify stage, by the process that read it (`lymph serve` before spooling it); that
    /// stage then skips the HMAC. Set only by `SpoolSource`, in memory: nothing read from a
    /// file or a request can set it, and it is not public API.
    package var signatureChecked = false
    /// The delivery's body as `lymph serve` parsed it before spooling it: the same bytes the
    /// item's `body` string holds (only valid UTF-8 bodies are handed on), so the parse stage
    /// neither unescapes nor parses the body again. Set only by `SpoolSource`, in memory.
    package var parsedBody: JSONDocument?

    public init(bytes: ArraySlice<UInt8>, source: SourcePosition, oversize: Bool = false) {
        self.bytes = bytes
        self.source = source
        self.oversize = oversize
    }
}
