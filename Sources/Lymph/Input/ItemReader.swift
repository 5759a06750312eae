#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads items from files (or stdin, named `-`) in order, in batches.
///
/// A source that starts with gzip's magic bytes (1f 8b), whatever its name, is decompressed as
/// it is read (`GzipInflater`: bounded buffers, members one after another); everything below
/// applies to the decompressed bytes, and line numbers count their lines. Each source is NDJSON (one item a line, blank lines skipped, CRLF accepted), a JSON array of
/// items (first non-blank character `[`), or one pretty-printed object. Input is read in large
/// blocks and split on bytes; items are slices of the block, never copied. A line longer than
/// `maxItemBytes` is not buffered: its beginning is kept for the dead letter and the rest
/// skipped. Used by one task at a time.
public final class ItemReader: @unchecked Sendable {
    /// How much is read at a time: each block is a batch, and `lymph run` keeps several in
    /// flight with their parse tapes and events, so this sets most of a run's memory beside the
    /// dedup filters. Larger blocks add memory without speed: the per-batch work (a task, the
    /// stages' statistics, a hand-over to the ordered part) is small beside an eighth of a MiB of
    /// events. Smaller ones save little more memory and begin to cost that work.
    static let blockSize = 128 << 10
    /// The largest JSON array file read as a whole (an array must be parsed entire).
    public static let maxArrayBytes = 256 << 20
    /// How much of an over-long line is kept for its dead letter.
    static let oversizePrefix = 4096

    let paths: [String]
    let maxItemBytes: Int
    /// `blockSize` except in tests and fuzzing, which make blocks small so that their ends
    /// fall everywhere.
    let readSize: Int
    var nextPath = 0
    var current: SourceReader?
    /// Every source was read to its end (as opposed to a stop request or damage).
    public private(set) var finished = false
    /// A gzip source whose data is corrupt or cut short, naming it and the compressed byte
    /// where that was found. Reading ended there: the items before it were handed over (an
    /// unfinished last line too, as an item), and no later source was read. Not thrown, so a
    /// run finishes and commits what came before.
    public private(set) var failure: InputError?
    /// Set by `continueInterrupted`: where the run is, committed with its work.
    var checkpoint: InputCheckpoint?
    /// Items skipped because an interrupted run over the same files had done them.
    public var skippedDone: Int { checkpoint?.skipped ?? 0 }
    /// Inputs of an interrupted run that changed since it was cut short further in than their
    /// first bytes (another item where it stopped, or fewer items than it did): each was read
    /// from its start instead (`InputCheckpoint.Verdict`).
    public private(set) var changedSinceInterrupted: [String] = []
    /// Files that became shorter than what had been read of them while they were read (cut in
    /// place, as `logrotate`'s `copytruncate` does): the read ended at their new end, so what
    /// they held past it was never read. Each with the bytes read and its length at the end.
    public private(set) var cutWhileRead: [(path: String, read: Int64, length: Int64)] = []

    /// A reader of `paths` in order (stdin when the list is empty, or for `-`); of a line longer
    /// than `maxItemBytes`, only the beginning is kept, for its dead letter.
    public convenience init(paths: [String], maxItemBytes: Int) {
        self.init(paths: paths, maxItemBytes: maxItemBytes, readSize: Self.blockSize)
    }

    init(paths: [String], maxItemBytes: Int, readSize: Int) {
        self.paths = paths.isEmpty ? ["-"] : paths
        self.maxItemBytes = maxItemBytes
        self.readSize = readSize
    }

