import Foundation
import NIOHTTP1
@testable import Lymph
@testable import LymphServe

/// The fuzz targets. Each takes arbitrary bytes and stops the process (a libFuzzer crash) when
/// Lymph crashes on them or breaks a promise it makes about them.
enum FuzzTargets {
    static let all: [String: @Sendable ([UInt8]) -> Void] = [
        "json": json,
        "record": record,
        "batch": batch,
        "spool": spool,
        "exec-output": execOutput,
        "signature": signature,
        "schemes": schemes,
        "yaml": yaml,
        "reader": reader,
        "filter": filter,
        "yaml-alias": yamlAlias,
        "regex": regex,
    ]

    static func broken(_ promise: String, _ input: some Collection<UInt8>) -> Never {
        fatalError("\(promise); input: \(Array(input.prefix(300)))\(Replay.current.map { " (replaying \($0))" } ?? "")")
    }

    /// `body`, stopped with `broken` when it took longer than `limit` (judged once it returns:
    /// a call that never returns is libFuzzer's -timeout, or the replay watchdog's).
    static func timed<T>(_ limit: Duration, _ what: @autoclosure () -> String, _ input: [UInt8], _ body: () throws -> T) rethrows -> T {
        let start = ContinuousClock.now
        let result = try body()
        let took = ContinuousClock.now - start
        if took > limit { broken("\(what()) took \(took) (over \(limit))", input) }
        return result
    }

    /// The parser never crashes; every string it accepts, encoded again by JSONStringEncoder,
    /// parses back to the same bytes (dead letters and the spool rely on that).
    static func json(_ bytes: [UInt8]) {
        guard let document = try? JSONDocument(parsing: bytes) else { return }
        walk(document.root, input: bytes)
    }

    static func walk(_ value: JSONValue, input: [UInt8]) {
        switch value.kind {
        case .object:
            guard let members = value.members else { broken("an object without members", input) }
            for (key, member) in members {
                roundTrip(key, input: input)
                walk(member, input: input)
                guard value.member(Array(key.stringBytes ?? [])) != nil else { broken("a member that member(_:) cannot find", input) }
            }
        case .array:
            guard let elements = value.elements else { broken("an array without elements", input) }
            var count = 0
            for element in elements {
                walk(element, input: input)
                count += 1
            }
            if count > 0 && value.element(count - 1) == nil { broken("an element that element(_:) cannot find", input) }
        case .string:
            roundTrip(value, input: input)
        case .number:
            guard value.double != nil else { broken("a number that has no value", input) }
        case .true, .false:
            guard value.bool != nil else { broken("a boolean without a value", input) }
        case .null:
            break
        }
    }

    static func roundTrip(_ string: JSONValue, input: [UInt8]) {
        guard let decoded = string.stringBytes else { broken("a string without bytes", input) }
        var encoded: [UInt8] = []
        JSONStringEncoder.append(decoded, to: &encoded)
        guard let again = try? JSONDocument(parsing: encoded) else { broken("an accepted string that does not encode to valid JSON", input) }
        guard let back = again.root.stringBytes, back.elementsEqual(decoded) else {
            broken("an accepted string that changes through encoding", input)
        }
    }

    /// An event line: it becomes an event or a dead letter, and a dead letter is one valid JSON
    /// line that, read again, gives back the item it came from (replay).
    static func record(_ bytes: [UInt8]) {
        let stage = ParseStage()
        let item = RawItem(bytes: bytes[...], source: SourcePosition(file: "fuzz.ndjson", line: 1))
        switch stage.parse(item) {
        case .event(let event):
            _ = (event.id, event.typeBytes, event.createdAtBytes, event.delivery?.body)
        case .rejected(let deadLetter):
            var line: [UInt8] = []
            deadLetter.encode(at: "2026-11-29T00:00:00Z", into: &line)
            guard line.last == 0x0A, line.dropLast().firstIndex(of: 0x0A) == nil else { broken("a dead letter that is not one line", bytes) }
            guard let document = try? JSONDocument(parsing: line.dropLast()) else { broken("a dead letter that is not valid JSON", bytes) }
            guard (try? JSONSerialization.jsonObject(with: Data(line.dropLast()))) != nil else {
                broken("a dead letter that Foundation's JSON parser refuses", bytes)
            }
            switch deadLetter.origin.form {
            case .raw:
                guard let shown = document.root.member("raw"), let raw = try? ParseStage.replayedLine(document.root, raw: shown),
                    raw.elementsEqual(deadLetter.origin.bytes)
                else {
                    broken("a dead letter whose raw line is not the item", bytes)
                }
            case .delivery:
                guard document.root.member("delivery")?.kind == .object else { broken("a dead letter whose delivery is not an object", bytes) }
            }
            // Replay: the record read back is the same item, rejected for the same reason.
            if deadLetter.origin.truncated { return }
            let replayed = RawItem(bytes: line.dropLast(), source: SourcePosition(file: "dead.ndjson", line: 1))
            guard case .rejected(let again) = stage.parse(replayed) else { broken("a rejected item accepted on replay", bytes) }
            // A delivery is written without its CR and LF bytes (whitespace in valid JSON).
            let expected = deadLetter.origin.form == .delivery ? deadLetter.origin.bytes.filter { $0 != 0x0A && $0 != 0x0D }[...] : deadLetter.origin.bytes
            guard again.origin.form == deadLetter.origin.form, again.origin.bytes.elementsEqual(expected) else {
                broken("replay changed the item", bytes)
            }
            guard again.reason == deadLetter.reason else { broken("replay changed the reason (\(deadLetter.reason) -> \(again.reason))", bytes) }
        }
    }

