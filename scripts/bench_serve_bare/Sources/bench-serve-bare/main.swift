// The ceiling lymph serve is measured against: a Hummingbird 2 route that reads the body,
// checks IMMUNE's signature (hex HMAC-SHA256 of the raw body, constant-time compare) and
// answers 202. No JSON, no spool, no pipeline. Same server defaults as Hummingbird's own.
//
//   bench-serve-bare PORT        (secret from $LYMPH_BENCH_SECRET)
import Crypto
import Foundation
import HTTPTypes
import Hummingbird

let arguments = CommandLine.arguments
guard arguments.count == 2, let port = Int(arguments[1]), let secret = ProcessInfo.processInfo.environment["LYMPH_BENCH_SECRET"] else {
    FileHandle.standardError.write(Data("usage: LYMPH_BENCH_SECRET=... bench-serve-bare PORT\n".utf8))
    exit(2)
}
let key = SymmetricKey(data: Array(secret.utf8))
let signatureField = HTTPField.Name("x-immune-signature")!
enum Signature {
    static let hexDigits = Array("0123456789abcdef".utf8)

    static func hex(_ mac: HashedAuthenticationCode<SHA256>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in mac { out.append(hexDigits[Int(byte >> 4)]); out.append(hexDigits[Int(byte & 15)]) }
        return out
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in a.indices { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}

let router = Router()
router.post("/webhooks") { request, _ -> Response in
    let body = try await request.body.collect(upTo: 1 << 20)
    let expected = Signature.hex(HMAC<SHA256>.authenticationCode(for: body.readableBytesView, using: key))
    let given = request.headers[signatureField].map { Array($0.utf8) } ?? []
    guard Signature.constantTimeEqual(given, expected) else { return Response(status: .unauthorized) }
    return Response(
        status: .accepted, headers: [.contentType: "application/json"],
        body: ResponseBody(byteBuffer: ByteBuffer(string: "{\"accepted\":true}\n")))
}
router.get("/healthz") { _, _ in HTTPResponse.Status.ok }
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
try await app.runService()