    /// Checks that every named file can be opened and is not a folder, before anything runs;
    /// stdin (no paths, or `-`) only that it is open for reading.
    public static func checkReadable(_ paths: [String]) -> [String] {
        var problems: [String] = []
        // Standard input (no paths, or "-") closed when lymph started: `lymph` holds its number
        // open for writing only (`StandardDescriptors`), so that no other file takes it.
        if paths.isEmpty || paths.contains("-") {
            let flags = fcntl(0, F_GETFL)
            if flags < 0 || (flags & O_ACCMODE) == O_WRONLY {
                problems.append("cannot read input 'stdin': it is not open for reading (closed when lymph started?)")
            }
        }
        return problems
            + paths.filter { $0 != "-" }.compactMap { path in
                // A FIFO (or another file that is not regular) is checked without opening it: an
                // open waits for its writer, and the close after the check would end the stream
                // for it (SIGPIPE) before the run reads a byte.
                var info = stat()
                if stat(path, &info) == 0, (info.st_mode & S_IFMT) != S_IFREG, (info.st_mode & S_IFMT) != S_IFDIR {
                    return access(path, R_OK) == 0 ? nil : "cannot read input '\(path)': \(String(cString: strerror(errno)))"
                }
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                if fd < 0 { return "cannot read input '\(path)': \(String(cString: strerror(errno)))" }
                var st = stat()
                defer { close(fd) }
                guard fstat(fd, &st) == 0 else { return nil }
                if (st.st_mode & S_IFMT) == S_IFDIR { return "input '\(path)' is a folder" }
                return nil
            }
    }

    /// Reads what `store` recorded of an interrupted run: over the same files, the items it
    /// had done are skipped. From now on the reader records its position in the runner's
    /// transactions (`takePending`), until it has read every input to the end. With
    /// `fromStart`, an interrupted run is not continued. Call before the first batch.
    public func continueInterrupted(recordedIn store: StateStore, pipeline: String, fromStart: Bool = false) throws(StoreError) -> InterruptedRun {
        guard let (checkpoint, start) = try InputCheckpoint.open(paths: paths, store: store, pipeline: pipeline, fromStart: fromStart) else {
            return .unavailable
        }
        self.checkpoint = checkpoint
        return start
    }

    /// The next batch, nil at the end of the last source (or when a stop is requested). An
    /// empty batch means a pipe has been quiet for a moment: a chance to finish work in flight.
    public func nextBatch(control: RunControl? = nil) throws(InputError) -> InputBatch? {
        while true {
            if control?.isStopRequested == true { return nil }
            if current == nil {
                guard nextPath < paths.count else {
                    finished = true
                    return nil
                }
                current = try SourceReader(path: paths[nextPath], maxItemBytes: maxItemBytes, readSize: readSize)
                nextPath += 1
            }
            if var batch = try current!.read(control: control) {
                if let checkpoint, !batch.isEmpty, checkpoint.handOut(&batch.items, input: nextPath - 1) == .changed {
                    try readAgainFromStart(checkpoint)
                    continue
                }
                if !batch.isEmpty || batch.idle { return batch }
            } else {
                if current!.stopped { return nil }
                if let checkpoint, current!.damage == nil, checkpoint.endedEarly(input: nextPath - 1) {
                    try readAgainFromStart(checkpoint)
                    continue
                }
                if let cut = current!.cutShort() { cutWhileRead.append((current!.displayName, cut.read, cut.length)) }
                if let damage = current!.damage {
                    // Nothing after a broken input is read: the run ends as if the inputs ended here.
                    failure = damage
                    current = nil
                    nextPath = paths.count
                    return nil
                }
                current = nil
            }
        }
    }
}

extension ItemReader {
    /// The current input changed since the interrupted run: it is opened again and read from
    /// its start, none of it skipped (nothing of it was handed out yet).
    func readAgainFromStart(_ checkpoint: InputCheckpoint) throws(InputError) {
        let index = nextPath - 1
        checkpoint.restart(input: index)
        changedSinceInterrupted.append(paths[index])
        current = try SourceReader(path: paths[index], maxItemBytes: maxItemBytes, readSize: readSize)
    }
}

