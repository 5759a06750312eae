import Foundation
import Testing
@testable import Lymph

@Suite("input reader")
struct ItemReaderTests {
    func items(_ content: [UInt8], maxItemBytes: Int = 1 << 20, readSize: Int = ItemReader.blockSize) throws -> [RawItem] {
        let path = Fixture.temporaryDirectory() + "/input"
        FileManager.default.createFile(atPath: path, contents: Data(content))
        let reader = ItemReader(paths: [path], maxItemBytes: maxItemBytes, readSize: readSize)
        var all: [RawItem] = []
        while let batch = try reader.nextBatch() { all += batch.items }
        return all
    }

    func texts(_ items: [RawItem]) -> [String] { items.map { String(decoding: $0.bytes, as: UTF8.self) } }

    @Test(
        "a file cut shorter than what was read of it while it is read (copytruncate) is reported with what was read and its new length; one read whole is not")
    func cutWhileRead() throws {
        let path = Fixture.temporaryDirectory() + "/input"
        let lines = (0..<100).map { #"{"n":\#($0)}"# }.joined(separator: "\n") + "\n"
        FileManager.default.createFile(atPath: path, contents: Data(lines.utf8))
        let reader = ItemReader(paths: [path], maxItemBytes: 1 << 20, readSize: 256)
        let first = try #require(try reader.nextBatch())
        #expect(!first.items.isEmpty)
        #expect(truncate(path, 10) == 0)
        var after = 0
        while let batch = try reader.nextBatch() { after += batch.items.count }
        #expect(first.items.count + after < 100)
        #expect(reader.cutWhileRead.count == 1)
        #expect(reader.cutWhileRead.first?.path == path && reader.cutWhileRead.first?.length == 10)
        #expect((reader.cutWhileRead.first?.read ?? 0) >= 256)

        let whole = ItemReader(paths: [path], maxItemBytes: 1 << 20, readSize: 256)
        while try whole.nextBatch() != nil {}
        #expect(whole.cutWhileRead.isEmpty)
    }

    @Test("NDJSON: lines with positions, blank lines skipped, CRLF and a missing last newline accepted")
    func lines() throws {
        let r = try items(Array("{\"a\":1}\r\n\n   \n{\"b\":2}\n{\"c\":3}".utf8))
        #expect(texts(r) == ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"])
        #expect(r.map(\.source.line) == [1, 4, 5])
    }

    @Test("a CR inside a line (JSON whitespace) is not written out, whichever block the line is read in; lines of blocks without one are written as read")
    func crInsideLine() throws {
        let plain = #"{"id":"p%d","type":"alert.triggered","created_at":"2026-06-01T00:00:00Z","data":{}}"#
        let withCR = "{\"id\":\"c\",\r\"type\":\"alert.triggered\",\"created_at\":\"2026-06-01T00:00:00Z\",\r \"data\":{}}"
        // With blocks of 64 bytes the CR line's block and the plain lines' blocks differ.
        let lines = (0..<6).map { String(format: plain, $0) } + [withCR] + (6..<12).map { String(format: plain, $0) }
        for readSize in [64, ItemReader.blockSize] {
            let read = try items(Array((lines.joined(separator: "\n") + "\n").utf8), readSize: readSize)
            var events: [Event] = []
            var dead: [DeadLetter] = []
            ParseStage().parse(read, events: &events, deadLetters: &dead)
            #expect(dead.isEmpty)
            let written = events.map { String(decoding: $0.document.bytes, as: UTF8.self) }
            #expect(written.count == 13)
            #expect(written.allSatisfy { !$0.contains("\r") && !$0.contains("\n") }, "read in blocks of \(readSize)")
            #expect(written.filter { $0.hasPrefix(#"{"id":"p"#) } == (0..<12).map { String(format: plain, $0) })
            #expect(read.filter { $0.bytes.contains(0x0D) }.map(\.singleLine) == [false])
            #expect(read.contains(where: \.singleLine) == (readSize == 64))
        }
    }

    @Test("a JSON array file gives one item per element, at its line")
    func array() throws {
        let r = try items(Array("\n[\n  {\"a\": 1},\n  {\"b\":\n 2}, 3\n]\n".utf8))
        #expect(texts(r) == ["{\"a\": 1}", "{\"b\":\n 2}", "3"])
        #expect(r.map(\.source.line) == [3, 4, 5])
    }

    @Test("a file holding one pretty-printed object is one item")
    func document() throws {
        let r = try items(Array("{\n  \"id\": \"x\",\n  \"data\": {}\n}\n".utf8))
        #expect(r.count == 1)
        #expect(r[0].source.line == 1)
    }

    @Test("broken multi-line input falls back to lines")
    func brokenDocument() throws {
        let r = try items(Array("{\n\"a\": \n".utf8))
        #expect(texts(r) == ["{", "\"a\": "])
    }

    @Test("an over-long line is cut, not buffered, and the next line is read normally")
    func oversize() throws {
        let long = [UInt8](repeating: UInt8(ascii: "x"), count: 3 << 20)
        let r = try items(Array("{\"a\":1}\n".utf8) + long + Array("\n{\"b\":2}\n".utf8), maxItemBytes: 1000)
        #expect(r.count == 3)
        #expect(r[1].oversize && r[1].bytes.count == 4096 && r[1].source.line == 2)
        #expect(texts([r[2]]) == ["{\"b\":2}"] && r[2].source.line == 3)
    }

    @Test("many lines across blocks keep their numbers")
    func manyLines() throws {
        // About 4 MiB: several read blocks, lines cut at every block boundary.
        let content = (1...400_000).map { "{\"n\":\($0)}" }.joined(separator: "\n")
        let r = try items(Array(content.utf8))
        #expect(r.count == 400_000)
        #expect(r.enumerated().allSatisfy { $1.source.line == $0 + 1 && texts([$1])[0] == "{\"n\":\($0 + 1)}" })
    }

    @Test("an over-long line inside a block is cut there; blank and CRLF lines around it are handled")
    func oversizeInsideBlock() throws {
        let long = String(repeating: "y", count: 5000)
        let r = try items(Array("{\"a\":1}\r\n\(long)\n\n{\"b\":2}\r\n".utf8), maxItemBytes: 4096)
        #expect(r.count == 3)
        #expect(!r[0].oversize && texts([r[0]]) == ["{\"a\":1}"])
        #expect(r[1].oversize && r[1].source.line == 2 && r[1].bytes.count == 4096)
        #expect(texts([r[2]]) == ["{\"b\":2}"] && r[2].source.line == 4)
    }

    @Test("a small item limit keeps at most the line itself, never bytes of the next lines")
    func smallLimit() throws {
        let r = try items(Array("{\"a\":1}\n\(String(repeating: "z", count: 300))\n{\"b\":2}\n".utf8), maxItemBytes: 100)
        #expect(r.count == 3)
        #expect(r[1].oversize && r[1].bytes.count == 300 && r[1].bytes.allSatisfy { $0 == UInt8(ascii: "z") })
        #expect(texts([r[2]]) == ["{\"b\":2}"])
    }

    // Both found by scripts/fuzz (target `reader`), which reads with small blocks.
    @Test("an over-long line that crosses a block end keeps the same first 4 KiB as one inside a block")
    func oversizeAcrossBlocks() throws {
        let long = String(repeating: "q", count: 3000)
        for readSize in [7, 512, 2999, 3001, 1 << 20] {
            let r = try items(Array("{\"a\":1}\n\(long)\r\n{\"b\":2}\n".utf8), maxItemBytes: 1000, readSize: readSize)
            #expect(r.count == 3, "read size \(readSize)")
            #expect(r[1].oversize && texts([r[1]]) == [long] && r[1].source.line == 2, "read size \(readSize)")
            #expect(texts([r[2]]) == ["{\"b\":2}"] && r[2].source.line == 3, "read size \(readSize)")
        }
    }

    @Test("across blocks, the kept beginning stops at 4 KiB; a CR is dropped only as the line's own end")
    func oversizePrefixEdges() throws {
        let head = String(repeating: "h", count: 4096)
        let line4095 = String(repeating: "v", count: 4095)
        for readSize in [7, 512, 4095, 4097] {
            // Longer than 4 KiB: the first 4096 bytes, whatever follows.
            var r = try items(Array("\(head)tail\r\nnext\n".utf8), maxItemBytes: 1000, readSize: readSize)
            #expect(texts(r) == [head, "next"] && r[0].oversize, "read size \(readSize)")
            // 4095 bytes and CRLF: the line without its CR, as in one block.
            r = try items(Array("\(line4095)\r\nnext\n".utf8), maxItemBytes: 1000, readSize: readSize)
            #expect(texts(r) == [line4095, "next"] && r[0].oversize, "read size \(readSize)")
            // 4096 bytes that end in CR, then the end of the file inside the line.
            r = try items(Array("#\n\(line4095)\r".utf8), maxItemBytes: 1000, readSize: readSize)
            #expect(texts(r) == ["#", line4095] && r[1].oversize && r[1].source.line == 2, "read size \(readSize)")
            r = try items(Array("#\n\(head)x".utf8), maxItemBytes: 1000, readSize: readSize)
            #expect(texts(r) == ["#", head] && r[1].oversize, "read size \(readSize)")
        }
    }

    @Test("a line of exactly the limit fits even when its CRLF starts in the next block")
    func limitAndCRLFAcrossBlocks() throws {
        let line = String(repeating: "w", count: 100)
        for readSize in [1, 3, 50, 101, 103] {
            let r = try items(Array("#\n\(line)\r\n\(line)\r".utf8), maxItemBytes: 100, readSize: readSize)
            #expect(texts(r) == ["#", line, line], "read size \(readSize)")
            #expect(r.allSatisfy { !$0.oversize }, "read size \(readSize)")
        }
    }
}
