import Dispatch
import Foundation
import Synchronization

/// Where one dedup scope's keys are in the store, and which keys it certainly does not hold.
///
/// Keys are written in generations: each commit group goes into the newest generation, and a
/// generation is closed once the next group would take it past `keysPerGeneration` keys, or
/// once it is a day old. Keys are random,
/// so in one B-tree ordered by key every commit would touch pages all over a tree many times the
/// page cache; with the generation leading the key, a commit only touches the newest
/// generation's pages, few enough to stay in the cache, whatever the store holds. The price is
/// on lookups, which must know the generation: each one has its own fingerprint filter, asked
/// only for the few keys the scope's filter (`all`) may hold, and only for the generations whose
/// keys went into the layers of `all` that may hold the key, newest first. The filters are
/// loaded from the fingerprints each commit saves beside its keys (`DedupFingerprinter`), not
/// from the keys.
///
/// A purge removes whole generations older than the window (a range of the B-tree, not a
/// scan), so a key may outlive its window by up to a generation's span; lookups compare
/// `seen_at` with the window, so such a key never drops an event.
final class DedupGenerations: Sendable {
    /// Keys a generation takes before the next opens: a full commit group
    /// (`PipelineRunner.commitEvery`) goes to a generation of its own. The keys are random, so a
    /// group into a generation already holding keys dirties nearly every leaf of it, and the
    /// commit writes the whole generation again (to the WAL, then the file); into a new one, its
    /// sorted keys are appended at the end of the B-tree, each page written once. Smaller commits
    /// (`lymph serve`, a slow stream) share one, and touch few leaves each. What this costs is
    /// generations: a store holds one per full group, and a key that the scope's filter may
    /// hold is looked for in the filters of the generations its layers took
    /// (`lazyCandidates`), newest first, stopping at the newest that holds it.
    static let keysPerGeneration = 1 << 15
    /// A generation is closed once its first key is this old, so a purge can drop it even when
    /// traffic is slow.
    static let generationSpan = 86_400.0

    /// Every key of the scope: a miss here is a new key, nearly every key of a stream.
    let all: DedupKeyFilter
    /// How the scope's keys become the fingerprints its filters and the store hold.
    let fingerprinter: DedupFingerprinter

    private struct State {
        /// Each generation's keys, oldest first.
        var filters: [(generation: Int64, filter: DedupKeyFilter)] = []
        /// The generation the next commit group goes to, how many keys it holds, and when its
        /// first key was written.
        var current: Int64
        var currentCount: Int
        var currentSince: Double?
        /// Keys of the generations with a filter: what caps a new layer of `all` after a purge.
        var liveKeys: Int
        /// The fingerprints of the current generation's keys, when this process assigned all of
        /// them (nil for a generation a start loaded open): its filter is sized for a full
        /// generation, and when it closes holding fewer (one commit group, as a rule), it gets
        /// one of its own size made from these.
        var currentFingerprints: [UInt64]? = nil
    }

    private let state: Mutex<State>

    /// A generation as the store records it (`lymph_dedup_generation`): how many keys were
    /// written to it and when its first was.
    struct Scanned {
        var generation: Int64
        var count: Int
        var oldest: Double?
        /// How many fingerprints the store holds for it (its saved rows' bytes over 8): what
        /// sizes its filters and splits the load, since unlike `count` it is bounded by what
        /// the file holds.
        var saved: Int
    }