/// What the reader hands over: the items of one read, or a note that a pipe is quiet.
public struct InputBatch: Sendable {
    /// The items read, in order.
    public var items: [RawItem] = []
    /// Nothing arrived for a while (a quiet pipe): a chance to finish work in flight.
    public var idle = false

    init(items: [RawItem] = [], idle: Bool = false) {
        self.items = items
        self.idle = idle
    }

    var isEmpty: Bool { items.isEmpty }
}

/// An input that cannot be read: the run cannot continue (exit 3).
public struct InputError: Error, Sendable, CustomStringConvertible {
    /// The input as named on the command line (`-` for stdin).
    public let path: String
    /// What went wrong, such as the system's reason.
    public let message: String
    /// `input 'PATH': message`.
    public var description: String { "input '\(path)': \(message)" }
}

/// One open source and its position.
final class SourceReader {
    enum Mode { case sniffing, lines, done }

    let path: String
    let displayName: String
    let fileID: UInt32
    let fd: Int32
    let isPipe: Bool
    let maxItemBytes: Int
    let readSize: Int
    var mode = Mode.sniffing
    var carry: [UInt8] = []
    var line = 0  // lines completed so far
    var eof = false
    /// The raw input has ended (for gzip, the decompressed output may not have yet).
    var rawEOF = false
    /// Whether the source's first bytes have been looked at for gzip's magic bytes.
    var decided = false
    /// The first bytes read, before that decision; handed out (or inflated) first.
    var lookahead: [UInt8] = []
    /// Set for a gzip source.
    var inflater: GzipInflater?
    /// A gzip source whose data is corrupt or cut short: the source ended there, after the
    /// bytes before it.
    var damage: InputError?
    /// A stop was requested while waiting for input: what was read of an unfinished item is
    /// not passed on as if it were complete.
    var stopped = false
    /// Set while skipping the rest of an over-long line: its first bytes, line number and
    /// length so far.
    var skipping: (prefix: ArraySlice<UInt8>, line: Int, length: Int)?

