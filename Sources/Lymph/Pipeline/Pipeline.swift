import Foundation

/// A pipeline ready to run: stages built, store and outputs open, secrets read.
public final class Pipeline: Sendable {
    /// A built stage with what the runner needs around it.
    struct RunningStage: Sendable {
        let name: String
        let kind: String
        let when: Condition?
        let stage: any Stage
    }

    /// Command-line replacements for paths in the file.
    public struct Overrides: Sendable {
        /// `--state`: a path for the store, or `memory`.
        public var statePath: String?
        /// `--output`: `-`, a file path, or `none`.
        public var output: String?
        /// `--dead-letter`: where rejected events go.
        public var deadLetter: String?
        /// Nothing replaced unless given.
        public init(statePath: String? = nil, output: String? = nil, deadLetter: String? = nil) {
            self.statePath = statePath
            self.output = output
            self.deadLetter = deadLetter
        }
    }

    /// The pipeline file as read, with the overrides applied (`state` as the store was opened
    /// with).
    public let spec: PipelineSpec
    /// The pipeline's store: nil when no stage keeps state and none was asked for.
    public let store: StateStore?
    /// Held while the pipeline is open: its store belongs to this process.
    let lock: StoreLock?
    /// Set by `lymph serve`: writes wait out a full disk instead of failing.
    public let diskFull: DiskFullWait?
    let parse: ParseStage
    /// What seals the resume points of dead letters past the last `verify` (nil without one).
    let resumeSeal: ResumeSeal?
    let stages: [RunningStage]
    /// Index of the first stage whose dead letters resume at their stage on replay: the one
    /// after the last `verify` (a failure up to there replays the delivery from the top, so its
    /// signature is checked over the bytes that came in).
    let resumableFrom: Int
    let replays: ReplayLedger
    let output: FileSink?
    let deadLetters: FileSink
    let sinks: SinkRegistry
    /// Commits the output files' lengths with the store, and cut them back at start: nil
    /// without a state file (nothing to remember them in).
    public let outputs: OutputLedger?
    /// The time stages are told it is (`StageContext.now`), in seconds since 1970: the wall
    /// clock, or a test's fixed time (`lymph test`).
    public let clock: @Sendable () -> Double

    /// Secrets are read first, so a missing one stops the run before anything is opened.
    /// `requireStore`: open the store even when no stage keeps state (`lymph serve`'s spool).
    /// `sinks`: where outputs, log stages and dead letters go (files opened on demand unless
    /// given; `lymph test` gives one that keeps them in memory). `clock`: the time stages see.
    public static func open(
        _ spec: PipelineSpec, overrides: Overrides = Overrides(),
        environment: [String: String] = ProcessInfo.processInfo.environment,
        now: Double = Timestamp.now(), requireStore: Bool = false,
        storeDurability: StoreDurability = .normal, concurrentReads: Bool = true, diskFull: DiskFullWait? = nil,
        sinks: SinkRegistry? = nil, postgres: PostgresState? = nil, clock: @escaping @Sendable () -> Double = { Timestamp.now() }
    ) throws -> Pipeline {
        try Self.checkSecrets(spec, environment: environment)
        var spec = spec
        if let s = overrides.statePath {
            spec.statePath = s == "memory" ? nil : s
            spec.postgres = nil
            spec.namesState = spec.statePath != nil
        }
        if let o = overrides.output { spec.output = o == "none" ? nil : o }
        if let dl = overrides.deadLetter { spec.deadLetter = dl }

        var store: StateStore?
        var lock: StoreLock?
        // A state the file (or --state) names is opened whatever its stages keep: it also holds
        // where each output file's committed work ends (a rerun after a crash cuts the rest), how
        // far the inputs were read, and the replays done (a record replayed twice does its work
        // once). The default store only for a stage that keeps state (`PipelineSpec.namesState`).
        let wantsStore = spec.namesState || spec.usesStore || requireStore
        if let wanted = spec.postgres, wantsStore {
            // Opened by the caller (it takes a connection and a lease, which are asynchronous).
            guard let postgres else {
                throw StoreError(location: wanted.description, message: "the PostgreSQL state was not opened")
            }
            store = try StateStore.postgres(postgres)
        } else if wantsStore {
            if let path = spec.statePath { lock = try StoreLock.acquire(forState: path) }
            store = try StateStore.open(path: spec.statePath ?? ":memory:", durability: storeDurability, concurrentReads: concurrentReads)
        }
        return try build(
            spec, store: store, lock: lock, diskFull: diskFull, sinks: sinks ?? SinkRegistry(diskFull: diskFull),
            environment: environment, now: now, clock: clock)
    }

