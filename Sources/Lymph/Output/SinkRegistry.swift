import Synchronization

/// Opens each output path once, so stages and the pipeline output that name the same file
/// (or `-`) share one descriptor and their lines stay in order.
public final class SinkRegistry: Sendable {
    private let sinks = Mutex<[String: FileSink]>([:])
    let diskFull: DiskFullWait?

    public init(diskFull: DiskFullWait? = nil) {
        self.diskFull = diskFull
    }

    /// `-` and `stdout` are standard output, `stderr` standard error; anything else a file path.
    public func sink(for path: String) throws(OutputError) -> FileSink {
        switch path {
        case "-", "stdout": return .standardOutput
        case "stderr": return .standardError
        default: break
        }
        let result: Result<FileSink, OutputError> = sinks.withLock { sinks in
            if let existing = sinks[path] { return .success(existing) }
            do throws(OutputError) {
                let sink = try FileSink.append(path: path, diskFull: diskFull)
                sinks[path] = sink
                return .success(sink)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    public func closeAll() {
        sinks.withLock { sinks in
            for sink in sinks.values { sink.close() }
            sinks.removeAll()
        }
    }
}