    /// A batch of lines: parse's batch path (the deliveries' bodies unescaped into one buffer and
    /// parsed onto one tape) gives each line the event, or the dead letter, that it gives parsed
    /// alone, in the same order. The first byte picks the size limit, so that some bodies take
    /// the single-item way (too large) beside others in the shared buffers.
    static func batch(_ bytes: [UInt8]) {
        guard let first = bytes.first else { return }
        let maxBytes = first & 0x80 != 0 ? ParseStage.defaultMaxBytes : 16 + Int(first & 0x7F) * 8
        let stage = ParseStage(maxBytes: maxBytes)
        let items = bytes.dropFirst().split(separator: 0x0A).prefix(256).enumerated().map { n, line in
            RawItem(bytes: Array(line)[...], source: SourcePosition(file: "fuzz.ndjson", line: n + 1))
        }
        var events: [Event] = []
        var dead: [DeadLetter] = []
        stage.parse(items, events: &events, deadLetters: &dead)
        var (e, d) = (0, 0)
        for item in items {
            switch stage.parse(item) {
            case .event(let alone):
                guard e < events.count, events[e].source == alone.source else { broken("line \(item.source.line): an event alone, not in the batch", bytes) }
                let together = events[e]
                guard together.document.bytes.elementsEqual(alone.document.bytes), canonical(together.root) == canonical(alone.root) else {
                    broken("line \(item.source.line): the batch's event differs from the line's alone", bytes)
                }
                guard together.origin.form == alone.origin.form, together.origin.bytes.elementsEqual(alone.origin.bytes),
                    together.delivery?.body.elementsEqual(alone.delivery?.body ?? []) ?? (alone.delivery == nil),
                    together.delivery?.headerBytes(signatureHeader) == alone.delivery?.headerBytes(signatureHeader),
                    together.id == alone.id, together.typeBytes.elementsEqual(alone.typeBytes),
                    (together.createdAtBytes ?? []).elementsEqual(alone.createdAtBytes ?? [])
                else {
                    broken("line \(item.source.line): the batch's event has another origin, delivery or envelope", bytes)
                }
                e += 1
            case .rejected(let alone):
                guard d < dead.count, dead[d].source == alone.source else { broken("line \(item.source.line): a dead letter alone, not in the batch", bytes) }
                let together = dead[d]
                guard together.reason == alone.reason, together.message == alone.message, together.origin.form == alone.origin.form,
                    together.origin.bytes.elementsEqual(alone.origin.bytes), together.origin.truncated == alone.origin.truncated
                else {
                    broken("line \(item.source.line): the batch's dead letter differs (\(together.reason) against \(alone.reason) alone)", bytes)
                }
                d += 1
            }
        }
        guard e == events.count, d == dead.count else {
            broken("the batch gave \(events.count) events and \(dead.count) dead letters for \(e) and \(d)", bytes)
        }
    }

    static let signatureHeader = Array("x-immune-signature".utf8)

    /// A value written out member by member (keys and strings decoded), to compare two tapes.
    static func canonical(_ value: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        func write(_ value: JSONValue) {
            out.append(0x80 | value.kind.rawValue)
            switch value.kind {
            case .object:
                for (key, member) in value.members! {
                    JSONStringEncoder.append(key.stringBytes ?? [], to: &out)
                    write(member)
                }
                out.append(0x7D)
            case .array:
                for element in value.elements! { write(element) }
                out.append(0x5D)
            case .string: JSONStringEncoder.append(value.stringBytes ?? [], to: &out)
            default: out.append(contentsOf: value.rawBytes)
            }
        }
        write(value)
        return out
    }

    static let secret = Array("fuzz-secret".utf8)
    static let verifier = VerifyStage(secrets: [secret])

