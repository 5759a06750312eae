import Foundation
import Lymph
import ServiceLifecycle

/// `lymph serve --watch`: looks at the pipeline file once a second and reloads it when it
/// changed (its size, modification time or inode: an editor that saves by renaming a new file
/// over the old one changes the inode). Polling rather than inotify: one `stat` a second costs
/// nothing, and it sees a file replaced through a symlink or a mounted folder too.
struct PipelineFileWatcher: Service {
    let served: ServedPipeline
    var interval: Duration = .seconds(1)

    struct Stamp: Equatable {
        var size: Int64, modified: Int64, modifiedNanoseconds: Int64, inode: UInt64
    }

    static func stamp(_ path: String) -> Stamp? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Stamp(size: Int64(st.st_size), modified: Int64(st.st_mtim.tv_sec), modifiedNanoseconds: Int64(st.st_mtim.tv_nsec), inode: UInt64(st.st_ino))
    }

    func run() async throws {
        // Ends with graceful shutdown (the sleep is cancelled then).
        try? await cancelWhenGracefulShutdown { [served, interval] in
            var last = Self.stamp(served.path)
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                let now = Self.stamp(served.path)
                // A file missing for a moment (being replaced) is looked at again next time.
                guard let now, now != last else { continue }
                last = now
                served.reload(trigger: "watch")
            }
        }
    }
}
