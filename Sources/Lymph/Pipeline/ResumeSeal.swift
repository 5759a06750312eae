import Crypto
import Foundation

/// Proof that a dead-letter record's resume point was written by this pipeline.
///
/// A record that resumes at a stage after the last `verify` skips that check on replay, and its
/// claims are committed as the event's. Dead-letter records are read from any input, so a line
/// shaped like one would otherwise carry an unsigned event past `verify`, and commit the dedup
/// key of a genuine event so that it is later dropped as a duplicate. The seal is an HMAC-SHA256
/// of the resume point (stage, kind, the event's bytes, its claims) and the record's first
/// source position, under a key derived from each secret of the pipeline's last `verify` stage
/// (its MAC of a fixed label, so the secret itself is never a key twice). The first secret
/// seals; any of them opens, as `verify` takes any of them, so a rotation that keeps the old
/// secret listed keeps old records replayable. Without a `verify` stage there is no check to
/// skip and nothing is sealed.
public struct ResumeSeal: Sendable {
    let keys: [SymmetricKey]

    /// The label each secret's MAC is taken of, to make its key.
    static let label = Array("lymph resume point seal v1".utf8)

    /// The seal of the last verify stage among `stages`; nil without one.
    init?(stages: [Pipeline.RunningStage]) {
        guard let verify = stages.last(where: { $0.stage is VerifyStage })?.stage as? VerifyStage else { return nil }
        keys = verify.verifier.keys.map { SymmetricKey(data: $0.mac(body: Self.label[...])) }
        if keys.isEmpty { return nil }
    }

    /// The seal of a resume point, as lowercase hex. `event`: the event's bytes as the record
    /// holds them (without line breaks).
    func seal(_ point: ResumePoint, event: ArraySlice<UInt8>, source: SourcePosition) -> String {
        Hex.string(Array(HMAC<SHA256>.authenticationCode(for: Self.message(point, event: event, file: source.file, line: source.line), using: keys[0])))
    }

    /// Whether `seal` is the seal of the resume point under one of the keys, compared in
    /// constant time. `file` and `line`: the first source position as the record gives it.
    func opens(_ seal: String, _ point: ResumePoint, event: ArraySlice<UInt8>, file: String, line: Int) -> Bool {
        guard let provided = Hex.decode(Array(seal.utf8)[...]), provided.count == SHA256.byteCount else { return false }
        let message = Self.message(point, event: event, file: file, line: line)
        return keys.contains { HMAC<SHA256>.isValidAuthenticationCode(provided, authenticating: message, using: $0) }
    }

    /// What is sealed: every part length-prefixed, so no two resume points make the same bytes.
    static func message(_ point: ResumePoint, event: ArraySlice<UInt8>, file: String, line: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(event.count + 128)
        func part(_ bytes: some Collection<UInt8>) {
            withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { out.append(contentsOf: $0) }
            out.append(contentsOf: bytes)
        }
        part(label)
        part(point.stage.utf8)
        part(point.kind.utf8)
        if ByteScan.containsLineBreak(event) {
            part(event.filter { $0 != 0x0A && $0 != 0x0D })
        } else {
            part(event)
        }
        withUnsafeBytes(of: UInt64(point.claims.count).littleEndian) { out.append(contentsOf: $0) }
        for claim in point.claims {
            part(claim.stage.utf8)
            part(claim.key)
        }
        part(file.utf8)
        withUnsafeBytes(of: Int64(line).littleEndian) { out.append(contentsOf: $0) }
        return out
    }
}
