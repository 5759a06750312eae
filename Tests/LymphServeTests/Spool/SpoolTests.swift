import Foundation
import LymphServe
import NIOCore
import NIOPosix
import TestSupport
import Testing
@testable import Lymph

@Suite("spool handoff")
struct SpoolHandoffTests {
    static func item(_ n: Int64) -> [UInt8] { Array("entry \(n)".utf8) }

    func seqs(_ taken: [SpoolHandoff.Entry]?) -> [Int64]? { taken?.map(\.seq) }

    @Test("gives consecutive entries, says when the worker has caught up, and sends it to the file past a gap")
    func consecutive() {
        let handoff = SpoolHandoff(maxEntries: 3, maxBytes: 1 << 20)
        // Nothing committed yet: only the file can say what there is (a backlog from before a restart).
        #expect(seqs(handoff.take(after: 0, limit: 10, maxBytes: 1 << 20)) == nil)
        handoff.offer(seqs: [1, 2], items: [Self.item(1), Self.item(2)])
        #expect(seqs(handoff.take(after: 0, limit: 10, maxBytes: 1 << 20)) == [1, 2])
        #expect(seqs(handoff.take(after: 2, limit: 10, maxBytes: 1 << 20)) == [])
        // Over the bound (3 entries), 6 is left to the file.
        handoff.offer(seqs: [3, 4, 5, 6], items: [3, 4, 5, 6].map(Self.item))
        #expect(seqs(handoff.take(after: 2, limit: 2, maxBytes: 1 << 20)) == [3, 4])
        #expect(seqs(handoff.take(after: 4, limit: 10, maxBytes: 1 << 20)) == [5])
        #expect(seqs(handoff.take(after: 5, limit: 10, maxBytes: 1 << 20)) == nil)
        // The worker read 6 from the file: caught up again, and 7 comes from memory.
        #expect(seqs(handoff.take(after: 6, limit: 10, maxBytes: 1 << 20)) == [])
        handoff.offer(seqs: [7], items: [Self.item(7)])
        #expect(seqs(handoff.take(after: 6, limit: 10, maxBytes: 1 << 20)) == [7])
    }

    @Test("the byte bounds hold on both sides: what does not fit is left to the file, a batch stops near its byte limit")
    func byteBounds() {
        let handoff = SpoolHandoff(maxEntries: 100, maxBytes: 25)
        let ten = [UInt8](repeating: 0x61, count: 10)
        handoff.offer(seqs: [1, 2, 3], items: [ten, ten, ten])
        #expect(seqs(handoff.take(after: 0, limit: 10, maxBytes: 1 << 20)) == [1, 2])
        #expect(seqs(handoff.take(after: 2, limit: 10, maxBytes: 1 << 20)) == nil)
        handoff.offer(seqs: [4, 5], items: [ten, ten])
        // Takes until the batch holds at least maxBytes.
        #expect(seqs(handoff.take(after: 3, limit: 10, maxBytes: 5)) == [4])
        #expect(seqs(handoff.take(after: 4, limit: 10, maxBytes: 5)) == [5])
    }

    @Test("entries the worker already read from the file are dropped, not handed over twice")
    func alreadyRead() {
        let handoff = SpoolHandoff()
        handoff.offer(seqs: [10, 11, 12], items: [10, 11, 12].map(Self.item))
        // A backlog before 10 is still in the file.
        #expect(seqs(handoff.take(after: 3, limit: 10, maxBytes: 1 << 20)) == nil)
        #expect(seqs(handoff.take(after: 11, limit: 10, maxBytes: 1 << 20)) == [12])
        #expect(seqs(handoff.take(after: 12, limit: 10, maxBytes: 1 << 20)) == [])
    }

    @Test("only deliveries handed over by the server skip the HMAC; those read back from the spool file are verified again")
    func verifiedAgainFromFile() async throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteSpoolStore.open(path: dir + "/state.spool.sqlite")
        let body = #"{"id":"e1","type":"alert.triggered","created_at":"2026-06-01T00:00:00Z","data":{}}"#
        // Signed with a secret this pipeline does not have: what a spool written under another
        // configuration (before a restart) may hold.
        let foreign = Array(Fixture.delivery(body, secret: "other").utf8)
        let seqs = try store.append([foreign], receivedAt: Timestamp.now())
        #expect(seqs == [1])

