import Foundation
import Lymph
import Testing

/// A running `lymph serve` on a loopback port it picked itself, in a fresh folder.
final class ServeHarness: @unchecked Sendable {
    let dir: String
    let environment: [String: String]
    private(set) var process: Process?
    private(set) var port = 0
    let stderrText = Locked("")

    static let secret = "whsec_serve_test_1234"

    init(pipeline yaml: String, environment: [String: String] = ["IMMUNE_WEBHOOK_SECRET": ServeHarness.secret]) {
        dir = LymphBinary.workDirectory()
        self.environment = environment
        FileManager.default.createFile(atPath: dir + "/serve.yaml", contents: Data(yaml.utf8))
    }

    /// Starts the server and waits for its "listening on" line.
    func start(timeout: Double = 30, arguments: [String] = []) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: LymphBinary.path)
        p.arguments = ["serve", "serve.yaml", "--listen", "127.0.0.1:0"] + arguments
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "IMMUNE_WEBHOOK_SECRET")
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let err = Pipe()
        p.standardError = err
        stderrText.set("")
        p.standardOutput = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        let text = stderrText
        err.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if !data.isEmpty { text.set(text.get() + String(decoding: data, as: UTF8.self)) }
        }
        try p.run()
        process = p
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let t = text.get()
            if let range = t.range(of: "listening on http://127.0.0.1:") {
                let digits = t[range.upperBound...].prefix { $0.isNumber }
                if let n = Int(digits) { port = n; return }
            }
            if !p.isRunning { break }
            Thread.sleep(forTimeInterval: 0.02)
        }
        Issue.record("lymph serve did not start: \(text.get())")
        throw HarnessError.notStarted
    }

    enum HarnessError: Error { case notStarted }

    /// Sends `signal` and waits for the exit status.
    @discardableResult
    func stop(_ signal: Int32 = SIGTERM, timeout: Double = 30) -> Int32 {
        guard let p = process else { return -1 }
        if p.isRunning { kill(p.processIdentifier, signal) }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if p.isRunning {
            Issue.record("lymph serve did not stop within \(timeout)s")
            p.terminate()
        }
        p.waitUntilExit()
        process = nil
        return p.terminationStatus
    }

    deinit { if let p = process, p.isRunning { kill(p.processIdentifier, SIGKILL) } }

    static func sign(_ body: [UInt8], secret: String = ServeHarness.secret) -> String {
        WebhookSignature.sign(body, secret: Array(secret.utf8))
    }

    /// An IMMUNE event with id `id` (a high-confidence prediction, so maintenance opens a ticket).
    static func event(_ id: String, equipment: String? = nil) -> [UInt8] {
        Array(
            #"{"id":"\#(id)","type":"prediction.created","created_at":"2026-06-01T00:00:00Z","data":{"prediction_id":"p_\#(id)","equipment_id":"\#(equipment ?? "pump_\(id)")","confidence":0.95,"predicted_failure_time":"2026-06-09T00:00:00Z","recommended_action":"Replace seal"}}"#
                .utf8)
    }

    /// POSTs `body` to the webhook path, signed unless `signature` says otherwise.
    func post(_ body: [UInt8], signature: String?? = .none, headers: [(String, String)] = [], path: String = "/webhooks") throws -> HTTPReply {
        var h = headers
        switch signature {
        case .none: h.append(("x-immune-signature", Self.sign(body)))
        case .some(.some(let s)): h.append(("x-immune-signature", s))
        case .some(.none): break
        }
        h.append(("content-type", "application/json"))
        return try RawHTTP.request(port: port, method: "POST", path: path, headers: h, body: body)
    }

    func get(_ path: String) throws -> HTTPReply {
        try RawHTTP.request(port: port, method: "GET", path: path, headers: [], body: [])
    }

    /// Waits until the spool is empty (`/healthz` reports depth 0).
    func waitForDrain(timeout: Double = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let r = try? get("/healthz"), r.body.contains(#""spool_depth":0,"#) { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        Issue.record("the spool did not drain within \(timeout)s")
    }

    /// The value of one series of `/metrics`, written as exposed: `lymph_http_requests_total{status="202"}`.
    func metric(_ series: String) throws -> Double? {
        for line in try get("/metrics").body.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " ") else { continue }
            if line[..<space] == series { return Double(line[line.index(after: space)...]) }
        }
        return nil
    }
}

struct HTTPReply {
    let status: Int
    let headers: [String: String]
    let body: String
}

/// A minimal HTTP/1.1 client over a socket: full control over what is sent (a declared length
/// that never comes, chunked bodies), and no dependency on the code under test.
enum RawHTTP {
    struct Failure: Error, CustomStringConvertible { let description: String }

    static func connect(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(errno)") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var tv = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { close(fd); throw Failure(description: "connect: \(errno)") }
        return fd
    }

    /// Writes what it can; false when the peer closed.
    @discardableResult
    static func send(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    static func head(method: String, path: String, headers: [(String, String)]) -> [UInt8] {
        var text = "\(method) \(path) HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n"
        for (k, v) in headers { text += "\(k): \(v)\r\n" }
        return Array((text + "\r\n").utf8)
    }

    /// Everything the server sends until it closes the connection (or the 20 s receive timeout).
    static func readUntilClose(_ fd: Int32) -> [UInt8] {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return data }
            data.append(contentsOf: buffer[0..<n])
        }
    }

    /// `readUntilClose`, and how long the server took to close.
    static func readUntilCloseTimed(_ fd: Int32) -> (data: [UInt8], seconds: Double) {
        let started = Date()
        let data = readUntilClose(fd)
        return (data, Date().timeIntervalSince(started))
    }

    /// Reads one response (the server closes after it, or says its length).
    static func readReply(_ fd: Int32) throws -> HTTPReply {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            data.append(contentsOf: buffer[0..<n])
            if let reply = parse(data), reply.complete { return reply.reply }
        }
        guard let reply = parse(data) else { throw Failure(description: "no HTTP response (\(data.count) bytes)") }
        return reply.reply
    }

    static func parse(_ data: [UInt8]) -> (reply: HTTPReply, complete: Bool)? {
        guard let end = data.indices.first(where: { i in i + 3 < data.count && data[i] == 13 && data[i + 1] == 10 && data[i + 2] == 13 && data[i + 3] == 10 })
        else { return nil }
        let head = String(decoding: data[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        guard let statusLine = head.first, statusLine.split(separator: " ").count >= 2, let status = Int(statusLine.split(separator: " ")[1]) else {
            return nil
        }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let body = Array(data[(end + 4)...])
        let length = headers["content-length"].flatMap(Int.init)
        return (HTTPReply(status: status, headers: headers, body: String(decoding: body, as: UTF8.self)), length.map { body.count >= $0 } ?? false)
    }

    static func request(port: Int, method: String, path: String, headers: [(String, String)], body: [UInt8]) throws -> HTTPReply {
        let fd = try connect(port: port)
        defer { close(fd) }
        send(fd, head(method: method, path: path, headers: headers + (method == "POST" ? [("content-length", String(body.count))] : [])) + body)
        return try readReply(fd)
    }
}
