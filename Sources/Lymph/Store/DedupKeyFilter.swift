import Synchronization

/// Fingerprints of the dedup keys a store holds for one scope (or one of its generations, see
/// `DedupGenerations`), in front of its B-tree. Nearly
/// every key in a stream is new, and "certainly not in the store" is answered here without
/// touching SQLite. A hit only means "maybe": the store is asked then, so a false positive
/// costs one lookup, never an event.
///
/// A blocked Bloom filter (each key's bits in one 64-byte block, so a probe is one cache line),
/// built from a scan of the store when the stage opens it. It grows by adding a layer half again
/// the size of the last (a scalable Bloom filter), so a long run never stops to rebuild it from the
/// store. Every layer is probed for a new key, so growth trades probes for room: doubling would
/// leave up to half the filter empty, and this leaves up to a third, for one layer more per
/// three times the keys.
/// Keys forgotten by the store (a purge, a rolled-back commit) may stay in it: that too is only
/// a lookup more. So that a process that runs for months (`lymph serve`) does not keep every
/// key it ever saw, each layer knows the newest generation (`DedupGenerations`) whose keys went
/// into it: once every generation up to that one is purged, the layer goes. A layer opened
/// after a purge is sized by the keys still held rather than by the layer before it, so layers
/// do not grow from one to the next for ever on a stream whose window holds a steady number.
final class DedupKeyFilter: Sendable {
    /// About 1% false positives per layer.
    static let bitsPerKey = 10
    static let bitsPerBlock = 512
    /// The first layer's size when the store holds fewer keys: 1.25 MiB.
    static let minimumCapacity = 1 << 20

    private struct Layer {
        var words: [UInt64]
        let blocks: UInt64
        let capacity: Int
        var count = 0
        /// The newest generation whose keys this layer took (`Int64.max` for keys of none).
        var newestGeneration = Int64.min
        /// The oldest generation whose keys this layer took (`Int64.max` before the first key).
        var oldestGeneration = Int64.max

        init(capacity: Int) {
            self.capacity = capacity
            let blocks = max(1, (capacity * DedupKeyFilter.bitsPerKey + DedupKeyFilter.bitsPerBlock - 1) / DedupKeyFilter.bitsPerBlock)
            self.blocks = UInt64(blocks)
            words = [UInt64](repeating: 0, count: blocks * 8)
        }

        /// Where the fingerprint's 8 bits are: its block's first word, and the two halves of
        /// the double hashing that picks bit `i` as `(a + i * b) % 512` inside the block.
        @inline(__always)
        static func place(_ fingerprint: UInt64, blocks: UInt64) -> (block: Int, a: UInt32, b: UInt32) {
            (
                Int(truncatingIfNeeded: ((fingerprint >> 32) &* blocks) >> 32) &* 8,
                UInt32(truncatingIfNeeded: fingerprint),
                UInt32(truncatingIfNeeded: (fingerprint &* 0x9E37_79B9_7F4A_7C15) >> 32) | 1
            )
        }

        /// The first word of the fingerprint's block, and the 8 bits it sets there.
        @inline(__always)
        func probes(_ fingerprint: UInt64, _ body: (Int, UInt64) -> Bool) -> Bool {
            let (block, a, b) = Self.place(fingerprint, blocks: blocks)
            for i in 0..<UInt32(8) {
                let bit = (a &+ i &* b) & 511
                if !body(block &+ Int(bit >> 6), 1 << UInt64(bit & 63)) { return false }
            }
            return true
        }

        func mayContain(_ fingerprint: UInt64) -> Bool {
            probes(fingerprint) { word, mask in words[word] & mask != 0 }
        }

        /// Sets the bits of as many of `fingerprints` as this layer has room for, and returns
        /// how many that was. One access to the words for the lot: their blocks are
        /// random cache lines, and a loop with nothing else in it lets the processor wait for
        /// several at once.
        mutating func insert(_ fingerprints: UnsafeBufferPointer<UInt64>) -> Int {
            let taken = min(fingerprints.count, capacity - count)
            let blocks = self.blocks
            words.withUnsafeMutableBufferPointer { words in
                for fingerprint in fingerprints[..<taken] {
                    let (block, a, b) = Self.place(fingerprint, blocks: blocks)
                    for i in 0..<UInt32(8) {
                        let bit = (a &+ i &* b) & 511
                        words[block &+ Int(bit >> 6)] |= 1 << UInt64(bit & 63)
                    }
                }
            }
            count += taken
            return taken
        }
    }

    private let layers: Mutex<[Layer]>
    /// The smallest layer this filter opens.
    let minimumLayer: Int

    /// An empty filter sized for `expectedKeys` (half again, and at least `minimumCapacity`).
    init(expectedKeys: Int, minimumCapacity: Int = DedupKeyFilter.minimumCapacity) {
        minimumLayer = minimumCapacity
        layers = Mutex([Layer(capacity: max(minimumCapacity, Self.grown(expectedKeys)))])
    }

