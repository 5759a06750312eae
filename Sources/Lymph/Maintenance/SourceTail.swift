/// The latest committed source events of one ticket and how many it has, kept by `TicketBook`
/// so that a change that opens or moves the ticket lists them without reading the store. The
/// store keeps a ticket's events as one row per commit, so its latest hundred lie in as many
/// rows as it had commits, each on a page of its own.
///
/// The ids are kept as bytes, each after its length, in one array: a ticket's hundred ids as
/// `String`s would each be an allocation of their own.
struct SourceTail {
    /// How many source events the store holds for the ticket.
    private(set) var count: Int
    /// The latest ids (at most `limit` once trimmed), each as a 4-byte length and its UTF-8.
    private var bytes: [UInt8] = []
    /// How many ids `bytes` holds.
    private var held = 0
    /// Ids listed at most: `TicketBook.listedSources`.
    let limit: Int

    /// A ticket whose store holds `count` events, the latest of them `latest` (oldest first).
    init(latest: some Sequence<String>, count: Int, limit: Int) {
        self.count = 0
        self.limit = limit
        append(latest)
        self.count = count
    }

    /// Bytes held, for the cache's bound.
    var size: Int { bytes.capacity + 32 }

    /// Events the store now holds too, in the order they came.
    mutating func append(_ ids: some Sequence<String>) {
        for id in ids {
            withUnsafeBytes(of: UInt32(id.utf8.count).littleEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: id.utf8)
            held += 1
            count += 1
        }
        // Trimmed once it holds twice what it lists: each id is moved a bounded number of times.
        if held > 2 * limit { dropFirst(held - limit) }
    }

    /// The latest `n` ids, oldest first.
    func latest(_ n: Int) -> [String] {
        var ids: [String] = []
        ids.reserveCapacity(min(n, held))
        var offset = 0
        var skip = max(0, held - n)
        while offset < bytes.count {
            let length = Self.length(bytes, at: offset)
            if skip > 0 {
                skip -= 1
            } else {
                ids.append(String(decoding: bytes[offset + 4..<offset + 4 + length], as: UTF8.self))
            }
            offset += 4 + length
        }
        return ids
    }

    private mutating func dropFirst(_ n: Int) {
        var offset = 0
        for _ in 0..<n { offset += 4 + Self.length(bytes, at: offset) }
        bytes.removeFirst(offset)
        held -= n
    }

    private static func length(_ bytes: [UInt8], at offset: Int) -> Int {
        Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]) << 16 | Int(bytes[offset + 3]) << 24
    }
}

/// The tails `TicketBook` keeps, within a bound on their bytes: past it, half of them are let go
/// (their tickets' next change reads the store, and keeps its tail again).
struct SourceTails {
    private var byTicket: [String: SourceTail] = [:]
    private var bytes = 0
    /// Bytes the tails may hold together.
    let budget: Int

    init(budget: Int) { self.budget = budget }

    subscript(ticketID: String) -> SourceTail? { byTicket[ticketID] }

    /// Keeps `tail` for the ticket, in place of what was kept.
    mutating func keep(_ tail: SourceTail, for ticketID: String) {
        bytes += tail.size - (byTicket.updateValue(tail, forKey: ticketID)?.size ?? 0)
        if bytes > budget { shed() }
    }

    /// The ticket's events just committed, when its tail is kept.
    mutating func committed(_ ids: [String], of ticketID: String) {
        guard let index = byTicket.index(forKey: ticketID) else { return }
        let before = byTicket.values[index].size
        byTicket.values[index].append(ids)
        bytes += byTicket.values[index].size - before
        if bytes > budget { shed() }
    }

    private mutating func shed() {
        var kept = 0
        byTicket = byTicket.filter { _, tail in
            kept += 1
            return kept % 2 == 0
        }
        bytes = byTicket.values.reduce(0) { $0 + $1.size }
    }
}
