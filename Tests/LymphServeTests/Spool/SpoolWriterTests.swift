import Foundation
@testable import LymphServe
import Synchronization
import Testing
@testable import Lymph

/// A spool backend that records what the writer asks of it and can hold a commit "on the disk"
/// until the test lets it go: the writer and the source take any `SpoolBackend`.
final class RecordingBackend: SpoolBackend {
    struct Append: Equatable {
        let items: [String]
        let deleteThrough: Int64?
    }

    enum Call: Equatable {
        case append(Append)
        case delete(through: Int64)
    }

    struct State {
        var calls: [Call] = []
        var entries: [SpoolEntry] = []
        var next: Int64 = 1
        /// Appends carrying a delete fail this many more times.
        var failingDeletes = 0
    }

    let state = Mutex(State())
    /// Signalled when an append starts.
    let started = DispatchSemaphore(value: 0)
    /// While closed, appends wait for it (a commit stalled on the disk).
    let gate = Mutex<DispatchSemaphore?>(nil)

    var calls: [Call] { state.withLock { $0.calls } }

    func hold() { gate.withLock { $0 = DispatchSemaphore(value: 0) } }
    func release() {
        gate.withLock {
            $0?.signal(); $0 = nil
        }
    }

    func append(_ items: [[UInt8]], receivedAt: Double, deleteThrough: Int64?) throws(StoreError) -> [Int64] {
        starts.withLock { $0.append(ContinuousClock.now) }
        started.signal()
        if let gate = gate.withLock({ $0 }) {
            _ = gate.wait(timeout: .now() + 30)
            gate.signal()
        }
        let failed: Bool = state.withLock { s in
            s.calls.append(.append(Append(items: items.map { String(decoding: $0, as: UTF8.self) }, deleteThrough: deleteThrough)))
            if deleteThrough != nil && s.failingDeletes > 0 {
                s.failingDeletes -= 1
                return true
            }
            if let deleteThrough { s.entries.removeAll { $0.seq <= deleteThrough } }
            return false
        }
        if failed { throw StoreError(location: "test", message: "the delete failed") }
        return state.withLock { s in
            items.map { item in
                defer { s.next += 1 }
                s.entries.append(SpoolEntry(seq: s.next, receivedAt: receivedAt, item: item))
                return s.next
            }
        }
    }

    func fetch(after seq: Int64, limit: Int, maxBytes: Int) throws(StoreError) -> [SpoolEntry] {
        state.withLock { s in Array(s.entries.filter { $0.seq > seq }.prefix(limit)) }
    }

    func delete(through seq: Int64) throws(StoreError) -> Int {
        state.withLock { s in
            s.calls.append(.delete(through: seq))
            let before = s.entries.count
            s.entries.removeAll { $0.seq <= seq }
            return before - s.entries.count
        }
    }

    func highestSeq() throws(StoreError) -> Int64 { state.withLock { $0.next - 1 } }
    func depth() throws(StoreError) -> SpoolDepth { state.withLock { SpoolDepth(count: $0.entries.count, oldestReceivedAt: $0.entries.first?.receivedAt) } }
    func probeWritable() throws(StoreError) {}
    /// How long the source lets a small batch wait for more (the protocol's default: not at all).
    let gather: Duration?
    var gatherFor: Duration? { gather }
    /// The least time between the starts of two appends under load (the default: none).
    let interval: Duration?
    var appendInterval: Duration? { interval }
    /// When each append started.
    let starts = Mutex<[ContinuousClock.Instant]>([])

    init(gather: Duration? = nil, appendInterval: Duration? = nil) {
        self.gather = gather
        self.interval = appendInterval
    }
}

/// Sequence numbers (or errors) from completions run on the writer's thread, waited for with a deadline.
final class Completions: Sendable {
    let results = Mutex<[String: Result<Int64, any Error>]>([:])
    let done = DispatchSemaphore(value: 0)

    func completion(_ name: String) -> SpoolWriter.Completion {
        { result in
            self.results.withLock { $0[name] = result }
            self.done.signal()
        }
    }

    /// Waits for `count` completions, 30 s at most in all.
    func wait(_ count: Int) -> Bool {
        let deadline = DispatchTime.now() + 30
        for _ in 0..<count where done.wait(timeout: deadline) == .timedOut { return false }
        return true
    }

    func seq(_ name: String) -> Int64? { results.withLock { try? $0[name]?.get() } }
}