    /// Generations as the store holds them: `generations` describes each (in order); `load(range,
    /// body)` hands `body` the generation and the saved fingerprints (`fingerprinter`'s, 64-bit
    /// little-endian, a whole number of them) of every key whose generation is in `range`, in
    /// generation order, a blob at a time. With a store of at least twice `keysPerPart` keys the
    /// load is split into ranges of generations read at once, up to one per core, each on its
    /// own connection: setting the bits of every key is most of what a run on a large store
    /// waits for before its first event. The parts add to `all` a blob at a time, under its
    /// lock. `parts` sets how many ranges there are (tests).
    static func built(
        generations: [Scanned], fingerprinter: DedupFingerprinter, parts: Int? = nil,
        load: @Sendable (ClosedRange<Int64>, (Int64, UnsafeRawBufferPointer) throws(StoreError) -> Void) throws(StoreError) -> Void
    ) throws(StoreError) -> DedupGenerations {
        let totalKeys = generations.reduce(0) { $0 + $1.saved }
        let all = DedupKeyFilter(expectedKeys: totalKeys)
        // A closed generation's filter for the keys it holds; the open one's for a full
        // generation, as it still takes keys.
        let openGeneration = generations.last.flatMap { $0.count < keysPerGeneration ? $0.generation : nil }
        let sizes = Dictionary(
            generations.map { ($0.generation, $0.generation == openGeneration ? max(keysPerGeneration, $0.saved) : $0.saved) },
            uniquingKeysWith: +)
        let ranges = partRanges(generations, parts: parts ?? min(ProcessInfo.processInfo.activeProcessorCount, totalKeys / keysPerPart))
        let parts = Mutex([Result<[(generation: Int64, filter: DedupKeyFilter)], StoreError>?](repeating: nil, count: ranges.count))
        DispatchQueue.concurrentPerform(iterations: ranges.count) { part in
            var filters: [(generation: Int64, filter: DedupKeyFilter)] = []
            let result = Result { () throws(StoreError) in
                try load(ranges[part]) { generation, bytes throws(StoreError) in
                    if filters.last?.generation != generation {
                        filters.append((generation, Self.filter(expecting: sizes[generation] ?? keysPerGeneration)))
                    }
                    let fingerprints = [UInt64](unsafeUninitializedCapacity: bytes.count / 8) { buffer, count in
                        if !bytes.isEmpty { UnsafeMutableRawBufferPointer(buffer).copyMemory(from: bytes) }
                        count = bytes.count / 8
                        #if _endian(big)
                            for i in 0..<count { buffer[i] = UInt64(littleEndian: buffer[i]) }
                        #endif
                    }
                    all.insert(fingerprints, generation: generation)
                    filters[filters.count - 1].filter.insert(fingerprints)
                }
                return filters
            }
            parts.withLock { $0[part] = result }
        }
        var filters: [(generation: Int64, filter: DedupKeyFilter)] = []
        for result in parts.withLock({ $0 }) { filters += try result!.get() }
        let last = generations.last
        let open = openGeneration != nil
        let state = State(
            filters: filters,
            current: last.map { open ? $0.generation : $0.generation + 1 } ?? 0,
            currentCount: open ? last!.count : 0,
            currentSince: open ? last!.oldest : nil,
            liveKeys: totalKeys)
        return DedupGenerations(all: all, fingerprinter: fingerprinter, state: state)
    }

    /// Keys a part of the load reads at least: below this a second thread costs more than it saves.
    static let keysPerPart = 1 << 20

    /// Up to `parts` ranges of generation numbers covering every number, each with about as many
    /// of `generations`' keys.
    static func partRanges(_ generations: [Scanned], parts: Int) -> [ClosedRange<Int64>] {
        let total = generations.reduce(0) { $0 + $1.saved }
        guard parts > 1, generations.count > 1 else { return [Int64.min...Int64.max] }
        var ranges: [ClosedRange<Int64>] = []
        var lower = Int64.min
        var counted = 0
        for (i, g) in generations.enumerated() where i < generations.count - 1 {
            counted += g.saved
            // The part ends after the generation that takes it to its share of the keys.
            if counted * parts >= total * (ranges.count + 1) && ranges.count < parts - 1 {
                ranges.append(lower...g.generation)
                lower = g.generation + 1
            }
        }
        ranges.append(lower...Int64.max)
        return ranges
    }

    private init(all: DedupKeyFilter, fingerprinter: DedupFingerprinter, state: State) {
        self.all = all
        self.fingerprinter = fingerprinter
        self.state = Mutex(state)
    }