    /// A webhook body the handler accepts goes into the spool and comes out of the parse stage
    /// as the same bytes, with a signature that still checks (so the worker's own check, on an
    /// entry read back from the file, agrees with the handler's).
    static func spool(_ bytes: [UInt8]) {
        guard let document = try? JSONDocument(parsing: bytes), document.root.kind == .object,
            let id = document.root.member("id")?.string, !id.isEmpty
        else { return }
        let signature = WebhookSignature.sign(bytes, secret: secret)
        // The headers as the handler reads them from NIO's request head.
        let headers = RequestHeaders(HTTPHeaders([("Content-Type", "application/json"), (WebhookSignature.header, signature)]))
        let (item, replaced) = WebhookServer.spoolItem(body: bytes, headers: headers)
        // The parser accepts only UTF-8, so an accepted body is spooled as it came (the handler
        // hands the parsed body to the worker only when nothing was replaced).
        guard !replaced else { broken("an accepted body spooled with U+FFFD in it", bytes) }
        let raw = RawItem(bytes: item[...], source: SourcePosition(file: "spool", line: 1))
        switch ParseStage().parse(raw) {
        case .event(let event):
            guard let delivery = event.delivery else { broken("a spooled webhook read back without its delivery", bytes) }
            guard delivery.body.elementsEqual(bytes) else { broken("a spooled body that changed", bytes) }
            guard verifier.checkSignature(header: { delivery.headerBytes($0) }, body: delivery.body, now: 1_800_000_000) == nil else {
                broken("a spooled webhook whose signature no longer checks", bytes)
            }
        case .rejected(let deadLetter):
            // The handler answered 202 only for an object with an id; the envelope check (type,
            // created_at, data) may still reject it, but never for being unreadable.
            if deadLetter.reason == "invalid_json" || deadLetter.reason == "invalid_delivery" {
                broken("a spooled webhook the parse stage cannot read (\(deadLetter.reason): \(deadLetter.message))", bytes)
            }
        }
    }

    static let original: Event = {
        let line = Array(#"{"id":"evt_1","type":"alert.triggered","created_at":"2026-11-29T00:00:00Z","data":{}}"#.utf8)
        guard case .event(let e) = ParseStage().parse(RawItem(bytes: line[...], source: SourcePosition(file: "x", line: 1))) else {
            fatalError("the fixed event does not parse")
        }
        return e
    }()

    /// Whatever a plugin writes, its answer is events or a failure with a readable reason; a
    /// stream-mode answer line names the event it answers by a non-empty id, or none.
    static func execOutput(_ bytes: [UInt8]) {
        switch ExecOutputParser.events(fromOutput: bytes, replacing: original, stage: "fuzz", redact: Redactor([])) {
        case .success(let outcome): _ = outcome
        case .failure(let failure): _ = "\(failure)"
        }
        if let newline = bytes.firstIndex(of: 0x0A) {
            let (names, result) = ExecOutputParser.streamAnswer(bytes[..<newline], replacing: original, stage: "fuzz", redact: Redactor([]))
            if names?.isEmpty == true { broken("a stream answer that names the empty id", bytes) }
            if case .failure(let failure) = result { _ = "\(failure)" }
        }
    }

    /// Any signature header: refused with a reason, or accepted only when it is the real HMAC.
    static func signature(_ bytes: [UInt8]) {
        let split = bytes.firstIndex(of: 0) ?? bytes.endIndex
        let header = bytes[..<split]
        let body = split < bytes.endIndex ? bytes[(split + 1)...] : []
        let name = Array(VerifyStage.header.utf8)
        if verifier.checkSignature(header: { $0 == name ? header : nil }, body: body, now: 1_800_000_000) == nil {
            let real = WebhookSignature.sign(body, secret: secret)
            let given = String(decoding: header, as: UTF8.self)
            guard given.lowercased().contains(String(real.split(separator: "=").last ?? "").lowercased()) else {
                broken("a signature accepted that is not the body's HMAC", bytes)
            }
        }
        _ = verifier.checkAge(header, now: 1_800_000_000)
    }

    static let readerFile = FileManager.default.temporaryDirectory.appendingPathComponent("lymph-fuzz-reader-\(getpid()).ndjson").path

    /// A file of lines is read as exactly its lines, with their numbers, wherever the reader's
    /// blocks happen to end: blank lines skipped, CRLF accepted, a line over the limit kept as
    /// its first 4 KiB and marked oversize. The first two input bytes pick the item limit and
    /// the block size (small, so block ends fall everywhere).
    static func reader(_ input: [UInt8]) {
        guard input.count >= 2 else { return }
        let maxItemBytes = input[0] & 0x80 != 0 ? 1 << 20 : 8 + Int(input[0] & 0x7F) * 4
        let readSize = 1 + Int(input[1])
        let file = Array("#\n".utf8) + input.dropFirst(2)  // a first line that makes the reader choose line mode
        guard FileManager.default.createFile(atPath: readerFile, contents: Data(file)) else { fatalError("cannot write \(readerFile)") }
        // Gone after each input, so the run leaves nothing in the temporary folder.
        defer { unlink(readerFile) }
        let reader = ItemReader(paths: [readerFile], maxItemBytes: maxItemBytes, readSize: readSize)
        var got: [(bytes: [UInt8], line: Int, oversize: Bool)] = []
        do {
            while let batch = try reader.nextBatch() {
                for item in batch.items { got.append((Array(item.bytes), item.source.line, item.oversize)) }
            }
        } catch {
            broken("reading a plain file failed: \(error)", input)
        }
        // The same file split the obvious way.
        var expected: [(bytes: [UInt8], line: Int, oversize: Bool)] = []
        var lineNumber = 0
        var start = 0
        while start < file.count {
            let end = file[start...].firstIndex(of: 0x0A) ?? file.count
            lineNumber += 1
            var line = file[start..<end]
            if line.last == 0x0D { line = line.dropLast() }
            if line.count > maxItemBytes {
                expected.append((Array(line.prefix(4096)), lineNumber, true))
            } else if line.contains(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D }) {
                expected.append((Array(line), lineNumber, false))
            }
            start = end + 1
        }
        guard got.count == expected.count else { broken("the reader gave \(got.count) items for \(expected.count) lines", input) }
        for (g, e) in zip(got, expected) {
            guard g.line == e.line, g.oversize == e.oversize else {
                broken("item at line \(g.line) (oversize \(g.oversize)) for line \(e.line) (oversize \(e.oversize))", input)
            }
            guard g.bytes == e.bytes else { broken("line \(e.line) read as different bytes", input) }
        }
    }

