import Foundation

/// A rejected item, with everything needed to understand and replay it.
///
/// Written as one JSON line: `{"error": {"stage", "reason", "message"}, "source": {"file",
/// "line"}, "at", "delivery": {...}}` or `..., "raw": "<line>"}` (plus `"raw_base64"` when the
/// line is not valid UTF-8). A record from a stage after the last `verify` also holds
/// `"resume": {"stage", "kind", "event": {...}, "claims": [{"stage", "key"}], "seal"}`: the event
/// as it entered that stage, where replay continues (see `ResumePoint`), sealed (`ResumeSeal`). Without `resume`, feeding
/// the dead-letter file back to `lymph run` re-processes the delivery or raw line, byte for byte,
/// from the top.
public struct DeadLetter: Sendable {
    /// The name of the stage that rejected the item (parse's for an item that is not an event).
    public var stage: String
    /// The snake_case code from `Reason`.
    public var reason: String
    /// What went wrong, for people.
    public var message: String
    /// Where the item was read.
    public var source: SourcePosition
    /// The item exactly as it came in, so that replay reads it the same way.
    public var origin: ItemOrigin
    /// Where replay continues, with the event's bytes as they entered that stage.
    /// `seal`: its `ResumeSeal` (nil in a pipeline without `verify`).
    public var resume: (point: ResumePoint, event: ArraySlice<UInt8>, seal: String?)?

    /// A record of `origin`, read at `source`, rejected by `stage`; with `resume`, replay continues
    /// at that stage.
    public init(
        stage: String, reason: String, message: String, source: SourcePosition, origin: ItemOrigin,
        resume: (point: ResumePoint, event: ArraySlice<UInt8>, seal: String?)? = nil
    ) {
        self.stage = stage
        self.reason = reason
        self.message = message
        self.source = source
        self.origin = origin
        self.resume = resume
    }

    /// Appends the record and a newline to `out`.
    public func encode(at time: String, into out: inout [UInt8]) {
        out.append(contentsOf: #"{"error":{"stage":"#.utf8)
        JSONStringEncoder.append(stage, to: &out)
        out.append(contentsOf: #","reason":"#.utf8)
        JSONStringEncoder.append(reason, to: &out)
        out.append(contentsOf: #","message":"#.utf8)
        JSONStringEncoder.append(message, to: &out)
        out.append(contentsOf: #"},"source":{"file":"#.utf8)
        JSONStringEncoder.append(source.file, to: &out)
        out.append(contentsOf: #","line":"#.utf8)
        out.append(contentsOf: String(source.line).utf8)
        out.append(contentsOf: #"},"at":"#.utf8)
        JSONStringEncoder.append(time, to: &out)
        if origin.truncated {
            out.append(contentsOf: #","truncated":true"#.utf8)
        }
        if let resume {
            let point = resume.point
            out.append(contentsOf: #","resume":{"stage":"#.utf8)
            JSONStringEncoder.append(point.stage, to: &out)
            out.append(contentsOf: #","kind":"#.utf8)
            JSONStringEncoder.append(point.kind, to: &out)
            out.append(contentsOf: #","event":"#.utf8)
            appendWithoutLineBreaks(resume.event, to: &out)
            out.append(contentsOf: #","claims":["#.utf8)
            for (n, claim) in point.claims.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: #"{"stage":"#.utf8)
                JSONStringEncoder.append(claim.stage, to: &out)
                out.append(contentsOf: #","key":""#.utf8)
                // Keys are the bytes of a JSON string or number, base64 so any byte survives.
                out.append(contentsOf: Data(claim.key).base64EncodedString().utf8)
                out.append(contentsOf: #""}"#.utf8)
            }
            out.append(UInt8(ascii: "]"))
            if let seal = resume.seal {
                out.append(contentsOf: #","seal":""#.utf8)
                out.append(contentsOf: seal.utf8)
                out.append(UInt8(ascii: "\""))
            }
            out.append(UInt8(ascii: "}"))
        }
        switch origin.form {
        case .delivery:
            out.append(contentsOf: #","delivery":"#.utf8)
            appendWithoutLineBreaks(origin.bytes, to: &out)
        case .raw:
            out.append(contentsOf: #","raw":"#.utf8)
            // A JSON string cannot hold bytes that are not UTF-8 ("raw" shows them as U+FFFD),
            // so the exact line is kept beside it, and replay reads that.
            if JSONStringEncoder.append(origin.bytes, to: &out) {
                out.append(contentsOf: #","raw_base64":""#.utf8)
                out.append(contentsOf: Data(origin.bytes).base64EncodedString().utf8)
                out.append(UInt8(ascii: "\""))
            }
        }
        out.append(contentsOf: "}\n".utf8)
    }
}

/// Copies JSON bytes leaving out CR and LF, which in valid JSON only appear as whitespace.
func appendWithoutLineBreaks(_ bytes: ArraySlice<UInt8>, to out: inout [UInt8]) {
    if !ByteScan.containsLineBreak(bytes) {
        out.append(contentsOf: bytes)
        return
    }
    for b in bytes where b != 0x0A && b != 0x0D { out.append(b) }
}