        let handoff = SpoolHandoff()
        let source = SpoolSource(backend: store, deleter: store, handoff: handoff, handoffSignaturesChecked: true, doorbell: Doorbell(), maxItemBytes: 1 << 20)
        handoff.offer(seqs: [2], items: [foreign])

        let verify = VerifyStage(secrets: [Array("topsecret".utf8)])
        func outcomes(_ batch: InputBatch?) async throws -> [String] {
            var events: [Event] = [], deadLetters: [DeadLetter] = []
            ParseStage().parse(batch?.items ?? [], events: &events, deadLetters: &deadLetters)
            #expect(deadLetters.isEmpty)
            return try await verify.process(events, context: Fixture.context()).map(\.label)
        }
        let fromFile = try await source.nextBatch(control: RunControl())
        #expect(fromFile?.items.map { $0.prepared == nil } == [true])
        #expect(try await outcomes(fromFile) == ["fail(bad_signature)"])
        let fromMemory = try await source.nextBatch(control: RunControl())
        #expect(fromMemory?.items.map { $0.prepared?.signatureChecked } == [true])
        #expect(try await outcomes(fromMemory) == ["pass"])
    }

    @Test("a body the server parsed and handed over gives the same event as the body read from the delivery line; one with line breaks is parsed again")
    func parsedBodyHandedOver() throws {
        let bodies = [
            #"{"id":"e1","type":"alert.triggered","created_at":"2026-06-01T00:00:00Z","data":{"note":"say \"hi\" \\ ok","x":[1,2.5,null]}}"#,
            "{\"id\":\"e2\",\n \"type\":\"alert.triggered\",\r\n \"created_at\":\"2026-06-01T00:00:00Z\",\"data\":{}}",
        ]
        for body in bodies {
            let line = Array(Fixture.delivery(body, secret: "topsecret").utf8)
            let plain = RawItem(bytes: line[...], source: SourcePosition(file: "spool", line: 1))
            var handed = plain
            handed.prepared = PreparedDelivery(body: try JSONDocument(parsing: Array(body.utf8)), signatureChecked: false)
            guard case .event(let a) = ParseStage().parse(plain), case .event(let b) = ParseStage().parse(handed) else {
                Issue.record("did not parse: \(body)")
                continue
            }
            #expect(Array(a.document.bytes) == Array(b.document.bytes))
            #expect(a.id == b.id && Array(a.typeBytes) == Array(b.typeBytes))
            #expect(Array(b.delivery?.body ?? []) == Array(body.utf8))
            #expect(!b.document.bytes.contains(UInt8(ascii: "\n")))
            // Without line breaks the event holds the handed-over document itself (no second parse).
            let same = b.document.bytes.withUnsafeBufferPointer { e in handed.prepared!.body!.bytes.withUnsafeBufferPointer { $0.baseAddress == e.baseAddress }
            }
            #expect(same == !body.contains("\n"))
            // Unescaped once: kept by the parse stage when it had to, never when handed over.
            #expect(a.delivery?.unescapedBody != nil)
            #expect((b.delivery?.unescapedBody == nil) == !body.contains("\n"))
        }
        // The bound counts what the parser reserved, not only the entries it used.
        let long = Array(#"{"id":"e3","s":""#.utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: 120_000) + Array(#""}"#.utf8)
        #expect(try JSONDocument(parsing: long).memorySize >= long.count + long.count / 12 * MemoryLayout<JSONTapeEntry>.stride)
    }

    @Test("what the server prepared covers the item itself, not a delivery replayed from inside a dead-letter record")
    func notThroughReplay() async throws {
        let body = #"{"id":"e1","type":"alert.triggered","created_at":"2026-06-01T00:00:00Z","data":{}}"#
        let record = #"{"error":{"stage":"verify","reason":"bad_signature"},"delivery":\#(Fixture.delivery(body, secret: "other"))}"#
        var item = RawItem(bytes: Array(record.utf8)[...], source: SourcePosition(file: "spool", line: 1))
        item.prepared = PreparedDelivery(body: nil, signatureChecked: true)
        guard case .event(let event) = ParseStage().parse(item) else {
            Issue.record("the record did not parse")
            return
        }
        let outcome = try await VerifyStage(secrets: [Array("topsecret".utf8)]).process([event], context: Fixture.context())
        #expect(outcome.map(\.label) == ["fail(bad_signature)"])
    }

    @Test("writer, handoff and worker together: every committed entry is taken once, in order, from memory while it fits and from the file past the bound")
    func writerToWorker() async throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/state.spool.sqlite"
        let doorbell = Doorbell()
        let handoff = SpoolHandoff(maxEntries: 16, maxBytes: 1 << 20)
        let writer = SpoolWriter(backend: try SQLiteSpoolStore.open(path: path), doorbell: doorbell, handoff: handoff)
        defer { writer.close() }
        let source = SpoolSource(
            backend: try SQLiteSpoolStore.open(path: path), deleter: writer, handoff: handoff, handoffSignaturesChecked: true,
            doorbell: doorbell, maxItemBytes: 1 << 20)

        func append(_ count: Int, tasks: Int) async throws {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for t in 0..<tasks {
                    group.addTask {
                        for i in 0..<count { _ = try await writer.append(Array("entry \(t)-\(i)".utf8)) }
                    }
                }
                try await group.waitForAll()
            }
        }
        func take(_ total: Int) async throws -> [(seq: Int, checked: Bool)] {
            var taken: [(seq: Int, checked: Bool)] = []
            // Gives up after 30 s without a new entry (the appends' commits sync to disk, which
            // other tests running at the same time can make slow).
            var deadline = Date().addingTimeInterval(30)
            while taken.count < total, Date() < deadline {
                guard let batch = try await source.nextBatch(control: RunControl()) else { break }
                taken += batch.items.map { ($0.source.line, $0.prepared?.signatureChecked == true) }
                if !batch.items.isEmpty { deadline = Date().addingTimeInterval(30) }
            }
            return taken
        }

        // Committed before the worker looks: the first 16 wait in memory, the rest only in the file.
        try await append(10, tasks: 20)
        let first = try await take(200)
        #expect(first.map(\.seq) == Array(1...200))
        #expect(first.filter(\.checked).map(\.seq) == Array(1...16))

        // Appends while the worker runs: still each once and in order, mostly from memory.
        async let second = take(300)
        try await append(30, tasks: 10)
        let taken = try await second
        #expect(taken.map(\.seq) == Array(201...500))
        #expect(taken.contains { $0.checked })
    }

    @Test(
        "callers on event loops are resumed there, a commit's callers in one job per loop: each gets its own sequence number, and a commit the watchdog gave up on answers them 503-style, once",
        .timeLimit(.minutes(3)))
    func resumeOnEventLoops() async throws {
        // On a thread of its own: the stall's timing is the watchdog's, not how soon a cooperative
        // thread (which other suites keep busy) comes back to this test after it is answered.
        try await withOwnThread {
            let dir = Fixture.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let path = dir + "/state.spool.sqlite"
            let loops = MultiThreadedEventLoopGroup(numberOfThreads: 2)
            let writer = SpoolWriter(backend: try SQLiteSpoolStore.open(path: path), doorbell: Doorbell(), deadline: .seconds(1))
            defer { writer.close() }

            let seqs = try await withThrowingTaskGroup(of: [Int64].self) { group in
                for t in 0..<8 {
                    let loop = loops.next()
                    group.addTask {
                        var mine: [Int64] = []
                        for i in 0..<25 { mine.append(try await writer.append(Array("entry \(t)-\(i)".utf8), resumeOn: loop)) }
                        return mine
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(seqs.sorted() == Array(1...200))

            // Another program holds the spool's write lock past the deadline: the watchdog answers
            // the caller (SpoolTimeout), and the commit that lands later resumes nobody a second time.
            let locker = try SQLiteSpoolStore.open(path: path)
            let release = DispatchSemaphore(value: 0)
            let locked = DispatchSemaphore(value: 0)
            Thread {
                try? locker.write { _ in
                    locked.signal()
                    release.wait()
                }
            }.start()
            locked.wait()
            let started = ContinuousClock.now
            await #expect(throws: (any Error).self) { try await writer.append(Array("stalled".utf8), resumeOn: loops.next()) }
            #expect(ContinuousClock.now - started < .seconds(4))
            release.signal()
            // The stalled entry lands after the lock goes; a later caller is answered normally.
            let after = try await writer.append(Array("after".utf8), resumeOn: loops.next())
            #expect(after >= 201)
            try await loops.shutdownGracefully()
        }
    }
}
