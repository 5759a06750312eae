import Crypto

/// An HMAC state with its key already absorbed, copied per message so the key schedule is
/// computed once.
///
/// `HMAC` keeps its digest context in a copy-on-write box that this type never mutates: every
/// use copies the state first, so sharing it between threads is safe.
struct KeyedMAC: @unchecked Sendable {
    enum Prototype {
        case sha256(HMAC<SHA256>)
        case sha512(HMAC<SHA512>)
    }

    let prototype: Prototype

    init(key: [UInt8], algorithm: HMACAlgorithm) {
        let key = SymmetricKey(data: key)
        switch algorithm {
        case .sha256: prototype = .sha256(HMAC<SHA256>(key: key))
        case .sha512: prototype = .sha512(HMAC<SHA512>(key: key))
        }
    }

    /// The MAC of `prefix` followed by `body` (the signed content without joining them).
    func mac(prefix: [UInt8] = [], body: ArraySlice<UInt8>) -> [UInt8] {
        switch prototype {
        case .sha256(var h):
            if !prefix.isEmpty { h.update(data: prefix) }
            body.withUnsafeBytes { h.update(data: $0) }
            return Array(h.finalize())
        case .sha512(var h):
            if !prefix.isEmpty { h.update(data: prefix) }
            body.withUnsafeBytes { h.update(data: $0) }
            return Array(h.finalize())
        }
    }

    /// Whether `provided` is the SHA-256 MAC of `body`, compared in constant time, without
    /// allocating: the path every IMMUNE delivery takes.
    func matchesSHA256(_ provided: [UInt8], body: ArraySlice<UInt8>) -> Bool {
        guard case .sha256(var h) = prototype else { return false }
        body.withUnsafeBytes { h.update(data: $0) }
        let mac = h.finalize()
        return mac.withUnsafeBytes { Self.equal(UnsafeRawBufferPointer($0), provided) }
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
