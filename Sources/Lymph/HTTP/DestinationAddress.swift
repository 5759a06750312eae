#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An address a host name resolved to, and whether the http stage may connect to it.
///
/// The SSRF guard: by default the stage refuses destinations inside the machine or its
/// network (loopback, RFC 1918 and unique-local private ranges, carrier-grade NAT space,
/// link-local, which holds cloud metadata services such as 169.254.169.254, unspecified,
/// multicast and reserved ranges), judged on every address the name resolves to at connect
/// time, so a public name that points inward, even among public addresses, is refused too.
struct DestinationAddress: Sendable, Equatable, CustomStringConvertible {
    /// 4 or 16 bytes.
    let bytes: [UInt8]

    var isIPv6: Bool { bytes.count == 16 }

    /// The address as `inet_ntop` writes it.
    var description: String {
        var buffer = [CChar](repeating: 0, count: 64)
        var copy = bytes
        let family = isIPv6 ? AF_INET6 : AF_INET
        _ = copy.withUnsafeMutableBytes { inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// An IPv4 or IPv6 literal (IPv6 with or without brackets); nil for a host name.
    init?(literal text: String) {
        let bare = text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text
        var v4 = in_addr()
        if inet_pton(AF_INET, bare, &v4) == 1 {
            bytes = withUnsafeBytes(of: v4) { Array($0) }
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, bare, &v6) == 1 {
            bytes = withUnsafeBytes(of: v6) { Array($0) }
            return
        }
        return nil
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

    /// Why the guard refuses this address (`loopback`, `private`, `shared` (carrier-grade NAT),
    /// `link-local`, `unspecified`, `reserved`, `multicast`); nil for a public one. An IPv6
    /// address that carries an IPv4 one (mapped, compatible, NAT64, 6to4) is judged as that.
    var refusal: String? {
        if isIPv6 {
            if bytes.allSatisfy({ $0 == 0 }) { return "unspecified" }
            if bytes[0..<15].allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return "loopback" }
            // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated but routable by some stacks).
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && (bytes[10..<12].allSatisfy { $0 == 0xFF } || bytes[10..<12].allSatisfy { $0 == 0 }) {
                return DestinationAddress(bytes: Array(bytes[12..<16])).refusal
            }
            // 64:ff9b::/96 (NAT64) reaches the IPv4 address in its last 4 bytes.
            if bytes[0..<12] == [0x00, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0] {
                return DestinationAddress(bytes: Array(bytes[12..<16])).refusal
            }
            // 2002::/16 (6to4) reaches the IPv4 address in bytes 2 to 5.
            if bytes[0] == 0x20 && bytes[1] == 0x02 {
                return DestinationAddress(bytes: Array(bytes[2..<6])).refusal
            }
            if bytes[0] & 0xFE == 0xFC { return "private" }  // fc00::/7
            if bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80 { return "link-local" }  // fe80::/10
            if bytes[0] == 0xFE && bytes[1] & 0xC0 == 0xC0 { return "private" }  // fec0::/10, site-local
            if bytes[0] == 0xFF { return "multicast" }
            return nil
        }
        switch (bytes[0], bytes[1]) {
        case (0, _): return "unspecified"  // 0.0.0.0/8, "this network"
        case (127, _): return "loopback"
        case (10, _), (172, 16...31), (192, 168): return "private"
        case (100, 64...127): return "shared"  // 100.64.0.0/10, carrier-grade NAT: often a provider's inside
        case (169, 254): return "link-local"
        case (192, 0) where bytes[2] == 0: return "reserved"  // 192.0.0.0/24, IETF protocol assignments
        case (198, 18...19): return "reserved"  // 198.18.0.0/15, benchmarking networks
        case (224...239, _): return "multicast"
        case (240...255, _): return "reserved"  // 240.0.0.0/4 and the broadcast address
        default: return nil
        }
    }

    /// The addresses `host` resolves to (getaddrinfo: the system's resolver, /etc/hosts
    /// included), in its order; throws the resolver's message when there are none.
    static func resolve(_ host: String) throws(ResolveError) -> [DestinationAddress] {
        if let literal = DestinationAddress(literal: host) { return [literal] }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &list)
        guard rc == 0, let first = list else {
            throw ResolveError(message: "cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(first) }
        var out: [DestinationAddress] = []
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let n = node {
            if let sa = n.pointee.ai_addr {
                if n.pointee.ai_family == AF_INET {
                    let a = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                    out.append(DestinationAddress(bytes: withUnsafeBytes(of: a) { Array($0) }))
                } else if n.pointee.ai_family == AF_INET6 {
                    let a = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                    out.append(DestinationAddress(bytes: withUnsafeBytes(of: a) { Array($0) }))
                }
            }
            node = n.pointee.ai_next
        }
        var unique: [DestinationAddress] = []
        for a in out where !unique.contains(a) { unique.append(a) }
        guard !unique.isEmpty else { throw ResolveError(message: "cannot resolve \(host): no address") }
        return unique
    }

    struct ResolveError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}
