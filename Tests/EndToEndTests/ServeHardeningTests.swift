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
}
