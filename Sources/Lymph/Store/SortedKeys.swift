import Foundation

/// A commit's keys laid end to end in one buffer, and their order as SQLite sorts blobs
/// (`StateStore.blobOrder`), for inserting them in that order.
///
/// Each key of a commit group is its own small allocation, made when its event was read, and by
/// the commit long out of the cache: reading a key's bytes is a cache miss. Each is read in one
/// place here (its first 16 bytes, then all of it into `bytes`), and the sort's ties and the
/// binding read the copy.
struct SortedKeys {
    /// The keys, in the order given, one after another.
    let bytes: [UInt8]
    /// Where each key (in the order given) starts in `bytes`; one more entry, the end.
    let starts: [Int]
    /// The indices of the keys in SQLite's order of blobs.
    let order: [Int]

    /// Sorts `keys` as their first 16 bytes, two integers (zero after the end): that settles
    /// nearly every comparison of a commit group's tens of thousands without a call or a
    /// reference count; only keys equal that far are compared whole. A key that ends inside the
    /// 16 bytes and one that goes on with zeros compare equal there, and then whole, so the
    /// order is exactly SQLite's.
    init(_ keys: [[UInt8]]) {
        struct Entry {
            let high: UInt64
            let low: UInt64
            let index: Int
        }
        func word(_ key: UnsafeRawBufferPointer, from start: Int) -> UInt64 {
            if key.count >= start + 8 { return UInt64(bigEndian: key.loadUnaligned(fromByteOffset: start, as: UInt64.self)) }
            var value: UInt64 = 0
            for k in start..<start + 8 { value = value << 8 | UInt64(k < key.count ? key[k] : 0) }
            return value
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(keys.count * 40)
        var starts: [Int] = []
        starts.reserveCapacity(keys.count + 1)
        var entries: [Entry] = []
        entries.reserveCapacity(keys.count)
        for i in keys.indices {
            keys[i].withUnsafeBytes { key in
                entries.append(Entry(high: word(key, from: 0), low: word(key, from: 8), index: i))
                starts.append(bytes.count)
                bytes.append(contentsOf: key)
            }
        }
        starts.append(bytes.count)
        bytes.withUnsafeBytes { all in
            func key(_ i: Int) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: all[starts[i]..<starts[i + 1]]) }
            entries.sort { a, b in
                if a.high != b.high { return a.high < b.high }
                if a.low != b.low { return a.low < b.low }
                return StateStore.blobOrder(key(a.index), key(b.index))
            }
        }
        self.bytes = bytes
        self.starts = starts
        self.order = entries.map(\.index)
    }

    /// The key at `position` in SQLite's order, within `all` (`bytes`, borrowed).
    func key(sorted position: Int, in all: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        let i = order[position]
        return UnsafeRawBufferPointer(rebasing: all[starts[i]..<starts[i + 1]])
    }
}
