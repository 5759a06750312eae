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

    @Test("Expect: 100-continue is answered at once, through NIO's decoder and encoder; the body then sent is stored")
    func expectContinue() throws {
        let h = ServeHarness(pipeline: ServeCommandTests.pipeline())
        try h.start()
        defer { h.stop() }
        let fd = try RawHTTP.connect(port: h.port)
        defer { close(fd) }
        let body = ServeHarness.event("evt_expect")
        RawHTTP.send(
            fd,
            RawHTTP.head(
                method: "POST", path: "/webhooks",
                headers: [
                    ("content-length", String(body.count)), ("x-immune-signature", ServeHarness.sign(body)), ("content-type", "application/json"),
                    ("expect", "100-continue"),
                ]))
        var tv = timeval(tv_sec: 0, tv_usec: 900_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buffer, buffer.count, 0)
        // Within 0.9 s: a client waits about a second before it sends the body anyway.
        #expect(String(decoding: buffer[0..<max(0, n)], as: UTF8.self) == "HTTP/1.1 100 Continue\r\n\r\n")
        RawHTTP.send(fd, body)
        tv.tv_sec = 20
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let reply = try RawHTTP.readReply(fd)
        #expect(reply.status == 202, "\(reply.body)")
        #expect(reply.body.contains("evt_expect"))
    }

    @Test("a gzip transfer coding gets 501 and a POST without a length 411, each with its reason, through NIO's decoder")
    func framingRefused() throws {
        let h = ServeHarness(pipeline: ServeCommandTests.pipeline())
        try h.start()
        defer { h.stop() }
        let body = ServeHarness.event("evt_framed")
        var chunked = Array(String(body.count, radix: 16).utf8) + Array("\r\n".utf8) + body + Array("\r\n0\r\n\r\n".utf8)
        let fd = try RawHTTP.connect(port: h.port)
        defer { close(fd) }
        RawHTTP.send(
            fd,
            RawHTTP.head(method: "POST", path: "/webhooks", headers: [("transfer-encoding", "gzip, chunked"), ("x-immune-signature", ServeHarness.sign(body))])
                + chunked)
        let gzip = try RawHTTP.readReply(fd)
        #expect(gzip.status == 501)
        #expect(gzip.body.contains("unsupported_transfer_coding"))
        // No length at all: 411, and the connection stays for the next request.
        let fd2 = try RawHTTP.connect(port: h.port)
        defer { close(fd2) }
        RawHTTP.send(fd2, Array("POST /webhooks HTTP/1.1\r\nhost: x\r\nx-immune-signature: \(ServeHarness.sign(body))\r\n\r\n".utf8))
        let none = try RawHTTP.readReply(fd2)
        #expect(none.status == 411)
        #expect(none.body.contains("length_required"))
        chunked =
            Array(
                "POST /webhooks HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\nx-immune-signature: \(ServeHarness.sign(body))\r\n\r\n"
                    .utf8) + chunked
        RawHTTP.send(fd2, chunked)
        let next = try RawHTTP.readReply(fd2)
        #expect(next.status == 202, "\(next.body)")
        #expect(try h.metric(#"lymph_http_requests_total{status="411"}"#) == 1)
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
