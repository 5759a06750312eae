/// One item as the reader found it, before parsing: a line, an array element or a document.
public struct RawItem: Sendable {
    public var bytes: ArraySlice<UInt8>
    public var source: SourcePosition
    /// The item was longer than the limit; `bytes` holds only its beginning.
    public var oversize: Bool
    /// Known to hold no line break (CR or LF), so it is written out as it is; false when not
    /// known.
    var singleLine = false
    /// What `lymph serve` already did with this delivery (parsed its body, checked its
    /// signature); nil for everything read from a file, stdin or the spool file. Set only by
    /// `SpoolSource`, in memory (see `PreparedDelivery`).
    package var prepared: PreparedDelivery?

    public init(bytes: ArraySlice<UInt8>, source: SourcePosition, oversize: Bool = false) {
        self.bytes = bytes
        self.source = source
        self.oversize = oversize
    }
}
