#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import GRDB

/// How far `lymph run` got through its input files, committed in the runner's transaction
/// (`lymph_run_inputs`) with the work those items left behind, so the two always match.
///
/// A run that ends normally deletes the record. A run cut short (`kill -9`, a signal, a store
/// failure) leaves it, and the next run over the same files skips the items whose work was
/// committed: their events, dead letters and log lines are already in the files (which
/// `OutputLedger` cut back to the same commit), so nothing is written twice. Without this a
/// restart re-reads everything: dedup drops the events already done, but an item that failed
/// (a malformed line, a bad signature) has no key, and would be a dead letter a second time.
///
/// The record is the pipeline's own (by its name): another pipeline on the same state file keeps
/// its own, and reads its inputs from the start.
///
/// "The same files" means the same list, in the same order, each the same file (device and
/// inode) starting with the same bytes (a fingerprint of its first 4 KiB as first read), so a
/// file rewritten in place, renamed over or replaced is read from the start. Files may have
/// grown. With each input's count of done items goes its last done item (line and a fingerprint
/// of its bytes, `ResumePoint`): a line deleted or added further in, in place (an editor saving
/// over the file), moves the items under the count, and the skip would drop an item never done or
/// do one twice; the next run finds another item there and reads that input from the start
/// (`Verdict.changed`). stdin and pipes cannot be read twice, so a run that reads one keeps no
/// record: after a crash it reads from the start (at-least-once).
final class InputCheckpoint {
    /// One input file as recorded.
    struct Identity: Sendable, Equatable {
        var path: String
        var device: UInt64
        var inode: UInt64
        var headLength: Int
        var headFingerprint: UInt64
    }

    static let headBytes = 4096

    /// An input's last done item: where the next run resumes, it must find the same item.
    struct ResumePoint: Sendable, Equatable {
        var line: Int
        var fingerprint: UInt64

        init(line: Int, fingerprint: UInt64) {
            self.line = line
            self.fingerprint = fingerprint
        }

        init(_ item: RawItem) {
            self.init(line: item.source.line, fingerprint: OutputLedger.fingerprint(item.bytes))
        }
    }

    /// What `handOut` found of an input the interrupted run had done part of.
    enum Verdict: Equatable {
        /// Its items are where they were (or there was nothing to check).
        case same
        /// Another item (or none) is where the interrupted run stopped: the input is read from
        /// its start (`restart`).
        case changed
    }

    let inputs: [Identity]
    /// The pipeline whose record this is.
    let pipeline: String
    /// Items of each input whose work is committed.
    private(set) var done: [Int]
    /// The last of each input's done items, written with `done` (nil when none is done, or for
    /// a record an older version wrote).
    private(set) var lastDone: [ResumePoint?]
    /// The interrupted run's last done items, checked where the skip ends.
    let resumeAt: [ResumePoint?]
    /// Items of each input still to skip (done by the interrupted run).
    var toSkip: [Int]
    /// Items handed out so far from each input, skipped ones included.
    var handedOut: [Int]
    /// The end of each batch handed out and not yet finished, in order, and its last item.
    var batchEnds = FIFO<(input: Int, through: Int, last: ResumePoint)>()
    /// Inputs whose `done` changed since the last write.
    var changed = Set<Int>()
    /// The rows of this run are in the table (the old record was replaced).
    var recorded = false
    /// Every item was read and every batch finished: the record goes at the next commit.
    var complete = false
    /// What the transaction in flight writes.
    var writing = Writing.nothing
    /// Items skipped because the interrupted run had done them.
    private(set) var skipped = 0

    init(inputs: [Identity], pipeline: String, done: [Int], lastDone: [ResumePoint?]? = nil, recorded: Bool) {
        self.inputs = inputs
        self.pipeline = pipeline
        self.done = done
        self.lastDone = lastDone ?? Array(repeating: nil, count: inputs.count)
        self.resumeAt = self.lastDone
        self.toSkip = done
        self.handedOut = Array(repeating: 0, count: inputs.count)
        self.recorded = recorded
    }

