import Crypto

/// An HMAC (RFC 2104) over swift-crypto's SHA-256 or SHA-512, with the key already absorbed:
/// the inner and outer hash states after the padded key's block are kept, and each message
/// starts from copies of them, so the key schedule is computed once.
///
/// Built on the hash functions rather than on swift-crypto's `HMAC`, whose `update` is generic
/// over `DataProtocol` and not inlinable: every call walks the data's regions through
/// unspecialised generic code, which cost several times SHA-256's own work on a webhook's body.
/// Here the hash type is known where the code is compiled, and each message is one
/// `update(bufferPointer:)` and one `finalize()` per state. Tests check it against `HMAC`.
struct KeyedMAC: Sendable {
    enum Prototype: Sendable {
        case sha256(PaddedKeyStates<SHA256>)
        case sha512(PaddedKeyStates<SHA512>)
    }

    let prototype: Prototype

    init(key: [UInt8], algorithm: HMACAlgorithm) {
        switch algorithm {
        case .sha256: prototype = .sha256(PaddedKeyStates(key: key))
        case .sha512: prototype = .sha512(PaddedKeyStates(key: key))
        }
    }

    /// The MAC of `prefix` followed by `body` (the signed content without joining them).
    func mac(prefix: [UInt8] = [], body: ArraySlice<UInt8>) -> [UInt8] {
        switch prototype {
        case .sha256(let states): return states.mac(prefix: prefix, body: body) { Array($0) }
        case .sha512(let states): return states.mac(prefix: prefix, body: body) { Array($0) }
        }
    }

    /// Whether `provided` is the SHA-256 MAC of `body`, compared in constant time, without
    /// allocating an array for it: the path every IMMUNE delivery takes.
    func matchesSHA256(_ provided: [UInt8], body: ArraySlice<UInt8>) -> Bool {
        guard case .sha256(let states) = prototype else { return false }
        return states.mac(prefix: [], body: body) { Self.equal($0, provided) }
    }

    /// Equal length and bytes, in time that depends only on the length.
    static func equal(_ computed: UnsafeRawBufferPointer, _ provided: [UInt8]) -> Bool {
        guard computed.count == provided.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<computed.count { diff |= computed[i] ^ provided[i] }
        return diff == 0
    }

    /// `equal` for two arrays.
    static func equal(_ computed: [UInt8], _ provided: [UInt8]) -> Bool {
        computed.withUnsafeBytes { equal($0, provided) }
    }
}

/// The two hash states of an HMAC key: after `key ⊕ ipad` (inner) and `key ⊕ opad` (outer),
/// the key first hashed when it is longer than a block and zero-padded to one.
struct PaddedKeyStates<H: HashFunction>: Sendable {
    let inner: H
    let outer: H

    init(key: [UInt8]) {
        var block = key.count > H.blockByteCount ? Array(H.hash(data: key)) : key
        block += [UInt8](repeating: 0, count: H.blockByteCount - block.count)
        var inner = H()
        var outer = H()
        block.map { $0 ^ 0x36 }.withUnsafeBytes { inner.update(bufferPointer: $0) }
        block.map { $0 ^ 0x5C }.withUnsafeBytes { outer.update(bufferPointer: $0) }
        self.inner = inner
        self.outer = outer
    }

    /// Hands the MAC of `prefix` followed by `body` to `use`, as bytes that live only during the call.
    func mac<R>(prefix: [UInt8], body: ArraySlice<UInt8>, _ use: (UnsafeRawBufferPointer) -> R) -> R {
        var h = inner
        if !prefix.isEmpty { prefix.withUnsafeBytes { h.update(bufferPointer: $0) } }
        body.withUnsafeBytes { h.update(bufferPointer: $0) }
        let innerDigest = h.finalize()
        var o = outer
        innerDigest.withUnsafeBytes { o.update(bufferPointer: $0) }
        return o.finalize().withUnsafeBytes(use)
    }
}