    /// A generation's filter, for `keys` keys and at least `smallestFilter`: a closed
    /// generation's is the size of what it holds, so a long window on a quiet stream (a
    /// generation a day of a few keys each) costs memory by its keys, not by its days.
    private static func filter(expecting keys: Int) -> DedupKeyFilter {
        DedupKeyFilter(expectedKeys: 0, minimumCapacity: max(smallestFilter, keys))
    }

    /// Keys a generation's filter has room for at least (1.25 KiB).
    static let smallestFilter = 1 << 10
    /// Generation numbers from here on are not Lymph's (one is used per commit group at most):
    /// the store was changed by hand, and counting on from one would overflow.
    static let largestGeneration: Int64 = 1 << 62
    /// A generation's count above this is not Lymph's either; it only decides when the open
    /// generation is full, so it is taken as full.
    static let largestCount = 1 << 40

    /// For each fingerprint, the generations that may hold its key, newest first; empty for
    /// nearly every key (certainly new).
    func candidates(_ fingerprints: [UInt64]) -> [[Int64]] {
        lazyCandidates(fingerprints).map(Array.init)
    }

    /// `candidates` for one fingerprint.
    func candidates(_ fingerprint: UInt64) -> [Int64] {
        Array(lazyCandidates(fingerprint))
    }

    /// `lazyCandidates` for one fingerprint, without the arrays of a batch.
    func lazyCandidates(_ fingerprint: UInt64) -> Candidates {
        let ranges = all.mayContainIn(fingerprint)
        if ranges.isEmpty { return Candidates() }
        return Candidates(filters: state.withLock { $0.filters }, fingerprint: fingerprint, ranges: ranges)
    }

    /// For each fingerprint, the generations that may hold its key, newest first, each
    /// generation's filter asked only as the lookup comes to it (`Candidates`).
    func lazyCandidates(_ fingerprints: [UInt64]) -> [Candidates] {
        let ranges = all.mayContainIn(fingerprints)
        if ranges.allSatisfy(\.isEmpty) { return ranges.map { _ in Candidates() } }
        let filters = state.withLock { $0.filters }
        return zip(fingerprints, ranges).map { Candidates(filters: filters, fingerprint: $0, ranges: $1) }
    }

    /// Whether a lookup of the key with this fingerprint asks `generation`: one of the scope
    /// filter's layers that took that generation may hold it, and the generation's own filter
    /// may hold it (what `candidates(fingerprint).contains(generation)` says, without asking
    /// the other generations).
    func mayHold(_ fingerprint: UInt64, in generation: Int64) -> Bool {
        guard all.mayContainIn(fingerprint).contains(where: { $0.contains(generation) }) else { return false }
        return state.withLock { s in
            // Oldest first, in generation order.
            var low = 0
            var high = s.filters.count
            while low < high {
                let mid = (low + high) / 2
                if s.filters[mid].generation < generation { low = mid + 1 } else { high = mid }
            }
            return low < s.filters.count && s.filters[low].generation == generation && s.filters[low].filter.mayContain(fingerprint)
        }
    }

    /// The generations that may hold one key, newest first: those in the range of a layer of
    /// `all` that may hold it (`DedupKeyFilter.mayContainIn`) whose own filter may hold it too.
    /// A generation's filter is asked when the lookup comes to it: a lookup stops at the newest
    /// generation holding the key, and a duplicate, a retry as a rule, is most often in one of
    /// the newest.
    struct Candidates: Sequence, IteratorProtocol {
        private let filters: [(generation: Int64, filter: DedupKeyFilter)]
        private let fingerprint: UInt64
        private let ranges: [ClosedRange<Int64>]
        /// The oldest generation any range holds: below it nothing is asked.
        private let lowest: Int64
        private var index: Int

        /// None: the key is certainly new.
        init() {
            self.init(filters: [], fingerprint: 0, ranges: [])
        }