    /// Layers so far.
    var layerCount: Int { layers.withLock { $0.count } }

    /// The key's fingerprint: 64 bits of SipHash with this process's seed, for sets held in
    /// memory only. A store's filters hold its scope's own (`DedupFingerprinter`), which
    /// stay the same from run to run.
    static func fingerprint(_ key: [UInt8]) -> UInt64 {
        key.withUnsafeBytes(fingerprint(bytes:))
    }

    /// A text key's fingerprint: the same as its UTF-8 bytes'.
    static func fingerprint(_ key: String) -> UInt64 {
        var key = key
        return key.withUTF8 { fingerprint(bytes: UnsafeRawBufferPointer($0)) }
    }

    /// The fingerprint of a key's bytes where they lie (a row the store is reading).
    static func fingerprint(bytes: UnsafeRawBufferPointer) -> UInt64 {
        var hasher = Hasher()
        hasher.combine(bytes: bytes)
        return UInt64(bitPattern: Int64(hasher.finalize()))
    }

    /// A layer's capacity after one of `capacity`: half again.
    static func grown(_ capacity: Int) -> Int { capacity + capacity / 2 }

    /// Adds the fingerprints of keys of `generation`, opening a layer when the last is full:
    /// half again the size of the last, but no more than half again `liveKeys` (the keys the
    /// owner still holds, these among them) when it says, and at least the filter's smallest.
    /// Without purges the keys held are at least the last layer's, so the cap only bites after
    /// one.
    func insert(_ fingerprints: [UInt64], generation: Int64 = .max, liveKeys: Int? = nil) {
        fingerprints.withUnsafeBufferPointer { all in
            layers.withLock { layers in
                var rest = all[...]
                while !rest.isEmpty {
                    let last = layers[layers.count - 1]
                    if last.count >= last.capacity {
                        let grown = Self.grown(last.capacity)
                        let capacity = liveKeys.map { min(grown, max(minimumLayer, Self.grown($0))) } ?? grown
                        layers.append(Layer(capacity: capacity))
                    }
                    let taken = layers[layers.count - 1].insert(UnsafeBufferPointer(rebasing: rest))
                    if taken > 0 {
                        layers[layers.count - 1].newestGeneration = max(layers[layers.count - 1].newestGeneration, generation)
                        layers[layers.count - 1].oldestGeneration = min(layers[layers.count - 1].oldestGeneration, generation)
                    }
                    rest = rest.dropFirst(taken)
                }
            }
        }
    }

    /// Lets go of every layer but the last whose keys are all of generations before `oldest`
    /// (purged: the store no longer holds them, so "certainly not" is the truth for them).
    func dropLayers(before oldest: Int64) {
        layers.withLock { layers in
            let last = layers.count - 1
            var index = 0
            layers.removeAll { layer in
                defer { index += 1 }
                return index < last && layer.newestGeneration < oldest
            }
        }
    }

    /// Keys inserted into the layers held.
    var keyCount: Int { layers.withLock { $0.reduce(0) { $0 + $1.count } } }

    /// For each fingerprint, false when its key is certainly not in the store.
    func mayContain(_ fingerprints: [UInt64]) -> [Bool] {
        layers.withLock { layers in
            fingerprints.map { fingerprint in layers.contains { $0.mayContain(fingerprint) } }
        }
    }

    /// For each fingerprint, the generations of the layers that may hold its key (from the
    /// oldest to the newest generation each took keys of); empty when its key is certainly not
    /// in the store. A layer takes the keys of the generations in order, so a key's generation is
    /// in the range of a layer that may hold it: the generations to ask (`DedupGenerations`).
    func mayContainIn(_ fingerprints: [UInt64]) -> [[ClosedRange<Int64>]] {
        layers.withLock { layers in fingerprints.map { Self.ranges(of: $0, in: layers) } }
    }

    /// `mayContainIn` for one fingerprint.
    func mayContainIn(_ fingerprint: UInt64) -> [ClosedRange<Int64>] {
        layers.withLock { Self.ranges(of: fingerprint, in: $0) }
    }

    private static func ranges(of fingerprint: UInt64, in layers: [Layer]) -> [ClosedRange<Int64>] {
        var ranges: [ClosedRange<Int64>] = []
        // A layer with keys has taken a generation, so its range is not empty.
        for layer in layers where layer.count > 0 && layer.mayContain(fingerprint) {
            ranges.append(layer.oldestGeneration...layer.newestGeneration)
        }
        return ranges
    }

    /// False when the key is certainly not in the store.
    func mayContain(_ fingerprint: UInt64) -> Bool {
        layers.withLock { layers in layers.contains { $0.mayContain(fingerprint) } }
    }

    /// Bytes held, for tests and figures.
    var byteCount: Int { layers.withLock { $0.reduce(0) { $0 + $1.words.count * 8 } } }
}