@Suite("spool writer")
struct SpoolWriterTests {
    @Test("appends that arrive while a commit is on the disk go together in the next one", .timeLimit(.minutes(1)))
    func groupCommit() throws {
        let backend = RecordingBackend()
        let commits = Atomic<Int>(0)
        let writer = SpoolWriter(backend: backend, doorbell: Doorbell(), deadline: .seconds(30), onCommit: { commits.add(1, ordering: .relaxed) })
        defer { writer.close() }
        let done = Completions()
        backend.hold()
        writer.append(Array("first".utf8), on: nil, completion: done.completion("first"))
        #expect(backend.started.wait(timeout: .now() + 30) == .success)
        for i in 0..<50 { writer.append(Array("e\(i)".utf8), on: nil, completion: done.completion("e\(i)")) }
        backend.release()
        #expect(done.wait(51))

        #expect(backend.calls == [.append(.init(items: ["first"], deleteThrough: nil)), .append(.init(items: (0..<50).map { "e\($0)" }, deleteThrough: nil))])
        #expect(commits.load(ordering: .relaxed) == 2)
        // Each caller gets its own entry's number, in the order they came.
        #expect(done.seq("first") == 1)
        #expect((0..<50).map { done.seq("e\($0)") } == (2...51).map { Int64($0) })
    }

    @Test(
        "with an append interval, webhooks arriving under load wait for it and go in one append; one arriving after a quiet spell goes at once",
        .timeLimit(.minutes(1)))
    func appendInterval() throws {
        let backend = RecordingBackend(appendInterval: .seconds(1))
        let writer = SpoolWriter(backend: backend, doorbell: Doorbell(), deadline: .seconds(30))
        defer { writer.close() }
        let done = Completions()
        writer.append(Array("first".utf8), on: nil, completion: done.completion("first"))
        #expect(done.wait(1))
        for i in 0..<5 {
            writer.append(Array("e\(i)".utf8), on: nil, completion: done.completion("e\(i)"))
            Thread.sleep(forTimeInterval: 0.02)
        }
        #expect(done.wait(5))
        let starts = backend.starts.withLock { $0 }
        #expect(starts.count == 2)
        #expect(starts[1] - starts[0] >= .seconds(1))
        #expect(backend.calls.last == .append(.init(items: (0..<5).map { "e\($0)" }, deleteThrough: nil)))
        // Nothing arrived for longer than the interval: the next webhook does not wait.
        Thread.sleep(forTimeInterval: 1.2)
        let sent = ContinuousClock.now
        writer.append(Array("later".utf8), on: nil, completion: done.completion("later"))
        #expect(done.wait(1))
        #expect(ContinuousClock.now - sent < .milliseconds(500))
    }

    @Test("the worker's deletes ride in the next append's transaction", .timeLimit(.minutes(1)))
    func deleteRidesWithAppend() throws {
        let backend = RecordingBackend()
        let writer = SpoolWriter(backend: backend, doorbell: Doorbell())
        defer { writer.close() }
        let done = Completions()
        backend.hold()
        writer.append(Array("a".utf8), on: nil, completion: done.completion("a"))
        #expect(backend.started.wait(timeout: .now() + 30) == .success)
        writer.deleteEntries(through: 1)
        writer.append(Array("b".utf8), on: nil, completion: done.completion("b"))
        backend.release()
        #expect(done.wait(2))
        #expect(backend.calls == [.append(.init(items: ["a"], deleteThrough: nil)), .append(.init(items: ["b"], deleteThrough: 1))])
    }