        init(filters: [(generation: Int64, filter: DedupKeyFilter)], fingerprint: UInt64, ranges: [ClosedRange<Int64>]) {
            self.filters = filters
            self.fingerprint = fingerprint
            self.ranges = ranges
            lowest = ranges.min { $0.lowerBound < $1.lowerBound }?.lowerBound ?? .max
            index = ranges.isEmpty ? -1 : filters.count - 1
        }

        /// True when no layer of `all` may hold the key: nothing to ask.
        var isCertainlyNew: Bool { ranges.isEmpty }

        mutating func next() -> Int64? {
            while index >= 0 {
                let (generation, filter) = filters[index]
                index -= 1
                if generation < lowest { index = -1; return nil }
                if ranges.contains(where: { $0.contains(generation) }) && filter.mayContain(fingerprint) { return generation }
            }
            return nil
        }
    }

    /// The generation a commit group of these keys goes to, written at `time`; the keys are in
    /// the filters from now on (before the commit: a key in the filters but not yet in the store
    /// costs a lookup, one in the store but not in the filters would let a duplicate through).
    func assign(_ fingerprints: [UInt64], at time: Double) -> Int64 {
        state.withLock { s in
            // A group that would overflow the generation starts the next one: its filter is
            // sized for a full generation, and a group past that would add a layer twice as
            // large to every generation for a few keys.
            let full = s.currentCount > 0 && s.currentCount + fingerprints.count > Self.keysPerGeneration
            if full || (s.currentSince.map { time - $0 >= Self.generationSpan } ?? false) {
                Self.fitClosingFilter(&s)
                s.current += 1
                s.currentCount = 0
                s.currentSince = nil
            }
            if s.filters.last?.generation != s.current {
                s.filters.append((s.current, Self.filter(expecting: Self.keysPerGeneration)))
                s.currentFingerprints = []
            }
            s.filters[s.filters.count - 1].filter.insert(fingerprints)
            s.currentFingerprints? += fingerprints
            s.liveKeys += fingerprints.count
            all.insert(fingerprints, generation: s.current, liveKeys: s.liveKeys)
            s.currentCount += fingerprints.count
            if s.currentSince == nil { s.currentSince = time }
            return s.current
        }
    }

    /// Gives the generation being closed a filter the size of the keys it holds, as a start
    /// would load it, when this process has their fingerprints and a smaller one holds them: a
    /// lookup that has the old filter in hand still finds them there.
    private static func fitClosingFilter(_ s: inout State) {
        defer { s.currentFingerprints = nil }
        guard let fingerprints = s.currentFingerprints, let last = s.filters.last, last.generation == s.current else { return }
        let fitted = filter(expecting: fingerprints.count)
        guard fitted.byteCount < last.filter.byteCount else { return }
        fitted.insert(fingerprints)
        s.filters[s.filters.count - 1].filter = fitted
    }

    /// Bytes the generations' own filters hold (not `all`'s), for tests and figures.
    var generationFilterBytes: Int { state.withLock { $0.filters.reduce(0) { $0 + $1.filter.byteCount } } }

    /// Forgets the filters of purged generations, and the layers of `all` that hold keys of
    /// purged generations only (the others keep theirs: a lookup more for such a key).
    func forget(generations purged: Set<Int64>) {
        if purged.isEmpty { return }
        let oldest = state.withLock { s in
            s.filters.removeAll { entry in
                guard purged.contains(entry.generation) else { return false }
                s.liveKeys -= entry.filter.keyCount
                return true
            }
            return s.filters.first?.generation ?? s.current
        }
        all.dropLayers(before: oldest)
    }

    /// Generations with a filter, for tests and figures.
    var generationCount: Int { state.withLock { $0.filters.count } }

    /// Bytes held by the generations' filters, for tests and figures.
    var filterByteCount: Int { state.withLock { $0.filters.reduce(0) { $0 + $1.filter.byteCount } } }
}
