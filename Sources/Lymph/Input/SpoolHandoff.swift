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
        var entries = FIFO<(seq: Int64, item: [UInt8])>()
        var bytes = 0
        /// The newest sequence number offered, kept or not.
        var lastOffered: Int64?
    }

    let state = Mutex(State())
    /// Bounds on what waits here; past them, new entries are left to be read from the file.
    let maxEntries: Int
    let maxBytes: Int

    public init(maxEntries: Int = 8192, maxBytes: Int = 16 << 20) {
        self.maxEntries = maxEntries
        self.maxBytes = maxBytes
    }

    /// Called by the spool's writer after `items` committed as `seqs` (same order).
    public func offer(seqs: [Int64], items: [[UInt8]]) {
        state.withLock { s in
            if let last = seqs.last { s.lastOffered = last }
            // Stops at the first entry that does not fit: what is kept stays consecutive, and
            // the rest of the group is read from the file.
            for (seq, item) in zip(seqs, items) {
                guard s.entries.count < maxEntries, s.bytes + item.count <= maxBytes else { return }
                s.entries.append((seq, item))
                s.bytes += item.count
            }
        }
    }

    /// Up to `limit` entries (and about `maxBytes`) that follow `seq` without a gap, oldest
    /// first. Empty when `seq` is the newest entry committed (nothing to read anywhere); nil
    /// when the entry after `seq` is not here (read the file instead). Entries at or before
    /// `seq` are dropped: the worker has read them from the file.
    func take(after seq: Int64, limit: Int, maxBytes: Int) -> [(seq: Int64, item: [UInt8])]? {
        state.withLock { s in
            while let first = s.entries.first, first.seq <= seq {
                _ = s.entries.popFirst()
                s.bytes -= first.item.count
            }
            guard s.entries.first?.seq == seq + 1 else { return s.entries.isEmpty && s.lastOffered == seq ? [] : nil }
            var out: [(seq: Int64, item: [UInt8])] = []
            var bytes = 0
            var next = seq + 1
            while out.count < limit, bytes < maxBytes, let first = s.entries.first, first.seq == next {
                _ = s.entries.popFirst()
                s.bytes -= first.item.count
                bytes += first.item.count
                out.append(first)
                next += 1
            }
            return out
        }
    }
}
