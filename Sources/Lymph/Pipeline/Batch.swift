/// A run of consecutive items moving through the pipeline together.
///
/// Batches amortise the per-call costs (a store transaction, a write(2)) and are the unit of
/// parallelism: several batches go through the concurrent stages at once, and the runner
/// restores their order before the first serial stage.
struct Batch: Sendable {
    let sequence: Int
    var events: [Event] = []
    var deadLetters: [DeadLetter] = []
    /// Indexed like `Pipeline.stages`, with parse first.
    var stats: [StageStats]
    /// Time each stage spent on this batch, in seconds (indexed like `stats`).
    var stageSeconds: [Double]
    var completedClaims: [DedupClaim] = []
    var failedClaims: [DedupClaim] = []
    /// An event with claims was replaced, and each of its replacements carries them (one that
    /// came with them already carries them twice): a claim may be in `completedClaims` more
    /// than once.
    var sharedClaims = false
    var itemsRead = 0
    /// Set once events and dead letters have been turned into bytes (and the events freed).
    var encoded = false
    var encodedOutput: [UInt8] = []
    var encodedDeadLetters: [UInt8] = []
    var passed = 0
    var deadLetterCount = 0
    /// Some events are replays that re-enter at a later stage (`Event.resumeAt`).
    var resuming = false

    init(sequence: Int, stageCount: Int) {
        self.sequence = sequence
        self.stats = Array(repeating: StageStats(), count: stageCount)
        self.stageSeconds = Array(repeating: 0, count: stageCount)
    }
}