    /// Conditions with every `match` operator, read from YAML the way an operator writes them.
    static let conditions: [Condition] = {
        let yaml = """
            pipeline: fuzz
            stages:
              - parse
              - filter: { types: ["alert.*", prediction.created, "*"] }
              - filter:
                  match:
                    data.value: { gt: 10, lte: 1e300 }
                    data.readings[0].value: { gte: -0.5, lt: 3 }
                    data.severity: { in: [high, critical, 3, true, null] }
                    data.status: { nin: [online], ne: offline }
                    data.equipment_id: { prefix: "pump_", suffix: "_7", contains: "p_0" }
                    data.tags: { contains: 5 }
                    data.missing: { exists: false }
                    id: { exists: true, regex: "^evt_[a-f0-9]+$" }
              - filter:
                  match:
                    any:
                      - data.confidence: 0.8
                      - data.a.b.c.d[3]: { eq: "x" }
                      - created_at: { gt: "2026-01-01T00:00:00Z" }
                    not: { data.nested: { regex: "(a|b)*c" } }
            """
        let (spec, diagnostics) = PipelineLoader.parse(yaml: yaml, file: "fuzz.yaml")
        guard let spec, !diagnostics.hasErrors else { fatalError("the fuzz conditions do not load: \(diagnostics.items)") }
        return spec.stages.map { ($0.spec as! FilterSpec).condition }
    }()

    /// Any event against every operator: a verdict and, when it fails, a reason; never a crash
    /// or a hang (regex on attacker-chosen text included).
    static func filter(_ bytes: [UInt8]) {
        guard case .event(let event) = ParseStage().parse(RawItem(bytes: bytes[...], source: SourcePosition(file: "f", line: 1))) else { return }
        for condition in conditions {
            // Undecidable within the regex bound: both must say so, never one verdict each.
            let matched = try? condition.matches(event)
            let reason = Result { () throws(ConditionError) in try condition.failingReason(event) }
            switch (matched, reason) {
            case (nil, .failure), (.some, .success): break
            default: broken("matches and failingReason disagree on whether the condition can be decided", bytes)
            }
            if let matched, case .success(let r) = reason, matched == (r != nil) {
                broken("matches (\(matched)) and failingReason (\(r ?? "nil")) disagree", bytes)
            }
        }
    }

    /// Pipeline files: any text gives a spec or diagnostics, never a crash.
    static func yaml(_ bytes: [UInt8]) {
        let (spec, diagnostics) = PipelineLoader.parse(yaml: String(decoding: bytes, as: UTF8.self), file: "fuzz.yaml")
        for d in diagnostics.items { _ = "\(d)" }
        _ = spec?.stages.count
    }
}
