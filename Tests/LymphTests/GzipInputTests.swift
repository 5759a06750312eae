import CZlib
import Foundation
import Testing
@testable import Lymph

/// gzip members made with the system's zlib, for the reader's tests.
enum Gzip {
    /// One gzip member holding `bytes`.
    static func member(_ bytes: [UInt8], level: Int32 = 6) -> [UInt8] {
        var s = z_stream()
        precondition(deflateInit2_(&s, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK)
        defer { deflateEnd(&s) }
        var out = [UInt8](repeating: 0, count: Int(deflateBound(&s, UInt(bytes.count))) + 64)
        var input = bytes
        let written = input.withUnsafeMutableBufferPointer { inp in
            out.withUnsafeMutableBufferPointer { o in
                s.next_in = inp.baseAddress
                s.avail_in = UInt32(inp.count)
                s.next_out = o.baseAddress
                s.avail_out = UInt32(o.count)
                precondition(deflate(&s, Z_FINISH) == Z_STREAM_END)
                return o.count - Int(s.avail_out)
            }
        }
        return Array(out[..<written])
    }

    static func member(_ text: String, level: Int32 = 6) -> [UInt8] { member(Array(text.utf8), level: level) }
}

@Suite("gzip input")
struct GzipInputTests {
    struct Read {
        let items: [RawItem]
        let failure: InputError?
        var texts: [String] { items.map { String(decoding: $0.bytes, as: UTF8.self) } }
        var lines: [Int] { items.map(\.source.line) }
    }

    func read(_ content: [UInt8], name: String = "input.ndjson.gz", maxItemBytes: Int = 1 << 20, readSize: Int = ItemReader.blockSize) throws -> Read {
        let path = Fixture.temporaryDirectory() + "/" + name
        _ = FileManager.default.createFile(atPath: path, contents: Data(content))
        let reader = ItemReader(paths: [path], maxItemBytes: maxItemBytes, readSize: readSize)
        var all: [RawItem] = []
        while let batch = try reader.nextBatch() { all += batch.items }
        #expect(reader.finished == (reader.failure == nil))
        return Read(items: all, failure: reader.failure)
    }

