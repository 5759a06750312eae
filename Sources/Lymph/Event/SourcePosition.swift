import Synchronization

/// Where an item came from: a file (or `stdin`) and a 1-based line.
///
/// The file is an index into a process-wide table rather than a `String`: positions are copied
/// with every event on several threads at once, and a shared string's reference count would
/// make those threads contend on one cache line.
public struct SourcePosition: Sendable, Hashable, CustomStringConvertible {
    /// The file's index in `SourceFiles`.
    let fileID: UInt32
    /// The line the item starts on, counted from 1 (a spool entry's sequence number for `lymph
    /// serve`).
    public var line: Int

    /// A position in `file` at `line`; each file name is stored once per process.
    public init(file: String, line: Int) {
        self.fileID = SourceFiles.id(for: file)
        self.line = line
    }

    /// A position in the file `SourceFiles` numbered `fileID`.
    init(fileID: UInt32, line: Int) {
        self.fileID = fileID
        self.line = line
    }

    /// The file's name: a path as given, `stdin`, or `spool` for `lymph serve`'s entries.
    public var file: String { SourceFiles.name(for: fileID) }

    /// `FILE:LINE`.
    public var description: String { "\(file):\(line)" }
}

/// The names behind `SourcePosition.fileID`; a run reads few files, so this stays small.
enum SourceFiles {
    private static let table = Mutex<(names: [String], ids: [String: UInt32])>(([], [:]))

    /// The number of `name`, given it on first use.
    static func id(for name: String) -> UInt32 {
        table.withLock { t in
            if let id = t.ids[name] { return id }
            let id = UInt32(t.names.count)
            t.names.append(name)
            t.ids[name] = id
            return id
        }
    }

    /// The most names a run numbers from what it reads (`id(forRecorded:)`), and the longest.
    static let recordedLimit = (names: 1_024, bytes: 4_096)

    /// The number of `name`, a file named inside an item read (a dead-letter record's first
    /// source); nil when it is new and the table already holds `limit` names, or it is longer
    /// than `recordedLimit.bytes`. Inputs named by the operator are always numbered.
    static func id(forRecorded name: String, limit: Int = recordedLimit.names) -> UInt32? {
        guard name.utf8.count <= recordedLimit.bytes else { return nil }
        return table.withLock { t in
            if let id = t.ids[name] { return id }
            guard t.names.count < limit else { return nil }
            let id = UInt32(t.names.count)
            t.names.append(name)
            t.ids[name] = id
            return id
        }
    }

    /// The name numbered `id`, or `?` for a number never given.
    static func name(for id: UInt32) -> String {
        table.withLock { t in Int(id) < t.names.count ? t.names[Int(id)] : "?" }
    }
}