    /// Reads every secret the stages name, so that one that cannot be read stops the start,
    /// said where the file names it (as `lymph check` says it).
    package static func checkSecrets(_ spec: PipelineSpec, environment: [String: String]) throws(SecretError) {
        for entry in spec.stages {
            for reference in entry.spec.secrets {
                do {
                    _ = try reference.resolve(environment: environment)
                } catch {
                    var located = error
                    (located.line, located.column) = (entry.line, entry.column)
                    throw located
                }
            }
        }
    }

    /// The pipeline file as edited since, over this pipeline's store and its lock (`lymph
    /// serve`'s reload): a running process keeps its store, so `state` stays as it is, whatever
    /// `spec` says. Secrets are read first. Stages and outputs are new; this pipeline is left
    /// as it was, and the caller closes it once it no longer runs.
    public func reloaded(
        _ spec: PipelineSpec, environment: [String: String] = ProcessInfo.processInfo.environment,
        now: Double = Timestamp.now()
    ) throws -> Pipeline {
        try Self.checkSecrets(spec, environment: environment)
        var spec = spec
        spec.statePath = self.spec.statePath
        spec.postgres = self.spec.postgres
        return try Self.build(
            spec, store: store, lock: lock, diskFull: diskFull, sinks: SinkRegistry(diskFull: diskFull),
            environment: environment, now: now, clock: clock)
    }

    /// Stages and outputs over an open store.
    private static func build(
        _ spec: PipelineSpec, store: StateStore?, lock: StoreLock?, diskFull: DiskFullWait?, sinks: SinkRegistry,
        environment: [String: String], now: Double, clock: @escaping @Sendable () -> Double
    ) throws -> Pipeline {
        // Before anything is built: a pipeline refused here has claimed nothing.
        if let store { try DedupScopeTaken.claim(spec, in: store) }
        let output = try spec.output.map { path throws(OutputError) in try sinks.sink(for: path) }
        let deadLetters = try sinks.sink(for: spec.deadLetter)
        let tickets = store.map { TicketBook(store: $0) }
        var stages: [RunningStage] = []
        for (offset, entry) in spec.stages.enumerated() {
            let env = StageBuildEnvironment(
                pipelineName: spec.name, stageName: entry.name, hasExplicitName: entry.hasExplicitName,
                stageIndex: offset + 1, store: store, tickets: tickets, sinks: sinks, environment: environment, now: now,
                clock: clock)
            stages.append(RunningStage(name: entry.name, kind: entry.kind, when: entry.when, stage: try entry.spec.build(env)))
        }
        let replays = try ReplayLedger(store: store, now: now)
        // Every sink is open now (log stages open theirs when built), and nothing is written yet.
        var outputs: OutputLedger?
        if let store, store.location != ":memory:" {
            outputs = try OutputLedger.open(store: store, sinks: sinks.openFiles)
        }
        return Pipeline(
            spec: spec, store: store, lock: lock, diskFull: diskFull, parse: spec.parse, stages: stages, replays: replays,
            output: output, deadLetters: deadLetters, sinks: sinks, outputs: outputs, clock: clock)
    }

    private init(
        spec: PipelineSpec, store: StateStore?, lock: StoreLock?, diskFull: DiskFullWait?, parse: ParseStage, stages: [RunningStage],
        replays: ReplayLedger, output: FileSink?, deadLetters: FileSink, sinks: SinkRegistry, outputs: OutputLedger?,
        clock: @escaping @Sendable () -> Double
    ) {
        self.spec = spec
        self.store = store
        self.lock = lock
        self.diskFull = diskFull
        // Parse opens resume points with the seal the dead letters are written with.
        let seal = ResumeSeal(stages: stages)
        var parse = parse
        parse.resumeSeal = seal
        self.parse = parse
        self.resumeSeal = seal
        self.stages = stages
        self.resumableFrom = (stages.lastIndex { $0.kind == "verify" } ?? -1) + 1
        self.replays = replays
        self.output = output
        self.deadLetters = deadLetters
        self.sinks = sinks
        self.outputs = outputs
        self.clock = clock
    }

    /// The pipeline's first verify stage, for checking signatures before anything is stored.
    public var verifier: VerifyStage? {
        stages.lazy.compactMap { $0.stage as? VerifyStage }.first
    }

    /// How many verify stages the pipeline has.
    public var verifyStageCount: Int {
        stages.lazy.filter { $0.stage is VerifyStage }.count
    }

    /// Closes every file the pipeline writes to (output, dead letters, log stages); standard output
    /// and standard error stay open.
    public func close() {
        sinks.closeAll()
    }
}
