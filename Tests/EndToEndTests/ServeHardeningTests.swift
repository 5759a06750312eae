import Foundation
import Testing

/// `lymph serve` against requests and signals it does not take.
@Suite("lymph serve hardening, end to end", .serialized)
struct ServeHardeningTests {
    /// The other methods (TRACE, PUT, DELETE, OPTIONS, PATCH) are refused the same way by the
    /// handler: LymphServeTests. These two are framed by NIO's encoder without a body.
    @Test("CONNECT and HEAD get a 405 that ends at its blank line, and the connection closes", arguments: ["CONNECT", "HEAD"])
    func unservedMethods(_ method: String) throws {
        let h = ServeHarness(pipeline: ServeCommandTests.pipeline())
        try h.start()
        defer { h.stop() }
        let fd = try RawHTTP.connect(port: h.port)
        defer { close(fd) }
        let target = method == "CONNECT" ? "example.com:443" : "/webhooks"
        // No `Connection: close` from the client: the server must close by itself.
        RawHTTP.send(fd, Array("\(method) \(target) HTTP/1.1\r\nhost: example.com\r\ncontent-length: 0\r\n\r\n".utf8))
        let (data, seconds) = RawHTTP.readUntilCloseTimed(fd)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 405"), "\(text)")
        #expect(text.lowercased().contains("allow: get, post"))
        #expect(text.lowercased().contains("connection: close"))
        // NIO frames every answer to HEAD and CONNECT without a body (RFC 9112 §6.3): the
        // answer ends at its blank line, and the connection closes.
        #expect(text.hasSuffix("\r\n\r\n"), "\(text)")
        #expect(seconds < 5, "the connection stayed open \(seconds)s")
        // The server goes on serving.
        #expect(try h.post(ServeHarness.event("m1")).status == 202)
    }

    @Test("a client that pipelines requests and never reads the answers does not make them pile up in lymph serve's memory")
    func unreadAnswersDoNotPileUp() throws {
        let h = ServeHarness(pipeline: ServeCommandTests.pipeline())
        try h.start()
        defer { h.stop() }
        let pid = try #require(h.process?.processIdentifier)
        let before = try #require(Self.residentKiB(pid))
        let fd = try RawHTTP.connect(port: h.port)
        defer { close(fd) }
        // Sends only, never a read: a body that is not JSON, signed, so each is answered 400 at
        // once (no spool, no log line), as fast as the server takes them.
        let body = Array("x".utf8)
        let request = Array(
            "POST /webhooks HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\nx-immune-signature: \(ServeHarness.sign(body))\r\n\r\nx".utf8)
        let burst = [UInt8]((0..<256).flatMap { _ in request })
        var sent = 0
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline && sent < 32 << 20 {
            let n = burst.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                sent += n
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                Thread.sleep(forTimeInterval: 0.01)
            } else {
                break
            }
        }
        let grown = try #require(Self.residentKiB(pid)) - before
        // Each answer is about 250 bytes and each request about 150: answers kept for every
        // request taken would be more than what was sent. Held reads leave the rest in the
        // kernel's buffers, and the client's sends stop there.
        #expect(grown < 12 << 10, "resident memory grew by \(grown) KiB while \(sent) bytes of requests were sent unread")
        // Other clients are still served.
        #expect(try h.post(ServeHarness.event("after_flood")).status == 202)
    }

    /// The process's resident memory (`VmRSS`), in KiB.
    static func residentKiB(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return nil }
        return Int(line.split(separator: " ").dropFirst().first ?? "")
    }
}
