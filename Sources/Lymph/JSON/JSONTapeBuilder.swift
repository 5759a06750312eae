/// A tape being written: the parser stores entries through a pointer, checking only that there
/// is room, where an array's append also checks that its buffer is not shared and marks each
/// change (a fifth of a small event's parse). Documents of a batch go onto one builder, and
/// `finish` hands the whole tape over as one array, a copy a batch. Entries are plain values
/// (`JSONTapeEntry` holds no references), so the buffer is freed without deinitializing them.
public struct JSONTapeBuilder: ~Copyable {
    var base: UnsafeMutablePointer<JSONTapeEntry>
    var capacity: Int
    /// Entries written: the next document starts here.
    public internal(set) var count = 0

    /// A builder with room for `capacity` entries before it grows.
    public init(capacity: Int) {
        self.capacity = max(16, capacity)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    /// The entries written, as an array; the builder's buffer goes at once.
    public consuming func finish() -> [JSONTapeEntry] { Array(UnsafeBufferPointer(start: base, count: count)) }

    /// Room for at least `needed` entries, keeping those written: twice the room it had, or
    /// more when that is not enough.
    static func grow(_ base: inout UnsafeMutablePointer<JSONTapeEntry>, capacity: inout Int, count: Int, needed: Int) {
        let larger = max(needed, capacity * 2)
        let moved = UnsafeMutablePointer<JSONTapeEntry>.allocate(capacity: larger)
        moved.moveInitialize(from: base, count: count)
        base.deallocate()
        base = moved
        capacity = larger
    }
}
