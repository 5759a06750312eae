/// A dedup key an event holds while it is inside the pipeline.
///
/// The key is committed to the store only once the event has left the pipeline, so a crash in
/// between means the event is processed again on the next run instead of being lost.
public struct DedupClaim: Sendable, Hashable {
    /// Index of the claiming stage in the pipeline.
    public let stageIndex: Int
    /// The key's bytes: a string's contents, or a number as written.
    public let key: [UInt8]

    /// A claim of `key` by the stage at `stageIndex`.
    public init(stageIndex: Int, key: [UInt8]) {
        self.stageIndex = stageIndex
        self.key = key
    }

    /// The key hashed as one block of bytes (an array hashes element by element).
    public func hash(into hasher: inout Hasher) {
        hasher.combine(stageIndex)
        key.withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}
