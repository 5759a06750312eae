import CZlib

/// Inflates a gzip stream (RFC 1952) of one or more members, with bounded memory.
///
/// Compressed bytes come in through `refill` into a fixed 64 KiB buffer; decompressed bytes go
/// straight into the caller's buffer, as many as it has room for. zlib itself keeps its 32 KiB
/// window and state, so memory stays at about 110 KiB however much a stream expands (a
/// decompression bomb only makes more calls). Members that follow one another (`cat a.gz b.gz`)
/// are one stream. Used by one thread at a time.
final class GzipInflater {
    /// The compressed bytes read at a time.
    static let inputSize = 64 * 1024
    /// gzip's magic bytes, which every member starts with.
    static let magic: [UInt8] = [0x1F, 0x8B]

    /// Why the stream cannot be inflated further: corrupt data or the end of the input inside a
    /// member. `offset` is the compressed byte where it was found, from the start of the input.
    struct Damage: Error, Equatable, CustomStringConvertible {
        enum Code: Equatable { case corrupt, truncated }
        let code: Code
        let offset: Int
        let detail: String

        var description: String {
            switch code {
            case .corrupt: return "gzip data is corrupt at compressed byte \(offset) (\(detail))"
            case .truncated: return "gzip data is truncated: it ends inside a member at compressed byte \(offset) (\(detail))"
            }
        }
    }

    private let stream: UnsafeMutablePointer<z_stream>
    private let input: UnsafeMutableRawBufferPointer
    /// Compressed bytes inflate has consumed, over every member.
    private(set) var consumed = 0
    /// Members inflated to their end.
    private(set) var members = 0
    /// No member is under way: before the first byte of one (the start, or right after a
    /// member's end). The input may end only here.
    private(set) var atMemberBoundary = true
    /// The last call filled the output: zlib may hold more without new input.
    private var outputPending = false

    init() {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        input = .allocate(byteCount: Self.inputSize, alignment: 16)
        // 15 + 16: a 32 KiB window, gzip wrapping only (no zlib or raw deflate).
        let status = inflateInit2_(stream, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        // Only a failed allocation of zlib's state can make this fail.
        precondition(status == Z_OK, "zlib inflateInit2 failed (\(status))")
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
        input.deallocate()
    }

    /// Whether `inflate` can do nothing more until `refill` gives it compressed bytes.
    var needsInput: Bool { stream.pointee.avail_in == 0 && !outputPending }

    /// Gives the inflater compressed bytes: `read` fills the buffer it is handed (up to 64 KiB)
    /// and returns how many it wrote, 0 at the end of the input or negative on an error, which
    /// is returned as is. Only when `needsInput`.
    func refill(_ read: (UnsafeMutableRawBufferPointer) -> Int) -> Int {
        precondition(stream.pointee.avail_in == 0, "refill while compressed bytes are left")
        let n = read(input)
        if n > 0 {
            stream.pointee.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_in = UInt32(n)
        }
        return n
    }

    /// Inflates into `out` as far as the compressed bytes given so far go; `produced` is the
    /// bytes written (fewer than `out.count` when it needs input), also when it throws. A
    /// member's end is crossed into the next one. Throws `Damage` for data that is not gzip or
    /// fails its checks (CRC-32, length).
    func inflate(into out: UnsafeMutableRawBufferPointer, produced: inout Int) throws(Damage) {
        produced = 0
        while produced < out.count {
            if stream.pointee.avail_in == 0 && !outputPending { return }
            let space = out.count - produced
            stream.pointee.next_out = (out.baseAddress! + produced).assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = UInt32(space)
            let before = Int(stream.pointee.avail_in)
            let startedAtBoundary = atMemberBoundary
            let status = CZlib.inflate(stream, Z_NO_FLUSH)
            produced += space - Int(stream.pointee.avail_out)
            let used = before - Int(stream.pointee.avail_in)
            consumed += used
            if used > 0 { atMemberBoundary = false }
            switch status {
            case Z_OK:
                outputPending = stream.pointee.avail_out == 0
            case Z_STREAM_END:
                // The member's trailer checked out (CRC-32 and length); another may follow.
                members += 1
                atMemberBoundary = true
                outputPending = false
                inflateReset(stream)
            case Z_BUF_ERROR:
                // No progress possible without more input (not an error in zlib's terms).
                outputPending = false
                return
            default:
                let detail = stream.pointee.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                throw Damage(
                    code: .corrupt, offset: consumed,
                    detail: startedAtBoundary && members > 0 ? "bytes after gzip member \(members) are not another member: \(detail)" : detail)
            }
        }
    }

    /// The damage to report when the input ends here, or nil at a member boundary (a clean
    /// end).
    func endOfInput() -> Damage? {
        atMemberBoundary ? nil : Damage(code: .truncated, offset: consumed, detail: "\(members) whole member\(members == 1 ? "" : "s") before it")
    }
}