    @Test("a delete that fails does not take the appends with it: they commit alone, and the delete rides with the next commit", .timeLimit(.minutes(1)))
    func failedDeleteCarried() throws {
        let backend = RecordingBackend()
        let writer = SpoolWriter(backend: backend, doorbell: Doorbell())
        defer { writer.close() }
        let done = Completions()
        backend.hold()
        writer.append(Array("a".utf8), on: nil, completion: done.completion("a"))
        #expect(backend.started.wait(timeout: .now() + 30) == .success)
        backend.state.withLock { $0.failingDeletes = 1 }
        writer.deleteEntries(through: 1)
        writer.append(Array("b".utf8), on: nil, completion: done.completion("b"))
        backend.release()
        #expect(done.wait(2))
        #expect(done.seq("b") == 2)
        writer.append(Array("c".utf8), on: nil, completion: done.completion("c"))
        #expect(done.wait(1))
        #expect(
            backend.calls == [
                .append(.init(items: ["a"], deleteThrough: nil)), .append(.init(items: ["b"], deleteThrough: 1)),
                .append(.init(items: ["b"], deleteThrough: nil)), .append(.init(items: ["c"], deleteThrough: 1)),
            ])
    }

    @Test("a large delete goes a bounded number of entries per transaction: the appends it rides with do not wait for all of it", .timeLimit(.minutes(1)))
    func largeDeleteInSteps() throws {
        let backend = RecordingBackend()
        // 3,000 entries a worker has finished (one state commit's worth under load).
        _ = try backend.append((1...3000).map { Array("old\($0)".utf8) }, receivedAt: 0, deleteThrough: nil)
        _ = backend.started.wait(timeout: .now())  // that append's signal: the writer's first is awaited below
        let writer = SpoolWriter(backend: backend, doorbell: Doorbell(), deadline: .seconds(30))
        let done = Completions()
        backend.hold()
        writer.append(Array("a".utf8), on: nil, completion: done.completion("a"))
        #expect(backend.started.wait(timeout: .now() + 30) == .success)
        writer.deleteEntries(through: 3000)
        writer.append(Array("b".utf8), on: nil, completion: done.completion("b"))
        backend.release()
        #expect(done.wait(2))
        writer.close()
        let step = SpoolWriter.maxDeletes
        #expect(step < 3000)
        #expect(
            Array(backend.calls.dropFirst()) == [
                .append(.init(items: ["a"], deleteThrough: nil)), .append(.init(items: ["b"], deleteThrough: step)),
                .delete(through: 2 * step), .delete(through: 3000),
            ])
        #expect(try backend.fetch(after: 0, limit: 10, maxBytes: 1 << 20).map(\.seq) == [3001, 3002])
    }

    @Test("a delete with nothing to append commits on its own")
    func deleteAlone() throws {
        let backend = RecordingBackend()
        let writer = SpoolWriter(backend: backend, doorbell: Doorbell())
        let done = Completions()
        writer.append(Array("a".utf8), on: nil, completion: done.completion("a"))
        #expect(done.wait(1))
        writer.deleteEntries(through: 1)
        // Close commits what is queued before the thread ends.
        writer.close()
        #expect(backend.calls == [.append(.init(items: ["a"], deleteThrough: nil)), .delete(through: 1)])
        #expect(try backend.depth().count == 0)
    }
}

@Suite("spool source")
struct SpoolSourceTests {
    static let body = #"{"id":"e1","type":"alert.triggered","created_at":"2026-06-01T00:00:00Z","data":{}}"#

    @Test("done entries go to the deleter it was given, after the state commit, not to the backend", .timeLimit(.minutes(1)))
    func injectedDeleter() async throws {
        let dir = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let state = try StateStore.open(path: dir + "/state.sqlite")
        let backend = RecordingBackend()
        _ = try backend.append((1...3).map { Array("entry \($0)".utf8) }, receivedAt: 0, deleteThrough: nil)
        let deleter = RecordingBackend()
        let source = SpoolSource(backend: backend, deleter: deleter, doorbell: Doorbell(), maxItemBytes: 1 << 20)
        let batch = try await source.nextBatch(control: RunControl())
        #expect(batch?.items.map(\.source.line) == [1, 2, 3])
        source.batchFinished()
        // Finished, not yet committed: nothing may go.
        #expect(deleter.calls == [])
        let write = try source.takePending()
        try state.write { db in try write?.write(db) }
        #expect(try state.spoolDoneThrough() == 3)
        source.pendingWritten()
        #expect(deleter.calls == [.delete(through: 3)])
        #expect(source.deleted.load(ordering: .relaxed) == 3)
        #expect(try backend.depth().count == 3)
    }

    @Test("only entries taken from the handoff carry what the server prepared; the signature verdict follows the running pipeline", .timeLimit(.minutes(1)))
    func preparedOnlyFromHandoff() async throws {
        let line = Array(Fixture.delivery(Self.body).utf8)
        let backend = RecordingBackend()
        _ = try backend.append([line], receivedAt: 0, deleteThrough: nil)
        let handoff = SpoolHandoff()
        let source = SpoolSource(
            backend: backend, deleter: backend, handoff: handoff, handoffSignaturesChecked: true, doorbell: Doorbell(), maxItemBytes: 1 << 20)
        let parsed = try JSONDocument(parsing: Array(Self.body.utf8))
        // Entry 1 is only in the backend (before a restart); 2 and 3 were handed over, 3 without a body.
        handoff.offer(seqs: [2, 3], items: [line, line], bodies: [parsed, nil])

        let fromBackend = try #require(try await source.nextBatch(control: RunControl()))
        #expect(fromBackend.items.map(\.source.line) == [1])
        #expect(fromBackend.items[0].prepared == nil)

        let handed = try #require(try await source.nextBatch(control: RunControl()))
        #expect(handed.items.map(\.source.line) == [2, 3])
        #expect(handed.items.map { $0.prepared?.signatureChecked } == [true, true])
        #expect(handed.items[0].prepared?.body?.bytes.elementsEqual(Self.body.utf8) == true)
        #expect(handed.items[1].prepared?.body == nil)

        // A pipeline with two verify stages: handed-over bodies still save the parse, not the HMAC.
        source.handoffSignaturesChecked = false
        handoff.offer(seqs: [4, 5], items: [line, line], bodies: [parsed, nil])
        let after = try #require(try await source.nextBatch(control: RunControl()))
        #expect(after.items.map(\.source.line) == [4, 5])
        #expect(after.items[0].prepared?.signatureChecked == false && after.items[0].prepared?.body != nil)
        #expect(after.items[1].prepared == nil)
    }

