/// The fingerprints of one dedup scope's keys, as its filters (`DedupGenerations`) and the
/// store's saved fingerprints hold them: SipHash-1-3 under a 128-bit key the store keeps for
/// the scope.
///
/// Stable from run to run, unlike `Hasher` (seeded per process), so a run loads the fingerprints
/// saved with each commit instead of reading and hashing every key the store holds. Keyed with
/// a random secret of the store, so that keys chosen to share fingerprints (each one costing a
/// lookup, never an event) cannot be made without reading the store.
struct DedupFingerprinter: Sendable, Equatable {
    /// Saved with the key: fingerprints made by another version of this function are made
    /// again, never mixed with these (a change here must raise it).
    static let version: Int64 = 1

    let k0: UInt64
    let k1: UInt64

    /// A new scope's key.
    static func random() -> DedupFingerprinter {
        var generator = SystemRandomNumberGenerator()
        return DedupFingerprinter(k0: generator.next(), k1: generator.next())
    }

    func fingerprint(_ key: [UInt8]) -> UInt64 {
        key.withUnsafeBytes { fingerprint(bytes: $0) }
    }

    func fingerprint(_ key: String) -> UInt64 {
        var key = key
        return key.withUTF8 { fingerprint(bytes: UnsafeRawBufferPointer($0)) }
    }

    /// The fingerprint of a key's bytes where they lie (a row the store is reading).
    func fingerprint(bytes: UnsafeRawBufferPointer) -> UInt64 {
        Self.sipHash(bytes, k0: k0, k1: k1, compressionRounds: 1, finalizationRounds: 3)
    }

    /// SipHash-c-d (Aumasson and Bernstein) of `bytes`; the rounds are parameters so that the
    /// published SipHash-2-4 vectors check the same code (tests).
    @inline(__always)
    static func sipHash(_ bytes: UnsafeRawBufferPointer, k0: UInt64, k1: UInt64, compressionRounds: Int, finalizationRounds: Int) -> UInt64 {
        var v0 = k0 ^ 0x736f_6d65_7073_6575
        var v1 = k1 ^ 0x646f_7261_6e64_6f6d
        var v2 = k0 ^ 0x6c79_6765_6e65_7261
        var v3 = k1 ^ 0x7465_6462_7974_6573
        @inline(__always)
        func rounds(_ n: Int) {
            for _ in 0..<n {
                v0 &+= v1
                v1 = v1.rotatedLeft(13) ^ v0
                v0 = v0.rotatedLeft(32)
                v2 &+= v3
                v3 = v3.rotatedLeft(16) ^ v2
                v0 &+= v3
                v3 = v3.rotatedLeft(21) ^ v0
                v2 &+= v1
                v1 = v1.rotatedLeft(17) ^ v2
                v2 = v2.rotatedLeft(32)
            }
        }
        let count = bytes.count
        var offset = 0
        while offset + 8 <= count {
            let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            v3 ^= word
            rounds(compressionRounds)
            v0 ^= word
            offset += 8
        }
        // The last 0-7 bytes, with the length's low byte on top.
        var last = UInt64(truncatingIfNeeded: count) << 56
        var shift: UInt64 = 0
        while offset < count {
            last |= UInt64(bytes[offset]) << shift
            shift += 8
            offset += 1
        }
        v3 ^= last
        rounds(compressionRounds)
        v0 ^= last
        v2 ^= 0xff
        rounds(finalizationRounds)
        return v0 ^ v1 ^ v2 ^ v3
    }
}

extension UInt64 {
    @inline(__always)
    fileprivate func rotatedLeft(_ n: UInt64) -> UInt64 { self << n | self >> (64 - n) }
}