    static let ndjson =
        (1...2000).map { #"{"id":"evt_\#($0)","type":"alert.triggered","created_at":"2026-06-01T00:00:00Z","data":{}}"# }.joined(separator: "\n") + "\n"

    @Test(
        "a gzip file reads as its decompressed lines, with the same line numbers, whatever the read size",
        arguments: [1, 7, 100, 4096, 1 << 20])
    func sameAsPlain(readSize: Int) throws {
        let plain = try read(Array(Self.ndjson.utf8), name: "plain.ndjson", readSize: readSize)
        let gz = try read(Gzip.member(Self.ndjson), readSize: readSize)
        #expect(gz.failure == nil)
        #expect(gz.texts == plain.texts && gz.texts.count == 2000)
        #expect(gz.lines == Array(1...2000))
    }

    @Test("detected by gzip's magic bytes, not by the name: gzip named .ndjson is inflated, text named .gz is not")
    func byMagicBytes() throws {
        #expect(try read(Gzip.member("{\"a\":1}\n"), name: "events.ndjson").texts == ["{\"a\":1}"])
        #expect(try read(Array("{\"a\":1}\n".utf8), name: "events.ndjson.gz").texts == ["{\"a\":1}"])
    }

    @Test("members one after another (cat a.gz b.gz) are one input, numbered on")
    func multiMember() throws {
        let r = try read(Gzip.member("{\"a\":1}\n{\"b\":2}\n") + Gzip.member("{\"c\":3}\n") + Gzip.member("") + Gzip.member("{\"d\":4}"))
        #expect(r.failure == nil)
        #expect(r.texts == ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}", "{\"d\":4}"])
        #expect(r.lines == [1, 2, 3, 4])
    }

    @Test("a line that spans a member boundary is one line", arguments: [3, 1 << 20])
    func lineAcrossMembers(readSize: Int) throws {
        let r = try read(Gzip.member("{\"a\":1}\n{\"id\":") + Gzip.member("\"x\"}\n{\"b\":2}\n"), readSize: readSize)
        #expect(r.failure == nil)
        #expect(r.texts == ["{\"a\":1}", "{\"id\":\"x\"}", "{\"b\":2}"])
        #expect(r.lines == [1, 2, 3])
    }

    @Test("an empty gzip member, and an empty file, give no items and no error")
    func empty() throws {
        let r = try read(Gzip.member(""))
        #expect(r.items.isEmpty && r.failure == nil)
        let e = try read([])
        #expect(e.items.isEmpty && e.failure == nil)
    }

    @Test("a JSON array inside gzip is read as its elements")
    func array() throws {
        let r = try read(Gzip.member("[\n {\"a\": 1},\n {\"b\": 2}\n]\n"), readSize: 5)
        #expect(r.texts == ["{\"a\": 1}", "{\"b\": 2}"] && r.lines == [2, 3])
    }

    @Test("corrupt data ends the input with an error naming the file and the compressed byte; the lines before it are kept")
    func corrupt() throws {
        // A second member whose first deflate block has an invalid type (found in byte 11).
        let first = Gzip.member(Self.ndjson)
        var second = Gzip.member("{\"late\":1}\n")
        second[10] = 0xFF  // the first deflate block's header: an invalid block type
        let r = try read(first + second, name: "broken.gz")
        let failure = try #require(r.failure)
        #expect(failure.path.hasSuffix("/broken.gz"))
        #expect(failure.message.contains("gzip data is corrupt at compressed byte \(first.count + 11)"), "\(failure)")
        #expect(r.texts.count == 2000 && r.lines == Array(1...2000))
    }

    @Test("a bad CRC at the end of a member is corrupt data, after its lines were read")
    func badChecksum() throws {
        var gz = Gzip.member(Self.ndjson)
        gz[gz.count - 8] ^= 0x01  // CRC-32 in the trailer
        let r = try read(gz)
        #expect(r.failure?.message.contains("incorrect data check") == true, "\(String(describing: r.failure))")
        #expect(r.texts.count == 2000)
    }

    @Test("a truncated stream is an error at the byte where it ends; a line cut short becomes an item", arguments: [1, 4096, 1 << 20])
    func truncated(readSize: Int) throws {
        let gz = Gzip.member(Self.ndjson, level: 0)  // stored: every byte cut off is text lost
        let cut = Array(gz[..<(gz.count - 100)])
        let r = try read(cut, readSize: readSize)
        let failure = try #require(r.failure)
        #expect(failure.message.contains("gzip data is truncated: it ends inside a member at compressed byte \(cut.count)"), "\(failure)")
        // 92 bytes of text are missing (100 less the 8-byte trailer); the line they cut is an
        // item as it stands (parse makes it a dead letter).
        let kept = String(decoding: Array(Self.ndjson.utf8).dropLast(92), as: UTF8.self)
        #expect(r.texts == kept.split(separator: "\n").map(String.init))
        #expect(!r.texts.last!.hasSuffix("{}}"))
    }

    @Test("bytes after the last member that are not gzip are an error, not silently dropped")
    func trailingGarbage() throws {
        let r = try read(Gzip.member("{\"a\":1}\n") + Array("{\"b\":2}\n".utf8))
        #expect(r.texts == ["{\"a\":1}"])
        #expect(r.failure?.message.contains("bytes after gzip member 1 are not another member") == true, "\(String(describing: r.failure))")
    }

    @Test("a decompression bomb stays within the limits: one over-long line is cut, not buffered")
    func bomb() throws {
        // 64 MiB of one line compresses to about 64 KiB.
        let huge = [UInt8](repeating: UInt8(ascii: "x"), count: 64 << 20)
        let gz = Gzip.member(Array("{\"a\":1}\n".utf8) + huge + Array("\n{\"b\":2}\n".utf8), level: 9)
        #expect(gz.count < 1 << 20)
        let r = try read(gz, maxItemBytes: 1000)
        #expect(r.failure == nil)
        #expect(r.items.count == 3)
        #expect(r.items[1].oversize && r.items[1].bytes.count == 4096 && r.items[1].source.line == 2)
        #expect(r.texts[2] == "{\"b\":2}" && r.lines[2] == 3)
    }

    @Test("a broken first input stops the reader: later inputs are not read")
    func laterInputsNotRead() throws {
        let dir = Fixture.temporaryDirectory()
        var gz = Gzip.member("{\"a\":1}\n")
        gz[10] = 0xFF
        _ = FileManager.default.createFile(atPath: dir + "/a.gz", contents: Data(gz))
        _ = FileManager.default.createFile(atPath: dir + "/b.ndjson", contents: Data("{\"b\":2}\n".utf8))
        let reader = ItemReader(paths: [dir + "/a.gz", dir + "/b.ndjson"], maxItemBytes: 1 << 20)
        var all: [RawItem] = []
        while let batch = try reader.nextBatch() { all += batch.items }
        #expect(all.isEmpty)
        #expect(reader.failure?.path == dir + "/a.gz")
        #expect(!reader.finished)
    }

    @Test("gzip from a pipe that delivers a byte at a time is detected and inflated")
    func fromPipe() throws {
        let dir = Fixture.temporaryDirectory()
        let fifo = dir + "/pipe"
        #expect(mkfifo(fifo, 0o600) == 0)
        let gz = Gzip.member("{\"a\":1}\n{\"b\":2}\n") + Gzip.member("{\"c\":3}\n")
        let writer = Thread {
            let fd = open(fifo, O_WRONLY)
            for b in gz {
                var byte = b
                _ = write(fd, &byte, 1)
                usleep(200)
            }
            close(fd)
        }
        writer.start()
        let reader = ItemReader(paths: [fifo], maxItemBytes: 1 << 20, readSize: 64)
        var all: [RawItem] = []
        while let batch = try reader.nextBatch() { all += batch.items }
        #expect(reader.failure == nil)
        #expect(all.map { String(decoding: $0.bytes, as: UTF8.self) } == ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"])
        #expect(all.map(\.source.line) == [1, 2, 3])
    }
}
