#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import Foundation
import Synchronization

/// Opens each output path once, so stages and the pipeline output that name the same file
/// (or `-`) share one descriptor and their lines stay in order. Two paths that name one
/// regular file (`out.jsonl` and `./out.jsonl`, a symlink) share one sink too.
public final class SinkRegistry: Sendable {
    private let sinks = Mutex<[String: FileSink]>([:])
    let diskFull: DiskFullWait?
    /// Set by `capturing(limit:)`: the most bytes each sink keeps in memory.
    let captureLimit: Int?

    /// No file open yet; with `diskFull`, writes to the files opened wait out a full disk instead
    /// of failing.
    public init(diskFull: DiskFullWait? = nil) {
        self.diskFull = diskFull
        self.captureLimit = nil
    }

    private init(captureLimit: Int) {
        self.diskFull = nil
        self.captureLimit = captureLimit
    }

    /// A registry that opens nothing: every path, stdout and stderr included, is a sink kept in
    /// memory (`FileSink.capturing`), up to `limit` bytes each, so a test run touches no file.
    public static func capturing(limit: Int) -> SinkRegistry {
        SinkRegistry(captureLimit: limit)
    }

    /// What the capturing sink for `path` was given (empty when nothing wrote there).
    public func captured(_ path: String) -> [UInt8] {
        let key = Self.captureKey(path)
        return sinks.withLock { $0[key] }?.captured ?? []
    }

    /// One key per place: `-` and `stdout` are one, and `./x` and `x` are one.
    static func captureKey(_ path: String) -> String {
        switch path {
        case "-", "stdout": return "stdout"
        case "stderr": return "stderr"
        default: return URL(fileURLWithPath: path).standardizedFileURL.path
        }
    }

    /// `-` and `stdout` are standard output, `stderr` standard error; anything else a file path.
    public func sink(for path: String) throws(OutputError) -> FileSink {
        if let limit = captureLimit {
            let key = Self.captureKey(path)
            return sinks.withLock { sinks in
                if let existing = sinks[key] { return existing }
                let sink = FileSink.capturing(path: path, limit: limit)
                sinks[key] = sink
                return sink
            }
        }
        switch path {
        case "-", "stdout": return .standardOutput
        case "stderr": return .standardError
        default: break
        }
        let result: Result<FileSink, OutputError> = sinks.withLock { sinks in
            if let existing = sinks[path] { return .success(existing) }
            do throws(OutputError) {
                var sink = try FileSink.append(path: path, diskFull: diskFull)
                if let identity = FileIdentity(descriptor: sink.fd),
                    let same = sinks.values.first(where: { FileIdentity(descriptor: $0.fd) == identity })
                {
                    sink.close()
                    sink = same
                }
                sinks[path] = sink
                return .success(sink)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// The files opened so far, each once, by path.
    var openFiles: [FileSink] {
        sinks.withLock { sinks in
            var seen = Set<ObjectIdentifier>()
            return sinks.values.filter { seen.insert(ObjectIdentifier($0)).inserted }.sorted { $0.path < $1.path }
        }
    }

    /// Closes every file opened so far and forgets them: a later `sink(for:)` opens its path again.
    public func closeAll() {
        sinks.withLock { sinks in
            for sink in sinks.values { sink.close() }
            sinks.removeAll()
        }
    }
}
