import Testing
@testable import Lymph

@Suite("http stage: the SSRF guard's address ranges")
struct DestinationAddressTests {
    static func refusal(_ literal: String) -> String? {
        DestinationAddress(literal: literal)?.refusal
    }

    @Test(
        "addresses inside a machine or its network are refused, with the range named",
        arguments: [
            ("127.0.0.1", "loopback"), ("127.255.255.254", "loopback"), ("::1", "loopback"), ("[::1]", "loopback"),
            ("0.0.0.0", "unspecified"), ("0.1.2.3", "unspecified"), ("::", "unspecified"),
            ("10.0.0.1", "private"), ("172.16.0.1", "private"), ("172.31.255.255", "private"), ("192.168.1.1", "private"),
            ("fc00::1", "private"), ("fd12:3456::1", "private"), ("fec0::1", "private"),
            ("100.64.0.1", "shared"), ("100.127.255.255", "shared"),
            ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
            ("192.0.0.8", "reserved"), ("198.18.0.1", "reserved"), ("198.19.255.255", "reserved"), ("240.0.0.1", "reserved"),
            ("255.255.255.255", "reserved"),
            ("224.0.0.1", "multicast"), ("239.255.255.250", "multicast"), ("ff02::1", "multicast"),
            // IPv6 forms that carry an IPv4 address are judged as that address.
            ("::ffff:127.0.0.1", "loopback"), ("::ffff:169.254.169.254", "link-local"), ("::10.0.0.1", "private"),
            ("64:ff9b::a9fe:a9fe", "link-local"), ("64:ff9b::7f00:1", "loopback"), ("2002:a00:1::", "private"),
            ("2002:7f00:1::1", "loopback"),
        ])
    func refused(_ address: String, _ why: String) {
        #expect(Self.refusal(address) == why, "\(address)")
    }

    @Test(
        "public addresses pass",
        arguments: [
            "93.184.216.34", "8.8.8.8", "1.1.1.1", "172.15.255.255", "172.32.0.1", "100.63.255.255", "100.128.0.1",
            "192.0.1.1", "198.17.255.255", "198.20.0.1", "223.255.255.255", "169.253.0.1",
            "2606:4700:4700::1111", "2001:4860:4860::8888", "64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8",
        ])
    func allowed(_ address: String) {
        #expect(Self.refusal(address) == nil, "\(address)")
    }
}
