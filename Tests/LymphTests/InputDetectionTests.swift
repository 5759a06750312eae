import Foundation
import Testing
@testable import Lymph

/// Choosing between NDJSON, a JSON array and one pretty-printed object never throws a file's
/// lines away: when in doubt, lines.
@Suite("input detection")
struct InputDetectionTests {
    func items(_ content: [UInt8], maxItemBytes: Int = 1 << 20, readSize: Int = ItemReader.blockSize) throws -> [RawItem] {
        let path = Fixture.temporaryDirectory() + "/input"
        _ = FileManager.default.createFile(atPath: path, contents: Data(content))
        let reader = ItemReader(paths: [path], maxItemBytes: maxItemBytes, readSize: readSize)
        var all: [RawItem] = []
        while let batch = try reader.nextBatch() { all += batch.items }
        return all
    }

    func texts(_ items: [RawItem]) -> [String] { items.map { String(decoding: $0.bytes, as: UTF8.self) } }

    static func event(_ n: Int) -> String {
        #"{"id":"evt_\#(n)","type":"prediction.created","created_at":"2026-06-01T00:00:00Z","data":{"confidence":0.9}}"#
    }

    @Test("a first line that is a JSON array, followed by 10,000 events, is NDJSON: every line is an item", arguments: [1 << 20, 4096])
    func arrayFirstLine(readSize: Int) throws {
        let head = #"["evt_x","prediction.created","2026-06-01T00:00:00Z",{}]"#
        let text = ([head] + (1...10_000).map(Self.event)).joined(separator: "\n") + "\n"
        let r = try items(Array(text.utf8), readSize: readSize)
        #expect(r.count == 10_001)
        #expect(texts(Array(r.prefix(2))) == [head, Self.event(1)])
        #expect(r.last.map { String(decoding: $0.bytes, as: UTF8.self) } == Self.event(10_000))
        #expect(r.map(\.source.line) == Array(1...10_001))
        #expect(!r.contains { $0.oversize })
    }

    @Test("an array on one line, alone in the file, is still an array of items")
    func oneLineArray() throws {
        let r = try items(Array("[\(Self.event(1)), \(Self.event(2))]\n".utf8))
        #expect(texts(r) == [Self.event(1), Self.event(2)])
    }

    @Test("an object spread over lines whose first line is not '{' alone is one item")
    func prettyObject() throws {
        let text = "{\"id\":\"x\",\"type\":\"t.x\",\"created_at\":\"2025-01-01T00:00:00Z\",\"data\":{\"v\":[1\n]}}\n"
        let r = try items(Array(text.utf8))
        #expect(r.count == 1)
        #expect(texts(r) == ["{\"id\":\"x\",\"type\":\"t.x\",\"created_at\":\"2025-01-01T00:00:00Z\",\"data\":{\"v\":[1\n]}}"])
        #expect(r.first?.source.line == 1)
    }

    @Test("a truncated first line followed by events is NDJSON: the broken line is one item, the events follow")
    func truncatedFirstLine() throws {
        let text = "{\"id\":\"a\",\"type\":\n" + (1...3).map(Self.event).joined(separator: "\n") + "\n"
        let r = try items(Array(text.utf8), readSize: 64)
        #expect(texts(r) == ["{\"id\":\"a\",\"type\":"] + (1...3).map(Self.event))
        #expect(r.map(\.source.line) == [1, 2, 3, 4])
    }

    @Test("an array broken in the middle is read as lines, not one dead item")
    func brokenArray() throws {
        let text = "[\n\(Self.event(1)),\n\(Self.event(2)) oops,\n\(Self.event(3))\n]\n"
        let r = try items(Array(text.utf8))
        #expect(r.count == 5)
        #expect(r.map(\.source.line) == [1, 2, 3, 4, 5])
    }

    @Test("a pretty-printed array read in small blocks is still one array (a cut character is not a syntax error)")
    func smallBlocks() throws {
        let text =
            "[\n" + (1...50).map { "  " + Self.event($0).replacingOccurrences(of: "0.9", with: "0.9, \"note\": \"ünïcödé\"") }.joined(separator: ",\n")
            + "\n]\n"
        for readSize in [7, 64, 333] {
            let r = try items(Array(text.utf8), readSize: readSize)
            #expect(r.count == 50, "read size \(readSize)")
            #expect(r.first?.source.line == 2)
        }
    }

    @Test("a UTF-8 byte order mark is skipped: the first event is read like the others", arguments: ["ndjson", "array", "document"])
    func byteOrderMark(_ shape: String) throws {
        let body: String
        switch shape {
        case "ndjson": body = Self.event(1) + "\n" + Self.event(2) + "\n"
        case "array": body = "[\n" + Self.event(1) + ",\n" + Self.event(2) + "\n]\n"
        default: body = "{\n  \"id\": \"x\",\n  \"data\": {}\n}\n"
        }
        let r = try items([0xEF, 0xBB, 0xBF] + Array(body.utf8))
        #expect(!r.isEmpty)
        #expect(r.allSatisfy { $0.bytes.first == UInt8(ascii: "{") }, "\(texts(r))")
        if shape != "document" { #expect(texts(r) == [Self.event(1), Self.event(2)]) }
    }
}
