import Crypto
import Foundation
import TestSupport
import Lymph
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite struct SampleGeneratorTests {
    // MARK: - Helpers

    private func lines(_ options: SampleOptions) throws -> [[UInt8]] {
        var generator = try SampleGenerator(options: options)
        var result: [[UInt8]] = []
        while let line = generator.next() { result.append(line) }
        return result
    }

    /// Strict RFC 8259 parse; nil when rejected or not a JSON object. JSONSerialization
    /// alone is lenient on Linux (it accepts trailing commas), hence the grammar check.
    private func object(_ bytes: [UInt8]) -> [String: Any]? {
        guard StrictJSON.isValid(bytes) else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]
    }

    private func isRFC3339(_ text: String) -> Bool {
        let pattern = #"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"#
        guard let match = text.wholeMatch(of: try! Regex(pattern)) else { return false }
        let number = { (i: Int) in Int(match.output[i].substring!)! }
        return (1...12).contains(number(2)) && (1...31).contains(number(3))
            && number(4) < 24 && number(5) < 60 && number(6) < 61
    }

    /// The event schema: id and type non-empty strings, created_at RFC 3339, data an object.
    private func validEvent(_ bytes: [UInt8]) -> [String: Any]? {
        guard let event = object(bytes),
            let id = event["id"] as? String, !id.isEmpty,
            let type = event["type"] as? String, !type.isEmpty,
            let created = event["created_at"] as? String, isRFC3339(created),
            event["data"] is [String: Any]
        else { return nil }
        return event
    }

    private func millis(_ timestamp: String) -> Int64 {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let date = formatter.date(from: timestamp)!
        return Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    private func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// nil when the delivery must be rejected: bad JSON, bad or missing signature, or bad body.
    private func acceptedDelivery(_ line: [UInt8], secret: [UInt8]) -> [String: Any]? {
        guard let delivery = object(line),
            let headers = delivery["headers"] as? [String: Any],
            headers["content-type"] as? String == "application/json",
            let signature = headers["x-immune-signature"] as? String,
            let body = delivery["body"] as? String
        else { return nil }
        let expected = HMAC<SHA256>.authenticationCode(for: Array(body.utf8), using: SymmetricKey(data: secret))
        guard signature == hex(expected) else { return nil }
        return validEvent(Array(body.utf8))
    }

    // MARK: - Determinism

    @Test func sameSeedGivesSameBytes() throws {
        let options = SampleOptions(count: 2_000, seed: 42, duplicates: 0.1, malformed: 0.1, signingSecret: Array("k".utf8))
        #expect(try lines(options) == lines(options))
    }

    @Test func differentSeedGivesDifferentBytes() throws {
        let a = try lines(SampleOptions(count: 50, seed: 1))
        let b = try lines(SampleOptions(count: 50, seed: 2))
        #expect(a != b)
        #expect(a[0] != b[0])
    }

    /// Guards against anything process-dependent (e.g. Hasher) sneaking into the output.
    /// Update the digest only when the output format is changed on purpose.
    @Test func outputIsStableAcrossRuns() throws {
        let all = try lines(SampleOptions(count: 1_000, duplicates: 0.05, malformed: 0.05)).joined(separator: [0x0A])
        #expect(hex(SHA256.hash(data: Array(all))) == "687324d9acdecdf376782c7c4bd69949643b8e172044f7c37d4051669a4c7371")
    }

    @Test func typeOrderDoesNotMatter() throws {
        let a = try lines(SampleOptions(count: 100, types: ["alert.triggered", "prediction.created"]))
        let b = try lines(SampleOptions(count: 100, types: ["prediction.created", "alert.triggered"]))
        #expect(a == b)
    }

    // MARK: - Shape

    @Test(arguments: [0, 1, 7, 1_000])
    func countIsHonoured(count: Int) throws {
        #expect(try lines(SampleOptions(count: count, duplicates: 0.3, malformed: 0.3)).count == count)
    }

    @Test func writeMatchesNextAndEndsLinesWithNewline() throws {
        let options = SampleOptions(count: 5_000, seed: 9, duplicates: 0.1, malformed: 0.1)
        let expected: [UInt8] = try lines(options).flatMap { $0 + [0x0A] }
        let path = TestScratch.path("sample.jsonl")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        #expect(fd >= 0)
        var generator = try SampleGenerator(options: options)
        try generator.write(to: fd)
        close(fd)
        #expect(Array(FileManager.default.contents(atPath: path)!) == expected)
        #expect(generator.next() == nil)
    }

    @Test func eventsHaveSchemaPayloadsAndIncreasingTimes() throws {
        let options = SampleOptions(count: 4_000, seed: 3)
        var previous = millis("2026-06-01T00:00:00.000Z")
        var typeCounts: [String: Int] = [:]
        var ids = Set<String>()
        for line in try lines(options) {
            #expect(!line.contains(0x0A) && !line.contains(0x0D))
            #expect((200...600).contains(line.count), "unexpected size \(line.count)")
            let event = try #require(validEvent(line), "\(String(decoding: line, as: UTF8.self))")
            #expect(event.count == 4)
            let id = event["id"] as! String
            #expect(id.wholeMatch(of: try Regex("evt_[0-9a-f]{20}")) != nil)
            ids.insert(id)
            let created = millis(event["created_at"] as! String)
            #expect((100...2_000).contains(created - previous))
            previous = created
            let type = event["type"] as! String
            typeCounts[type, default: 0] += 1
            let data = event["data"] as! [String: Any]
            let equipment = try #require(data["equipment_id"] as? String)
            #expect(equipment.wholeMatch(of: try Regex("(pump|compressor|turbine|conveyor)_[0-9]{4}")) != nil)
            switch type {
            case "prediction.created":
                #expect((data["prediction_id"] as? String)?.hasPrefix("pred_") == true)
                let confidence = try #require(data["confidence"] as? Double)
                #expect(confidence >= 0.5 && confidence <= 0.99)
                let failure = millis(try #require(data["predicted_failure_time"] as? String))
                #expect((2 * 86_400_000...30 * 86_400_000).contains(failure - created))
                #expect(!(try #require(data["recommended_action"] as? String)).isEmpty)
                let support = try #require(data["supporting_data"] as? [String: Any])
                #expect(["increasing", "stable", "erratic"].contains(support["vibration_trend"] as? String ?? ""))
                #expect((0...12).contains(try #require(support["temperature_anomalies"] as? Int)))
            case "alert.triggered":
                #expect((data["alert_id"] as? String)?.isEmpty == false)
                #expect((data["sensor_id"] as? String)?.hasPrefix("sen_\(equipment)_") == true)
                #expect(["vibration_rms", "temperature", "pressure", "current"].contains(data["metric"] as? String ?? ""))
                let value = try #require(data["value"] as? Double)
                let threshold = try #require(data["threshold"] as? Double)
                #expect(value > threshold)
                #expect((data["unit"] as? String)?.isEmpty == false)
                #expect(["low", "medium", "high", "critical"].contains(data["severity"] as? String ?? ""))
            case "sensor.status_changed":
                #expect((data["sensor_id"] as? String)?.hasPrefix("sen_\(equipment)_") == true)
                let statuses = ["online", "offline", "error"]
                let before = try #require(data["previous_status"] as? String)
                let after = try #require(data["status"] as? String)
                #expect(statuses.contains(before) && statuses.contains(after) && before != after)
                #expect(data.keys.contains("reason"))
                #expect(data["reason"] is String || data["reason"] is NSNull)
            case "maintenance.scheduled":
                #expect((data["ticket_id"] as? String)?.hasPrefix("mt_") == true)
                #expect((data["action"] as? String)?.isEmpty == false)
                #expect(isRFC3339(try #require(data["due_by"] as? String)))
                #expect(["critical", "high", "medium", "low"].contains(data["priority"] as? String ?? ""))
                #expect(data["scheduled_by"] as? String == "immune")
            default:
                Issue.record("unexpected type \(type)")
            }
        }
        #expect(ids.count == options.count)
        // Default mix is 40/30/20/10.
        #expect((1_400...1_800).contains(typeCounts["prediction.created"] ?? 0))
        #expect((1_000...1_400).contains(typeCounts["alert.triggered"] ?? 0))
        #expect((600...1_000).contains(typeCounts["sensor.status_changed"] ?? 0))
        #expect((250...550).contains(typeCounts["maintenance.scheduled"] ?? 0))
    }

    @Test func typesRestrictTheMix() throws {
        let types = Set(
            try lines(SampleOptions(count: 300, types: ["maintenance.scheduled", "sensor.status_changed"]))
                .map { validEvent($0)!["type"] as! String })
        #expect(types == ["maintenance.scheduled", "sensor.status_changed"])
    }

    @Test func startSetsTheClock() throws {
        let start = Date(timeIntervalSince1970: 1_700_000_000.5)
        let first = validEvent(try lines(SampleOptions(count: 1, start: start))[0])!
        let offset = millis(first["created_at"] as! String) - 1_700_000_000_500
        #expect((100...2_000).contains(offset))
    }

    // MARK: - Duplicates and malformed lines

    @Test func duplicatesAreByteIdenticalResends() throws {
        var seen = Set<[UInt8]>()
        var repeats = 0
        for line in try lines(SampleOptions(count: 10_000, seed: 5, duplicates: 0.2)) {
            #expect(validEvent(line) != nil)
            if !seen.insert(line).inserted { repeats += 1 }
        }
        #expect((1_800...2_200).contains(repeats))
        #expect(try Set(lines(SampleOptions(count: 10_000, seed: 5))).count == 10_000)
    }

    @Test func malformedLinesAreRejected() throws {
        let broken = try lines(SampleOptions(count: 500, seed: 11, malformed: 1))
        for line in broken {
            #expect(!line.contains(0x0A) && !line.contains(0x0D))
            #expect(validEvent(line) == nil, "accepted: \(String(decoding: line, as: UTF8.self))")
        }
        let mixed = try lines(SampleOptions(count: 10_000, seed: 12, duplicates: 0.1, malformed: 0.2))
        let rejected = mixed.filter { validEvent($0) == nil }.count
        #expect((1_800...2_200).contains(rejected))
    }

    @Test func malformedKindsIncludeParseAndSchemaFailures() throws {
        let broken = try lines(SampleOptions(count: 100, seed: 13, malformed: 1))
        let unparsable = broken.filter { (try? JSONSerialization.jsonObject(with: Data($0), options: .fragmentsAllowed)) == nil }
        #expect(unparsable.count > 20)
        #expect(broken.count - unparsable.count > 20)
        #expect(SampleGenerator.malformedKinds.count == 12)
    }

    // MARK: - Signed deliveries

    @Test func signedDeliveriesVerify() throws {
        let secret = Array("whsec_test".utf8)
        let deliveries = try lines(SampleOptions(count: 2_000, seed: 21, duplicates: 0.1, signingSecret: secret))
        for line in deliveries {
            #expect(!line.contains(0x0A) && !line.contains(0x0D))
            #expect(acceptedDelivery(line, secret: secret) != nil, "\(String(decoding: line, as: UTF8.self))")
            #expect(acceptedDelivery(line, secret: Array("other".utf8)) == nil)
        }
    }

    @Test func malformedDeliveriesAreRejected() throws {
        let secret = Array("whsec_test".utf8)
        for line in try lines(SampleOptions(count: 600, seed: 22, malformed: 1, signingSecret: secret)) {
            #expect(!line.contains(0x0A) && !line.contains(0x0D))
            #expect(acceptedDelivery(line, secret: secret) == nil, "\(String(decoding: line, as: UTF8.self))")
        }
        let mixed = try lines(SampleOptions(count: 5_000, seed: 23, duplicates: 0.1, malformed: 0.2, signingSecret: secret))
        let rejected = mixed.filter { acceptedDelivery($0, secret: secret) == nil }.count
        #expect((850...1_150).contains(rejected))
    }

    @Test func brokenBodiesAreSignedOverTheirBytes() throws {
        let secret = Array("s".utf8)
        var correctlySignedBroken = 0
        for line in try lines(SampleOptions(count: 120, seed: 24, malformed: 1, signingSecret: secret)) {
            guard let delivery = object(line), let body = delivery["body"] as? String,
                let signature = (delivery["headers"] as? [String: Any])?["x-immune-signature"] as? String
            else { continue }
            let mac = HMAC<SHA256>.authenticationCode(for: Array(body.utf8), using: SymmetricKey(data: secret))
            if signature == hex(mac) {
                #expect(validEvent(Array(body.utf8)) == nil)
                correctlySignedBroken += 1
            }
        }
        #expect(correctlySignedBroken >= 80)
    }

    // MARK: - Options

    @Test func invalidOptionsThrow() {
        let bad: [SampleOptions] = [
            SampleOptions(count: -1),
            SampleOptions(count: 1, types: ["prediction.deleted"]),
            SampleOptions(count: 1, types: []),
            SampleOptions(count: 1, duplicates: 1.5),
            SampleOptions(count: 1, malformed: -0.1),
            SampleOptions(count: 1, malformed: .nan),
            SampleOptions(count: 1, duplicates: 0.6, malformed: 0.6),
            SampleOptions(count: 1, signingSecret: []),
        ]
        for options in bad {
            #expect(throws: SampleError.self) { try SampleGenerator(options: options) }
        }
        #expect(SampleGenerator.knownTypes.count == 4)
    }
}

@Suite struct JSONStringEncoderTests {
    private func encoded(_ string: String) -> [UInt8] {
        var out: [UInt8] = []
        JSONStringEncoder.append(string, to: &out)
        return out
    }

    @Test(arguments: [
        "", "plain", "quote \" inside", "back\\slash\\", "\\\"\\\"", "line\nbreak\r\n\ttab",
        String((0..<32).map { Character(Unicode.Scalar(UInt8($0))) }), "\u{7F} del",
        "héllo wörld 日本語 🎉 👩‍👩‍👧", "\u{2028} and \u{2029}", "</script>", "\u{10FFFF}",
    ])
    func roundTripsThroughJSONSerialization(_ string: String) throws {
        let document = [UInt8(ascii: "[")] + encoded(string) + [UInt8(ascii: "]")]
        let parsed = try JSONSerialization.jsonObject(with: Data(document)) as? [String]
        #expect(parsed == [string])
        #expect(!document.contains(where: { $0 < 0x20 }))
        #expect(SampleGeneratorTests.StrictJSON.isValid(document))
    }

    @Test func escapesAsRFC8259() {
        #expect(
            String(decoding: encoded("a\"b\\c\n\r\t\u{8}\u{C}\u{1}\u{1F}/é"), as: UTF8.self)
                == #""a\"b\\c\n\r\t\b\f\u0001\u001f/é""#)
        // Non-ASCII (even a BOM, which JSONSerialization drops) is copied as is.
        #expect(encoded("\u{FEFF}\u{2028}") == [0x22, 0xEF, 0xBB, 0xBF, 0xE2, 0x80, 0xA8, 0x22])
    }

    @Test(
        arguments: [
            [0x61, 0xFF, 0x62], [0xC3], [0xC3, 0x28], [0xED, 0xA0, 0x80], [0xC0, 0xAF], [0xE2, 0x82, 0x61],
            [0xF0, 0x9F, 0x98], [0xF4, 0x90, 0x80, 0x80], [0x80, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80],
            [0xE2, 0x82, 0xAC, 0xFE, 0x22], [0xF0, 0x9F, 0x8E, 0x89, 0x0A, 0xC2],
        ] as [[UInt8]])
    func replacesInvalidUTF8LikeTheStandardLibrary(_ bytes: [UInt8]) throws {
        var out: [UInt8] = []
        JSONStringEncoder.append(bytes, to: &out)
        let parsed = try JSONSerialization.jsonObject(with: Data([0x5B] + out + [0x5D])) as? [String]
        #expect(parsed == [String(decoding: bytes, as: UTF8.self)])
    }

    /// Straightforward per-scalar reference: decode with U+FFFD, then escape.
    private func reference(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x22]
        for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars {
            switch scalar.value {
            case 0x22: out += Array(#"\""#.utf8)
            case 0x5C: out += Array(#"\\"#.utf8)
            case 0x0A: out += Array(#"\n"#.utf8)
            case 0x0D: out += Array(#"\r"#.utf8)
            case 0x09: out += Array(#"\t"#.utf8)
            case 0x08: out += Array(#"\b"#.utf8)
            case 0x0C: out += Array(#"\f"#.utf8)
            case 0..<0x20: out += Array(String(format: "\\u%04x", scalar.value).utf8)
            default: out += Array(String(scalar).utf8)
            }
        }
        return out + [0x22]
    }

    @Test func matchesReferenceOnRandomInput() {
        // Fixed-seed xorshift so failures reproduce; lengths cross the internal 1 KiB staging.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
        let pieces: [[UInt8]] = [
            Array("abcdefghij".utf8), [0x22], [0x5C], [0x0A], [0x00], [0x1F], [0x7F], Array("é".utf8),
            Array("日".utf8), Array("🎉".utf8), Array("\u{2028}".utf8), [0xFF], [0xC3], [0xE2, 0x82], [0xED, 0xA0, 0x80],
            [0xF0, 0x9F], [0x80], Array(String(repeating: "x", count: 700).utf8),
        ]
        for _ in 0..<2_000 {
            var bytes: [UInt8] = []
            for _ in 0..<Int(next() % 80) {
                bytes += pieces[Int(next() % UInt64(pieces.count))]
            }
            var out: [UInt8] = [0x41]
            JSONStringEncoder.append(bytes, to: &out)
            #expect(Array(out.dropFirst()) == reference(bytes), "input \(bytes)")
        }
    }

    @Test func acceptsNonContiguousCollectionsAndAppends() {
        var out = Array("x=".utf8)
        JSONStringEncoder.append(Array("a\"b".utf8).lazy.map { $0 }, to: &out)
        JSONStringEncoder.append(Array("q\\".utf8)[1...], to: &out)
        #expect(String(decoding: out, as: UTF8.self) == #"x="a\"b""\\""#)
    }
}

extension SampleGeneratorTests {
    /// Minimal RFC 8259 syntax check (grammar and UTF-8), independent of Foundation.
    enum StrictJSON {
        static func isValid(_ bytes: [UInt8]) -> Bool {
            guard String(decoding: bytes, as: UTF8.self).utf8.elementsEqual(bytes) else { return false }
            var i = 0
            guard value(bytes, &i) else { return false }
            skipSpace(bytes, &i)
            return i == bytes.count
        }

        private static func skipSpace(_ b: [UInt8], _ i: inout Int) {
            while i < b.count, [0x20, 0x09, 0x0A, 0x0D].contains(b[i]) { i += 1 }
        }

        private static func literal(_ b: [UInt8], _ i: inout Int, _ word: String) -> Bool {
            let w = Array(word.utf8)
            guard i + w.count <= b.count, Array(b[i..<(i + w.count)]) == w else { return false }
            i += w.count
            return true
        }

        private static func value(_ b: [UInt8], _ i: inout Int) -> Bool {
            skipSpace(b, &i)
            guard i < b.count else { return false }
            switch b[i] {
            case UInt8(ascii: "{"):
                i += 1
                skipSpace(b, &i)
                if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return true }
                while true {
                    skipSpace(b, &i)
                    guard string(b, &i) else { return false }
                    skipSpace(b, &i)
                    guard i < b.count, b[i] == UInt8(ascii: ":") else { return false }
                    i += 1
                    guard value(b, &i) else { return false }
                    skipSpace(b, &i)
                    guard i < b.count else { return false }
                    if b[i] == UInt8(ascii: "}") { i += 1; return true }
                    guard b[i] == UInt8(ascii: ",") else { return false }
                    i += 1
                }
            case UInt8(ascii: "["):
                i += 1
                skipSpace(b, &i)
                if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return true }
                while true {
                    guard value(b, &i) else { return false }
                    skipSpace(b, &i)
                    guard i < b.count else { return false }
                    if b[i] == UInt8(ascii: "]") { i += 1; return true }
                    guard b[i] == UInt8(ascii: ",") else { return false }
                    i += 1
                }
            case UInt8(ascii: "\""): return string(b, &i)
            case UInt8(ascii: "t"): return literal(b, &i, "true")
            case UInt8(ascii: "f"): return literal(b, &i, "false")
            case UInt8(ascii: "n"): return literal(b, &i, "null")
            default: return number(b, &i)
            }
        }

        private static func string(_ b: [UInt8], _ i: inout Int) -> Bool {
            guard i < b.count, b[i] == UInt8(ascii: "\"") else { return false }
            i += 1
            while i < b.count {
                let c = b[i]
                i += 1
                if c == UInt8(ascii: "\"") { return true }
                if c < 0x20 { return false }
                if c == UInt8(ascii: "\\") {
                    guard i < b.count else { return false }
                    let e = b[i]
                    i += 1
                    if e == UInt8(ascii: "u") {
                        guard i + 4 <= b.count, b[i..<(i + 4)].allSatisfy(isHexDigit) else { return false }
                        i += 4
                    } else if !Array(#""\/bfnrt"#.utf8).contains(e) {
                        return false
                    }
                }
            }
            return false
        }

        private static func isHexDigit(_ c: UInt8) -> Bool {
            (0x30...0x39).contains(c) || (0x41...0x46).contains(c) || (0x61...0x66).contains(c)
        }

        private static func number(_ b: [UInt8], _ i: inout Int) -> Bool {
            func digits() -> Int {
                let start = i
                while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }
                return i - start
            }
            if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
            guard i < b.count else { return false }
            if b[i] == 0x30 { i += 1 } else if digits() == 0 { return false }
            if i < b.count, b[i] == UInt8(ascii: ".") {
                i += 1
                guard digits() > 0 else { return false }
            }
            if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
                i += 1
                if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
                guard digits() > 0 else { return false }
            }
            return true
        }
    }
}
