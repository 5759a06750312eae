import Synchronization

/// Entries `lymph serve` has just committed to the spool, handed to the pipeline worker in
/// memory, so the worker does not read back from the spool file what the writer still holds.
///
/// The spool file stays the truth: the worker takes from here only a run that continues
/// exactly where it left off (sequence numbers are consecutive), and reads the file otherwise
/// (after a restart, or when this buffer was full and entries were left out of it). "Nothing
/// newer" assumes every commit to the spool is offered here (`SpoolWriter` does); the worker
/// reads the file after each wait all the same.
public final class SpoolHandoff: Sendable {
    struct State {
        var entries = FIFO<Entry>()
        var bytes = 0
        /// The newest sequence number offered, kept or not.
        var lastOffered: Int64?
    }

    /// A committed entry, with its body as the server parsed it when it has that.
    public typealias Entry = (seq: Int64, item: [UInt8], body: JSONDocument?)

    let state = Mutex(State())
    /// Bounds on what waits here; past them, new entries are left to be read from the file.
    let maxEntries: Int
    let maxBytes: Int

    /// A handoff that holds at most `maxEntries` entries and `maxBytes` of items and parsed bodies.
    public init(maxEntries: Int = 8192, maxBytes: Int = 16 << 20) {
        self.maxEntries = maxEntries
        self.maxBytes = maxBytes
    }

    /// Called by the spool's writer after `items` committed as `seqs` (same order); `bodies`,
    /// when given, holds each one's parsed body or nil (see `PreparedDelivery.body`).
    public func offer(seqs: [Int64], items: [[UInt8]], bodies: [JSONDocument?] = []) {
        state.withLock { s in
            if let last = seqs.last { s.lastOffered = last }
            // Stops at the first entry that does not fit: what is kept stays consecutive, and
            // the rest of the group is read from the file.
            for (i, (seq, item)) in zip(seqs, items).enumerated() {
                let body = i < bodies.count ? bodies[i] : nil
                let size = Self.size(item, body)
                guard s.entries.count < maxEntries, s.bytes + size <= maxBytes else { return }
                s.entries.append((seq, item, body))
                s.bytes += size
            }
        }
    }

    static func size(_ item: [UInt8], _ body: JSONDocument?) -> Int { item.count + (body?.memorySize ?? 0) }

    /// Up to `limit` entries (and about `maxBytes`) that follow `seq` without a gap, oldest
    /// first. Empty when `seq` is the newest entry committed (nothing to read anywhere); nil
    /// when the entry after `seq` is not here (read the file instead). Entries at or before
    /// `seq` are dropped: the worker has read them from the file.
    func take(after seq: Int64, limit: Int, maxBytes: Int) -> [Entry]? {
        state.withLock { s in
            while let first = s.entries.first, first.seq <= seq {
                _ = s.entries.popFirst()
                s.bytes -= Self.size(first.item, first.body)
            }
            guard s.entries.first?.seq == seq + 1 else { return s.entries.isEmpty && s.lastOffered == seq ? [] : nil }
            var out: [Entry] = []
            var bytes = 0
            var next = seq + 1
            while out.count < limit, bytes < maxBytes, let first = s.entries.first, first.seq == next {
                _ = s.entries.popFirst()
                s.bytes -= Self.size(first.item, first.body)
                bytes += first.item.count
                out.append(first)
                next += 1
            }
            return out
        }
    }
}
