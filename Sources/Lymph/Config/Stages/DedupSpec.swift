/// Where a dedup stage finds each event's key.
public enum DedupKey: Sendable, Equatable, CustomStringConvertible {
    /// A field of the event (`id`, `data.prediction_id`).
    case path(JSONPath)
    /// A request header of the delivery the event came in (`header:webhook-id`: Standard
    /// Webhooks' message id), by its lowercased name.
    case header(String)

    public var description: String {
        switch self {
        case .path(let path): "\(path)"
        case .header(let name): "header:\(name)"
        }
    }

    /// `header:NAME`, or a path.
    init(parsing text: String) throws(DedupKeyError) {
        if text.hasPrefix("header:") {
            let name = String(text.dropFirst(7)).lowercased()
            guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") }) else {
                throw DedupKeyError(message: "key 'header:NAME' needs a header name (visible ASCII, no ':' or spaces)")
            }
            self = .header(name)
            return
        }
        do { self = .path(try JSONPath(parsing: text)) } catch { throw DedupKeyError(message: "\(error)") }
    }
}

/// A `key:` that is neither a path nor `header:NAME`.
struct DedupKeyError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// `dedup`: drops an event whose key was already seen within the window.
public struct DedupSpec: StageSpec {
    /// `key:`: where each event's key is (a field, or `header:NAME`), `id` by default.
    public var key: DedupKey
    /// `window:`: seconds a key is remembered, 7 days by default.
    public var window: Double
    /// `store: memory`: keys are remembered for this run only, not in the pipeline's store.
    public var inMemory: Bool

    /// The key and the window, then `store memory` when keys are kept in memory.
    public var summary: String {
        "key \(key), window \(DedupSpec.describe(window))" + (inMemory ? ", store memory" : "")
    }

    /// Unless keys are kept in memory.
    public var usesStore: Bool { !inMemory }

    /// The name this stage's keys are filed under in the store: its `name:`, else its key path.
    /// A default name would change when stages are inserted before it, silently forgetting
    /// every key. Two stages of a pipeline may not share one (`PipelineLoader`).
    public func scope(stageName: String, hasExplicitName: Bool) -> String {
        hasExplicitName ? stageName : "dedup:\(key)"
    }

    /// Builds the stage over the store (unless in memory), its keys filed under its `name:` when it
    /// has one, else under its key path: a default name would move when stages are inserted before
    /// it.
    public func build(_ env: StageBuildEnvironment) throws -> any Stage {
        let scope = scope(stageName: env.stageName, hasExplicitName: env.hasExplicitName)
        let backing: DedupStage.Backing
        if !inMemory, let store = env.store {
            backing = store.postgres.map { .postgres(PostgresDedup(holder: $0.holder, scope: scope)) } ?? .store(store)
        } else {
            backing = .memory
        }
        return try DedupStage(key: key, window: window, scope: scope, stageIndex: env.stageIndex, backing: backing, now: env.now)
    }

    static func describe(_ seconds: Double) -> String {
        if seconds.truncatingRemainder(dividingBy: 86_400) == 0 { return "\(Int(seconds / 86_400))d" }
        if seconds.truncatingRemainder(dividingBy: 3600) == 0 { return "\(Int(seconds / 3600))h" }
        if seconds.truncatingRemainder(dividingBy: 60) == 0 { return "\(Int(seconds / 60))m" }
        if seconds.truncatingRemainder(dividingBy: 1) == 0 { return "\(Int(seconds))s" }
        if seconds < 1, (seconds * 1000).truncatingRemainder(dividingBy: 1) == 0 { return "\(Int(seconds * 1000))ms" }
        return "\(seconds)s"
    }

    static let kind = StageKind(name: "dedup", optionKeys: ["key", "window", "store"]) { m, d in
        var key = DedupKey.path(try! JSONPath(parsing: "id"))
        if let k = m["key"], let text = k.string(&d, "key") {
            do { key = try DedupKey(parsing: text) } catch { d.error("\(error)", at: k) }
        }
        let window = m["window"].flatMap { $0.duration(&d, "window") } ?? 7 * 86_400
        var inMemory = false
        if let s = m["store"], let text = s.string(&d, "store") {
            switch text {
            case "memory": inMemory = true
            case "state": inMemory = false
            default: d.error("store must be 'state' (the pipeline's store, the default) or 'memory' (this run only)", at: s)
            }
        }
        return DedupSpec(key: key, window: window, inMemory: inMemory)
    }
}