    /// The identity of each path, or nil when one of them cannot be read twice (stdin, a pipe,
    /// a device) or cannot be opened now.
    static func identities(of paths: [String]) -> [Identity]? {
        var result: [Identity] = []
        for path in paths {
            guard path != "-" else { return nil }
            // Not opened unless regular: opening a FIFO to look at it would take its stream.
            var info = stat()
            guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
            let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            var st = stat()
            guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
            var head = [UInt8](repeating: 0, count: headBytes)
            var got = 0
            while got < headBytes {
                let n = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + got, headBytes - got, off_t(got)) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { break }
                got += n
            }
            result.append(
                Identity(
                    path: path, device: UInt64(st.st_dev), inode: UInt64(st.st_ino), headLength: got,
                    headFingerprint: OutputLedger.fingerprint(head[0..<got])))
        }
        return result
    }

    /// The checkpoint for a run of `pipeline` over `paths`, after reading what `store` recorded
    /// for it. Nil when the inputs cannot be read twice. With `fromStart`, a recorded
    /// interrupted run is ignored (and replaced at the first commit).
    static func open(paths: [String], store: StateStore, pipeline: String, fromStart: Bool) throws(StoreError) -> (InputCheckpoint, InterruptedRun)? {
        guard let inputs = identities(of: paths) else { return nil }
        let rows = try store.runInputs(pipeline: pipeline)
        let fresh = InputCheckpoint(inputs: inputs, pipeline: pipeline, done: Array(repeating: 0, count: inputs.count), recorded: false)
        if rows.isEmpty { return (fresh, .fresh) }
        let same =
            !fromStart && rows.count == inputs.count
            && zip(rows, inputs).allSatisfy { row, input in
                row.identity.device == input.device && row.identity.inode == input.inode
                    && row.identity.headFingerprint
                        == (input.headLength >= row.identity.headLength
                            ? fingerprint(path: input.path, length: row.identity.headLength) : nil)
            }
        if same {
            // The recorded identities stay: the fingerprint is of the bytes first read.
            let checkpoint = InputCheckpoint(
                inputs: rows.map(\.identity), pipeline: pipeline, done: rows.map(\.done), lastDone: rows.map(\.lastDone), recorded: true)
            return (checkpoint, .continuing(done: rows.map(\.done)))
        }
        return (fresh, .replaced(paths: rows.map(\.identity.path)))
    }

    /// The fingerprint of the first `length` bytes of `path`, nil when it has fewer.
    static func fingerprint(path: String, length: Int) -> UInt64? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: length)
        var got = 0
        while got < length {
            let n = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + got, length - got, off_t(got)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            got += n
        }
        return got == length ? OutputLedger.fingerprint(head[...]) : nil
    }

    /// Drops from `items` (read from input `index`) those the interrupted run had done, and
    /// remembers where the batch ends. `.changed` when the last item skipped is not the one the
    /// interrupted run did last: `items` are then left as they were, for `restart`.
    func handOut(_ items: inout [RawItem], input index: Int) -> Verdict {
        if toSkip[index] > 0 {
            let n = min(toSkip[index], items.count)
            if n == toSkip[index], let expected = resumeAt[index], ResumePoint(items[n - 1]) != expected { return .changed }
            items.removeFirst(n)
            toSkip[index] -= n
            handedOut[index] += n
            skipped += n
        }
        guard let last = items.last else { return .same }
        handedOut[index] += items.count
        batchEnds.append((index, handedOut[index], ResumePoint(last)))
        return .same
    }

    /// Whether input `index` ended with items of the interrupted run still to skip: it holds
    /// fewer than were done, so it changed.
    func endedEarly(input index: Int) -> Bool { toSkip[index] > 0 }

    /// Input `index` changed since the interrupted run (`handOut`, `endedEarly`): none of it is
    /// skipped, and it is read again from its start, whose items this run has not handed out.
    func restart(input index: Int) {
        skipped -= handedOut[index]
        toSkip[index] = 0
        handedOut[index] = 0
        done[index] = 0
        lastDone[index] = nil
        changed.insert(index)
    }

    /// The oldest batch handed out has left the pipeline.
    func batchFinished() {
        guard let end = batchEnds.popFirst() else { return }
        done[end.input] = end.through
        lastDone[end.input] = end.last
        changed.insert(end.input)
    }

    /// What to write in the runner's transaction: the inputs' progress as of now (values: the
    /// batches finished after this belong to the next transaction).
    func takePending() -> PendingWrite? {
        let pipeline = pipeline
        if complete && batchEnds.isEmpty {
            writing = .clear
            return PendingWrite { db in try StateStore.clearRunInputs(db, pipeline: pipeline) }
        }
        let done = done
        let lastDone = lastDone
        if !recorded {
            let inputs = inputs
            writing = .all
            changed.removeAll()
            return PendingWrite { db in
                try StateStore.clearRunInputs(db, pipeline: pipeline)
                for (index, input) in inputs.enumerated() {
                    try StateStore.recordRunInput(db, pipeline: pipeline, index: index, input, done: done[index], last: lastDone[index])
                }
            }
        }
        if changed.isEmpty { return nil }
        let indices = changed.sorted()
        writing = .some(Set(indices))
        changed.removeAll()
        return PendingWrite { db in
            for index in indices { try StateStore.updateRunInput(db, pipeline: pipeline, index: index, done: done[index], last: lastDone[index]) }
        }
    }

    /// After that transaction committed.
    func written() {
        if case .all = writing { recorded = true }
        writing = .nothing
    }

    /// That transaction rolled back: what it wrote is to be written again.
    func notWritten() {
        switch writing {
        case .some(let indices): changed.formUnion(indices)
        case .all, .clear: changed.formUnion(inputs.indices)
        case .nothing: break
        }
        writing = .nothing
    }

    /// What the transaction in flight writes.
    enum Writing {
        case nothing, clear, all
        case some(Set<Int>)
    }

}

/// What a run over files found recorded of an earlier, interrupted run (`ItemReader.continueInterrupted`).
public enum InterruptedRun: Sendable, Equatable {
    /// The inputs include stdin or a pipe, which cannot be read twice: no record is kept.
    case unavailable
    /// No interrupted run was recorded.
    case fresh
    /// An interrupted run over the same files: this many items of each were done, and are skipped.
    case continuing(done: [Int])
    /// An interrupted run over other files (or files changed since) was recorded; this run
    /// reads its inputs from the start and replaces the record.
    case replaced(paths: [String])
}