    init(path: String, maxItemBytes: Int, readSize: Int) throws(InputError) {
        self.path = path
        self.maxItemBytes = maxItemBytes
        self.readSize = readSize
        if path == "-" {
            fd = 0
            displayName = "stdin"
        } else {
            // Not waiting in open(2) for a FIFO's writer, where no stop request is seen: the
            // reads that follow wait in poll(2) slices (`wait`), and are blocking again.
            fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
            displayName = path
            if fd < 0 { throw InputError(path: path, message: String(cString: strerror(errno))) }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        }
        fileID = SourceFiles.id(for: displayName)
        var st = stat()
        isPipe = fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) != S_IFREG
    }

    deinit {
        if fd != 0 { close(fd) }
    }

    /// For a regular file read to its end: the bytes read and its length now, when it is shorter
    /// than that (it was cut while it was read); nil otherwise.
    func cutShort() -> (read: Int64, length: Int64)? {
        guard !isPipe else { return nil }
        var st = stat()
        let read = lseek(fd, 0, SEEK_CUR)
        guard read >= 0, fstat(fd, &st) == 0, Int64(st.st_size) < Int64(read) else { return nil }
        return (Int64(read), Int64(st.st_size))
    }

    /// Appends up to `count` bytes to `buffer` (decompressed, for gzip); returns how many (0 at
    /// end of input, on a stop, which also sets `stopped`, or on damage, which sets `damage`).
    /// With `idleAfter`, returns -1 when a pipe stays quiet for 200 ms, so the caller can
    /// finish what is in flight.
    func fill(_ buffer: inout [UInt8], count: Int, control: RunControl?, idleAfter: Bool = false) throws(InputError) -> Int {
        if eof || stopped { return 0 }
        if damage != nil {
            eof = true
            return 0
        }
        if !decided {
            // The first bytes say whether the source is gzip (by its magic bytes, not its name).
            while lookahead.count < GzipInflater.magic.count && !rawEOF {
                switch wait(control: control, idleAfter: idleAfter) {
                case .stopped: return 0
                case .idle: return -1
                case .ready: break
                }
                let more = try readRaw(upTo: count - lookahead.count)
                if more.isEmpty { rawEOF = true }
                lookahead += more
            }
            decided = true
            if lookahead.starts(with: GzipInflater.magic) { inflater = GzipInflater() }
        }
        if inflater != nil { return try fillInflated(&buffer, count: count, control: control, idleAfter: idleAfter) }
        if !lookahead.isEmpty {
            buffer += lookahead
            defer { lookahead = [] }
            return lookahead.count
        }
        if rawEOF {
            eof = true
            return 0
        }
        switch wait(control: control, idleAfter: idleAfter) {
        case .stopped: return 0
        case .idle: return -1
        case .ready: break
        }
        var n = 0
        var err: Int32 = 0
        let fd = self.fd
        func readInto(_ target: UnsafeMutableBufferPointer<UInt8>) {
            repeat {
                n = Glibc.read(fd, target.baseAddress!, target.count)
                err = n < 0 ? errno : 0
            } while n < 0 && err == EINTR
        }
        Self.append(to: &buffer, count: count) { target in
            readInto(target)
            return max(0, n)
        }
        if n < 0 {
            throw InputError(path: path, message: "read failed: \(String(cString: strerror(err)))")
        }
        if n == 0 { eof = true }
        return n
    }

    /// Appends what `write` puts into a `count`-byte space (returning how many) to `buffer`.
    static func append(to buffer: inout [UInt8], count: Int, _ write: (UnsafeMutableBufferPointer<UInt8>) -> Int) {
        let old = buffer.count
        if old <= 64 * 1024 {
            // The usual case (a short carried-over line): one new block, written straight into
            // it, with no zero-filling first.
            let previous = buffer
            buffer = [UInt8](unsafeUninitializedCapacity: old + count) { raw, initialized in
                if old > 0 { previous.withUnsafeBufferPointer { raw.baseAddress!.update(from: $0.baseAddress!, count: old) } }
                initialized = old + write(UnsafeMutableBufferPointer(rebasing: raw[old...]))
            }
        } else {
            // A growing buffer (an array file, a long first line): append, amortised.
            let tail = [UInt8](unsafeUninitializedCapacity: count) { raw, initialized in
                initialized = write(raw)
            }
            buffer.append(contentsOf: tail)
        }
    }

    enum Wait { case ready, stopped, idle }

    /// Waits until a pipe has bytes (a file always has). `.stopped` (and `stopped` set) when a
    /// stop is requested meanwhile; `.idle` after 200 ms of quiet, with `idleAfter`.
    func wait(control: RunControl?, idleAfter: Bool) -> Wait {
        guard isPipe else { return .ready }
        // Wait in short slices so a stop request is seen even when no input comes.
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while poll(&pfd, 1, 200) == 0 {
            if control?.isStopRequested == true {
                stopped = true
                return .stopped
            }
            if idleAfter { return .idle }
        }
        return .ready
    }

    /// Whether a pipe has bytes to read right now.
    func readableNow() -> Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&pfd, 1, 0) > 0
    }

    /// One read(2) of up to `count` raw bytes into `target`; 0 at the end.
    func readRaw(into target: UnsafeMutableRawBufferPointer) throws(InputError) -> Int {
        var n: Int
        repeat {
            n = Glibc.read(fd, target.baseAddress!, target.count)
        } while n < 0 && errno == EINTR
        if n < 0 { throw InputError(path: path, message: "read failed: \(String(cString: strerror(errno)))") }
        return n
    }

    /// Compressed bytes for the inflater: first those read to look for the magic bytes.
    func compressed(into target: UnsafeMutableRawBufferPointer) throws(InputError) -> Int {
        guard lookahead.isEmpty else {
            let n = min(target.count, lookahead.count)
            target.copyBytes(from: lookahead[..<n])
            lookahead.removeFirst(n)
            return n
        }
        return try readRaw(into: target)
    }

    func readRaw(upTo count: Int) throws(InputError) -> [UInt8] {
        var failure: InputError?
        let bytes = [UInt8](unsafeUninitializedCapacity: max(1, count)) { raw, initialized in
            do throws(InputError) { initialized = try readRaw(into: UnsafeMutableRawBufferPointer(raw)) } catch { failure = error }
        }
        if let failure { throw failure }
        return bytes
    }

    /// `fill` for a gzip source: up to `count` decompressed bytes. Compressed bytes are read 64
    /// KiB at a time, only when the inflater has used up the last ones. From a file it fills
    /// the whole `count`; from a pipe it returns what it has rather than wait for more.
    /// Corrupt or truncated data sets `damage` and ends the source after the bytes before it.
    func fillInflated(_ buffer: inout [UInt8], count: Int, control: RunControl?, idleAfter: Bool) throws(InputError) -> Int {
        let inflater = self.inflater!
        var produced = 0
        var waited = Wait.ready
        var failure: InputError?
        Self.append(to: &buffer, count: count) { target in
            let out = UnsafeMutableRawBufferPointer(target)
            while produced < count {
                if inflater.needsInput {
                    if rawEOF && lookahead.isEmpty {
                        if let d = inflater.endOfInput() { damage = InputError(path: displayName, message: "\(d)") }
                        break
                    }
                    if lookahead.isEmpty {
                        if produced > 0 && isPipe && !readableNow() { break }
                        waited = wait(control: control, idleAfter: idleAfter && produced == 0)
                        guard waited == .ready else { break }
                    }
                    var readFailure: InputError?
                    let n = inflater.refill { raw in
                        do throws(InputError) { return try compressed(into: raw) } catch {
                            readFailure = error
                            return -1
                        }
                    }
                    if let readFailure {
                        failure = readFailure
                        break
                    }
                    if n == 0 { rawEOF = true }
                    continue
                }
                var wrote = 0
                do throws(GzipInflater.Damage) {
                    defer { produced += wrote }
                    try inflater.inflate(into: UnsafeMutableRawBufferPointer(rebasing: out[produced...]), produced: &wrote)
                } catch {
                    damage = InputError(path: displayName, message: "\(error)")
                    break
                }
            }
            return produced
        }
        if let failure { throw failure }
        if produced > 0 { return produced }
        switch waited {
        case .stopped: return 0
        case .idle: return -1
        case .ready:
            eof = true
            return 0
        }
    }

    /// The next batch; an empty one when a read produced no complete item, nil at the end.
    func read(control: RunControl?) throws(InputError) -> InputBatch? {
        switch mode {
        case .done:
            return nil
        case .sniffing:
            return try sniff(control: control).map { InputBatch(items: $0) }
        case .lines:
            var block = carry
            carry = []
            let n = try fill(&block, count: readSize, control: control, idleAfter: true)
            if n < 0 {
                carry = block
                return InputBatch(idle: true)
            }
            if stopped || (n == 0 && block.isEmpty && skipping == nil) {
                mode = .done
                return nil
            }
            return InputBatch(items: splitLines(block, atEnd: n == 0))
        }
    }

    /// Looks at the start of the source to choose between lines, an array and one document.
    ///
    /// Detection never throws lines away: a first line that is a whole JSON value makes the
    /// source NDJSON (an object line, or an array line followed by more lines); an array or an
    /// object spread over several lines is taken as one only when the whole source is exactly
    /// that one value; anything else is read as lines.
    func sniff(control: RunControl?) throws(InputError) -> [RawItem]? {
        var block: [UInt8] = []
        // Read until the first line is complete (or the end, or the item limit).
        while true {
            let n = try fill(&block, count: readSize, control: control)
            if stopped { return nil }
            if n == 0 || block.contains(0x0A) || block.count > maxItemBytes { break }
        }
        // A UTF-8 byte order mark (some editors write one) is not part of the first item.
        if block.starts(with: Self.byteOrderMark) { block.removeFirst(Self.byteOrderMark.count) }
        guard let first = block.firstIndex(where: { !Self.isBlank($0) }) else {
            if eof {
                mode = .done
                return nil
            }
            mode = .lines
            return splitLines(block, atEnd: false)
        }
        let opener = block[first]
        guard opener == UInt8(ascii: "[") || opener == UInt8(ascii: "{") else { return lines(block) }
        if opener == UInt8(ascii: "{"), let lineEnd = block[first...].firstIndex(of: 0x0A),
            Self.shape(block[first..<lineEnd], atEnd: true) == .complete
        {
            // The usual NDJSON file: an event on the first line. Decided without reading on, so
            // a live stream is never held up.
            return lines(block)
        }
        // One value may span lines: read on while what has been read can still be the start
        // of exactly one value, checking again each time the block has doubled.
        let limit = opener == UInt8(ascii: "[") ? ItemReader.maxArrayBytes : maxItemBytes
        while true {
            switch Self.shape(block[first...], atEnd: eof) {
            case .broken:
                return lines(block)
            case .complete where eof:
                return opener == UInt8(ascii: "[") ? arrayItems(block, first: first) : [document(block, first: first)]
            case .complete, .prefix:
                break
            }
            if eof || block.count > limit { return lines(block) }
            let target = block.count * 2
            while !eof && !stopped && block.count < target && block.count <= limit {
                _ = try fill(&block, count: 4 * readSize, control: control)
            }
            if stopped { return nil }
        }
    }

    static let byteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]

    /// Line mode from here on, starting with what has been read.
    func lines(_ block: [UInt8]) -> [RawItem] {
        mode = .lines
        return splitLines(block, atEnd: eof)
    }

    enum Shape { case complete, prefix, broken }

    /// Whether `bytes` is one whole JSON value, the start of one that more input could
    /// complete, or neither. Before the end of the input, an error in the last few bytes may be
    /// a character or a literal cut by the read, so it counts as a prefix.
    static func shape(_ bytes: ArraySlice<UInt8>, atEnd: Bool) -> Shape {
        do {
            try JSONParser.validate(bytes)
            return .complete
        } catch {
            if error.truncated { return .prefix }
            return !atEnd && error.offset >= bytes.count - 8 ? .prefix : .broken
        }
    }

    /// The whole source as one pretty-printed object.
    func document(_ block: [UInt8], first: Int) -> RawItem {
        mode = .done
        let startLine = block[..<first].reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) }
        var end = block.count
        while end > first && Self.isBlank(block[end - 1]) { end -= 1 }
        let bytes = block[first..<end]
        return bytes.count > maxItemBytes
            ? RawItem(bytes: bytes.prefix(ItemReader.oversizePrefix), source: SourcePosition(fileID: fileID, line: startLine), oversize: true)
            : RawItem(bytes: bytes, source: SourcePosition(fileID: fileID, line: startLine))
    }

    /// The whole source as one JSON array of items, each element an item at its own line.
    func arrayItems(_ block: [UInt8], first: Int) -> [RawItem] {
        mode = .done
        guard let tape = try? JSONParser.parse(block[...]) else { return lines(block) }
        let startLine = block[..<first].reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) }
        var items: [RawItem] = []
        var i = 1
        let end = Int(tape[0].next)
        var lineAt = startLine
        var scanned = first
        while i < end {
            let e = tape[i]
            let lo = e.kind == .string ? Int(e.start) - 1 : Int(e.start)
            let hi = e.kind == .string ? Int(e.end) + 1 : Int(e.end)
            for k in scanned..<lo where block[k] == 0x0A { lineAt += 1 }
            scanned = lo
            let bytes = block[lo..<hi]
            let source = SourcePosition(fileID: fileID, line: lineAt)
            items.append(
                bytes.count > maxItemBytes
                    ? RawItem(bytes: bytes.prefix(ItemReader.oversizePrefix), source: source, oversize: true)
                    : RawItem(bytes: bytes, source: source))
            i = Int(e.next)
        }
        return items
    }

    /// Splits complete lines off `block`; keeps the unfinished tail in `carry`.
    func splitLines(_ block: [UInt8], atEnd: Bool) -> [RawItem] {
        var items: [RawItem] = []
        items.reserveCapacity(block.count / 256 + 1)
        var start = 0
        // A line holds no LF; with no CR in the block either, the parse stage need not look for
        // line breaks in each of its lines (one scan of the block instead of two of each line).
        let singleLines = block.withUnsafeBytes { ByteScan.find(0x0D, in: $0, from: 0, to: $0.count) == nil }
        block.withUnsafeBytes { raw in
            while let nl = ByteScan.find(0x0A, in: raw, from: start, to: raw.count) {
                emitLine(block, start, nl, singleLine: singleLines, into: &items)
                start = nl + 1
            }
        }
        if start < block.count {
            if atEnd {
                emitLine(block, start, block.count, singleLine: singleLines, into: &items)
            } else if skipping != nil {
                // Still inside an over-long line: keep up to its first 4 KiB, drop the rest.
                keepSkippedPrefix(block[start...])
            } else if block.count - start > maxItemBytes + 1 {  // + 1: a line of the limit may still end in CRLF
                skipping = (block[start...].prefix(ItemReader.oversizePrefix), line + 1, block.count - start)
            } else {
                carry = Array(block[start...])
            }
        } else if atEnd, skipping != nil {
            emitLine(block, block.count, block.count, singleLine: false, into: &items)  // the input ends inside it
        }
        return items
    }

    /// One line, `block[start..<end]` without its newline; `singleLine` when the block has no CR.
    @inline(__always)
    func emitLine(_ block: [UInt8], _ start: Int, _ end: Int, singleLine: Bool, into items: inout [RawItem]) {
        line += 1
        if skipping != nil {
            // The end of an over-long line: its dead letter keeps the same first 4 KiB as a
            // line that fitted in one block would (without the CR of a CRLF).
            keepSkippedPrefix(block[start..<end])
            var prefix = skipping!.prefix
            if skipping!.length <= ItemReader.oversizePrefix && prefix.last == 0x0D { prefix = prefix.dropLast() }
            items.append(RawItem(bytes: prefix, source: SourcePosition(fileID: fileID, line: skipping!.line), oversize: true))
            skipping = nil
            return
        }
        var e = end
        if e > start && block[e - 1] == 0x0D { e -= 1 }
        if e - start > maxItemBytes {
            items.append(
                RawItem(bytes: block[start..<min(e, start + ItemReader.oversizePrefix)], source: SourcePosition(fileID: fileID, line: line), oversize: true))
            return
        }
        // Blank lines are skipped (a line of only spaces too).
        var k = start
        while k < e && Self.isBlank(block[k]) { k += 1 }
        if k == e { return }
        var item = RawItem(bytes: block[start..<e], source: SourcePosition(fileID: fileID, line: line))
        item.singleLine = singleLine
        items.append(item)
    }

    /// Adds bytes of the over-long line being skipped to its kept beginning, up to 4 KiB.
    func keepSkippedPrefix(_ more: ArraySlice<UInt8>) {
        guard var s = skipping, !more.isEmpty else { return }
        s.length += more.count
        if s.prefix.count < ItemReader.oversizePrefix {
            s.prefix = (Array(s.prefix) + more.prefix(ItemReader.oversizePrefix - s.prefix.count))[...]
        }
        skipping = s
    }

    @inline(__always)
    static func isBlank(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }
}