    @Test("a ring for entries already taken does not make an idle batch: only a spool quiet for the whole idle wait does", .timeLimit(.minutes(1)))
    func staleRingIsNotIdle() async throws {
        let line = Array(Fixture.delivery(Self.body).utf8)
        let backend = RecordingBackend()
        let handoff = SpoolHandoff()
        let doorbell = Doorbell()
        let source = SpoolSource(backend: backend, deleter: backend, handoff: handoff, doorbell: doorbell, maxItemBytes: 1 << 20)
        // The writer commits entry 1, offers it and rings; the worker takes it before it waits.
        _ = try backend.append([line], receivedAt: 0, deleteThrough: nil)
        handoff.offer(seqs: [1], items: [line])
        doorbell.ring()
        let first = try #require(try await source.nextBatch(control: RunControl()))
        #expect(first.items.map(\.source.line) == [1])
        source.batchFinished()

        // The ring is still there; nothing new is. An idle batch makes the runner commit, so it
        // comes only after the whole idle wait (a lower bound: a slow machine only adds to it).
        let started = ContinuousClock.now
        let idle = try #require(try await source.nextBatch(control: RunControl()))
        #expect(idle.idle && idle.items.isEmpty)
        #expect(started.duration(to: .now) >= SpoolSource<RecordingBackend>.idleWait)

        // An entry committed during a wait ends it with that entry.
        let waiting = Task { try await source.nextBatch(control: RunControl()) }
        try await Task.sleep(for: .milliseconds(20))
        _ = try backend.append([line], receivedAt: 0, deleteThrough: nil)
        handoff.offer(seqs: [2], items: [line])
        doorbell.ring()
        var batch = try #require(try await waiting.value)
        // Only when this machine kept the ring from the waiter past the idle wait does an idle batch come first.
        while batch.idle { batch = try #require(try await source.nextBatch(control: RunControl())) }
        #expect(batch.items.map(\.source.line) == [2])
    }

    @Test(
        "a small batch of handed-over entries waits for more, but only handed-over entries join it: what the server did is said per batch",
        .timeLimit(.minutes(1)))
    func gatherJoinsHandedOverOnly() async throws {
        let line = Array(Fixture.delivery(Self.body).utf8)
        let backend = RecordingBackend(gather: .milliseconds(5))
        let handoff = SpoolHandoff()
        let source = SpoolSource(
            backend: backend, deleter: backend, handoff: handoff, handoffSignaturesChecked: true, doorbell: Doorbell(), maxItemBytes: 1 << 20)
        // Entries 1 to 3 are in the file; the handoff holds 1 and 3 (2 was left out of it).
        _ = try backend.append([line, line, line], receivedAt: 0, deleteThrough: nil)
        handoff.offer(seqs: [1], items: [line])
        handoff.offer(seqs: [3], items: [line])

        // 1 comes handed over; what follows it is read back from the file, and does not join.
        let handed = try #require(try await source.nextBatch(control: RunControl()))
        #expect(handed.items.map(\.source.line) == [1])
        #expect(handed.items.map { $0.prepared?.signatureChecked } == [true])
        // Read back from the file: a batch of its own, checked again, and no wait to join it.
        let fromFile = try #require(try await source.nextBatch(control: RunControl()))
        #expect(fromFile.items.map(\.source.line) == [2, 3])
        #expect(fromFile.items.map { $0.prepared == nil } == [true, true])
    }

    @Test("after stop the source hands out nothing more and says it read everything it was to", .timeLimit(.minutes(1)))
    func stopWakesAWait() async throws {
        let backend = RecordingBackend()
        let source = SpoolSource(backend: backend, deleter: backend, doorbell: Doorbell(), maxItemBytes: 1 << 20)
        // An empty spool: the source waits for the doorbell (up to its idle wait), then says idle.
        let idle = try await source.nextBatch(control: RunControl())
        #expect(idle?.idle == true && idle?.items.isEmpty == true)
        source.stop()
        #expect(source.isStopping)
        #expect(try await source.nextBatch(control: RunControl()) == nil)
        #expect(source.finished)
    }
}
