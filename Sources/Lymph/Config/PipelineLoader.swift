import Crypto
import Foundation
import Yams

/// Reads a pipeline file into a `PipelineSpec`, collecting every problem with its position.
public enum PipelineLoader {
    static let topLevelKeys = ["pipeline", "state", "output", "dead_letter", "serve", "stages"]
    static let commonStageKeys = ["name", "when"]
    /// Largest pipeline file read; pipelines are small, anything bigger is a mistake.
    static let maxFileBytes = 1 << 20
    /// Most YAML nodes a pipeline may hold once its aliases are expanded: every walk over the
    /// tree (Yams' duplicate-key check, the loader's, a condition's) visits each use.
    static let maxExpandedNodes = 20_000
    /// Most bytes of scalars once aliases are expanded: a long value used many times costs
    /// its length at every use (in each condition built from it, and in every comparison).
    static let maxExpandedBytes = 1 << 20

    /// Reads and validates `path`. Throws `PipelineFileError` listing every error; warnings
    /// (which do not stop a run) are returned beside the spec.
    public static func load(path: String) throws(PipelineFileError) -> (spec: PipelineSpec, warnings: [ConfigDiagnostic]) {
        let (spec, warnings, _) = try loadWithDigest(path: path)
        return (spec, warnings)
    }

    /// `load`, with the SHA-256 of the bytes it read, in hex (what `sha256sum FILE` prints):
    /// how `lymph serve` names the pipeline it runs.
    public static func loadWithDigest(path: String) throws(PipelineFileError) -> (spec: PipelineSpec, warnings: [ConfigDiagnostic], sha256: String) {
        let data = Data(try readSmallFile(path, what: "pipeline file", maxBytes: maxFileBytes, tooLarge: ""))
        guard let text = String(data: data, encoding: .utf8) else {
            throw PipelineFileError(diagnostics: [ConfigDiagnostic(file: path, line: 1, column: 1, message: "pipeline file is not UTF-8 text")])
        }
        let (spec, diagnostics) = parse(yaml: text, file: path)
        guard let spec, !diagnostics.hasErrors else {
            throw PipelineFileError(diagnostics: diagnostics.errors)
        }
        let digest = SHA256.hash(data: data).map { byte in (byte < 16 ? "0" : "") + String(byte, radix: 16) }.joined()
        return (spec, diagnostics.items.filter { $0.severity == .warning }, digest)
    }

    /// The YAML's one document as nodes; nil when it has none. Plain scalars are left untyped
    /// (Yams' `basic` resolver): the readers (`ConfigValue`, `TestValue`) type them from their
    /// text and style. Yams' default resolver, built the first time anything names it (a default
    /// argument does), compiles ICU regular expressions, which load ICU's tables: over a MiB of
    /// every run's memory for types nobody reads.
    static func compose(_ yaml: String) throws -> Node? {
        try Yams.compose(yaml: yaml, .basic)
    }

    /// Reads pipeline YAML already in memory, `file` naming it in diagnostics: the spec, nil when
    /// there is an error, and every problem found, warnings included.
    public static func parse(yaml: String, file: String) -> (PipelineSpec?, ConfigDiagnostics) {
        var d = ConfigDiagnostics(file: file)
        let root: Node
        if let mark = YAMLAliasBound.firstExcess(in: yaml, limit: maxExpandedNodes, byteLimit: maxExpandedBytes) {
            d.add(
                "the pipeline expands to more than \(maxExpandedNodes) YAML nodes or \(maxExpandedBytes >> 20) MiB of text once its aliases are expanded (each alias counted at each use; a pipeline is far smaller: an alias bomb?); refused",
                line: mark.line, column: mark.column)
            return (nil, d)
        }
        do {
            guard let node = try compose(yaml) else {
                d.add("the pipeline file is empty; it needs at least 'stages:'", line: 1, column: 1)
                return (nil, d)
            }
            root = node
        } catch let error as YamlError {
            let (line, column, message) = describe(error)
            d.add("YAML syntax: \(message)", line: line, column: column)
            return (nil, d)
        } catch {
            d.add("YAML syntax: \(error)", line: 1, column: 1)
            return (nil, d)
        }
        let top = ConfigValue(root)
        guard let m = ConfigMapping(top, context: "the pipeline file", diagnostics: &d) else { return (nil, d) }
        m.rejectUnknownKeys(allowed: topLevelKeys, &d)

        let defaultName = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
        var name = defaultName.isEmpty ? "pipeline" : defaultName
        if let v = m["pipeline"], let s = v.string(&d, "pipeline") {
            // The name is printed in summaries and messages, and names the default files.
            if s.isEmpty || s.contains("/") || s.count > 100 || s.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                d.error("pipeline name must be 1 to 100 characters with no '/' and no control characters", at: v)
            } else {
                name = s
            }
        }
        var statePath: String? = ".lymph/\(name).sqlite"
        var postgres: PostgresStateSpec?
        if let v = m["state"] {
            if case .mapping = v.node {
                if let sm = ConfigMapping(v, context: "state", diagnostics: &d) {
                    postgres = PostgresStateSpec.read(sm, &d)
                    statePath = nil
                }
            } else if let s = v.string(&d, "state") {
                if s.isEmpty {
                    d.error("state must be a file path, 'memory', or {postgres: env:NAME}", at: v)
                } else if let problem = Self.stateNotationProblem(s) ?? Self.keywordLookalikeProblem(s, "state", keywords: ["memory"]) {
                    d.error(problem, at: v)
                } else {
                    statePath = s == "memory" ? nil : s
                }
            }
        }
        var output: String? = "-"
        if let v = m["output"], let s = v.string(&d, "output") {
            if s.isEmpty {
                d.error("output must be '-' (stdout), a file path, or 'none'", at: v)
            } else if let problem = Self.keywordLookalikeProblem(s, "output", keywords: ["none", "stdout", "stderr"]) {
                d.error(problem, at: v)
            } else {
                output = s == "none" ? nil : s
            }
        }
        var deadLetter = ".lymph/\(name).dead.ndjson"
        if let v = m["dead_letter"], let s = v.string(&d, "dead_letter") {
            if s.isEmpty || s == "none" {
                d.error("dead_letter must be a file path (or '-' / 'stderr'): rejected events are never discarded", at: v)
            } else if let problem = Self.keywordLookalikeProblem(s, "dead_letter", keywords: ["none", "stdout", "stderr"]) {
                d.error(problem, at: v)
            } else {
                deadLetter = s
            }
        }

        var serve = ServeSettings()
        if let v = m["serve"], let sm = ConfigMapping(v, context: "serve", diagnostics: &d) {
            sm.rejectUnknownKeys(allowed: ServeSettings.keys, &d)
            if let l = sm["listen"], let text = l.string(&d, "listen") {
                if ServeSettings.parseListen(text) == nil { d.error("listen must be HOST:PORT, such as 127.0.0.1:8080", at: l) } else { serve.listen = text }
            }
            if let p = sm["path"], let text = p.string(&d, "path") {
                if let problem = ServeSettings.pathProblem(text) { d.error("path \(problem)", at: p) } else { serve.path = text }
            }
            serve.maxBody = sm["max_body"].flatMap { $0.byteSize(&d, "max_body", range: 64...(64 << 20)) } ?? serve.maxBody
            serve.maxSpool = sm["max_spool"].flatMap { $0.int(&d, "max_spool", range: 1...100_000_000) } ?? serve.maxSpool
            serve.maxConnections = sm["max_connections"].flatMap { $0.int(&d, "max_connections", range: 1...100_000) } ?? serve.maxConnections
            if let v = sm["idle_timeout"], let seconds = v.duration(&d, "idle_timeout") {
                if seconds < 1 || seconds > 3600 { d.error("idle_timeout must be between 1s and 1h", at: v) } else { serve.idleTimeout = seconds }
            }
        }

        var parse = ParseStage()
        var stages: [StageEntry] = []
        var stageNodes: [SchemaCheck.StageNodes] = []
        if let v = m["stages"], let items = v.list(&d, "stages") {
            if items.isEmpty { d.error("stages is empty; a pipeline needs at least 'parse'", at: v) }
            var names: [String: ConfigValue] = [:]
            // The names unnamed stages get (`KIND-N`), and the names given: one given that another
            // stage has by default would make the two one in the summary, in a dead letter's
            // resume point (a replay would re-enter at the wrong one) and in `lymph test`.
            var defaultNames: [String: ConfigValue] = [:]
            var givenNames: [(String, ConfigValue)] = []
            for (position, item) in items.enumerated() {
                guard let (kind, kindValue, options) = stageHeader(item, &d) else { continue }
                if kind == "parse" {
                    if position != 0 {
                        d.error("parse must be the first stage (every other stage works on parsed events)", at: kindValue)
                        continue
                    }
                    guard let om = ConfigMapping(options, context: "parse", diagnostics: &d) else { continue }
                    om.rejectUnknownKeys(allowed: ["max_bytes", "name"], &d)
                    let maxBytes = om["max_bytes"].flatMap { $0.byteSize(&d, "max_bytes", range: 64...(256 << 20)) } ?? ParseStage.defaultMaxBytes
                    var pname = "parse"
                    if let nv = om["name"], let s = nv.string(&d, "name") {
                        if let problem = Self.stageNameProblem(s) { d.error(problem, at: nv) }
                        pname = s
                        givenNames.append((s, nv))
                    }
                    parse = ParseStage(name: pname, maxBytes: maxBytes)
                    names[pname] = kindValue
                    continue
                }
                if position == 0 {
                    d.error("the first stage must be 'parse' (add '- parse' before '\(kind.cutForMessage())')", at: kindValue)
                }
                guard let stageKind = StageCatalog.kind(named: kind) else {
                    d.error("unknown stage '\(kind.cutForMessage())'\(Suggestion.didYouMean(kind, in: StageCatalog.names))", at: kindValue)
                    continue
                }
                guard let om = ConfigMapping(options, context: "stage '\(kind)'", diagnostics: &d) else { continue }
                om.rejectUnknownKeys(allowed: commonStageKeys + stageKind.optionKeys, &d)
                var stageName = "\(kind)-\(position + 1)"
                var explicit = false
                if let nv = om["name"], let s = nv.string(&d, "name") {
                    if let problem = Self.stageNameProblem(s) { d.error(problem, at: nv) }
                    if let earlier = names[s] {
                        d.error("stage name '\(s.cutForMessage())' is already used at line \(earlier.line)", at: nv)
                    }
                    stageName = s
                    explicit = true
                    names[s] = nv
                    givenNames.append((s, nv))
                } else {
                    defaultNames[stageName] = kindValue
                }
                var when: Condition?
                if kind == "verify", let wv = om["when"] {
                    // Events that did not match would skip verification: fail open.
                    d.error("verify cannot take 'when:': every event must be verified (the sender controls type and data)", at: wv)
                }
                if kind == "verify", let effect = stages.first(where: { $0.kind != "filter" && $0.kind != "verify" }) {
                    // Earlier stages would act on forged events: log, run plugins, open tickets, or
                    // claim a dedup key so that the real event is dropped as its duplicate.
                    d.error(
                        "verify must come right after parse (only filter stages may precede it); '\(effect.name)' at line \(effect.line) would see unverified events",
                        at: kindValue)
                }
                if let wv = om["when"], let wm = ConfigMapping(wv, context: "when", diagnostics: &d) {
                    wm.rejectUnknownKeys(allowed: ["types", "match"], &d)
                    when = ConditionParser.typesAndMatch(wm, &d)
                    if wm["types"] == nil && wm["match"] == nil { d.error("when needs 'types:' and/or 'match:'", at: wv) }
                }
                let errorsBefore = d.errors.count
                var whenNodes: ConfigMapping?
                if let wv = om["when"] {
                    var reported = ConfigDiagnostics(file: d.file)  // said above already
                    whenNodes = ConfigMapping(wv, context: "when", diagnostics: &reported)
                }
                stageNodes.append(.init(kind: kind, name: stageName, at: kindValue, options: om, when: whenNodes))
                if let spec = stageKind.configure(om, &d) {
                    stages.append(
                        StageEntry(
                            kind: kind, name: stageName, hasExplicitName: explicit, line: kindValue.line, column: kindValue.column, when: when, spec: spec))
                } else if d.errors.count == errorsBefore {
                    // Options never remove a stage: one that cannot do its job is an error.
                    d.error("stage '\(kind)' cannot run with these options", at: kindValue)
                }
            }
            for (given, at) in givenNames {
                guard let other = defaultNames[given] else { continue }
                d.error(
                    "stage name '\(given.cutForMessage())' is the name the unnamed stage at line \(other.line) has by default: name that stage, or this one otherwise",
                    at: at)
            }
        } else if m["stages"] == nil {
            d.error("the pipeline has no 'stages:' list", at: top)
        }
        // A file the run appends to that is the store, or this file: SQLite would write its pages
        // over the appended lines (and they over its pages), or the next load would read events.
        var appended: [(path: String, what: String, at: ConfigValue?, line: Int?, column: Int?)] = []
        if let output { appended.append((output, "output", m["output"] ?? top, nil, nil)) }
        appended.append((deadLetter, "dead_letter", m["dead_letter"] ?? m["state"] ?? top, nil, nil))
        for stage in stages {
            if let log = stage.spec as? LogSpec {
                appended.append((log.path, "stage '\(stage.name.cutForMessage())' logs to a file that", nil, stage.line, stage.column))
            }
        }
        for sink in appended {
            let problem: String?
            if let statePath, Self.storeFiles(statePath).contains(where: { Self.sameSink(sink.path, $0) }) {
                problem = "is the state store's file ('\(sink.path.cutForMessage())'): SQLite would write its pages over what is appended there"
            } else if Self.sameSink(sink.path, file) {
                problem = "is this pipeline file ('\(sink.path.cutForMessage())'): what is appended would break it"
            } else if !["-", "stdout", "stderr"].contains(sink.path), Self.isFolder(sink.path) {
                problem = "is a folder ('\(sink.path.cutForMessage())'): name a file (in it, for example)"
            } else {
                problem = nil
            }
            guard let problem else { continue }
            if let at = sink.at {
                d.error("\(sink.what) \(problem)", at: at)
            } else if let line = sink.line, let column = sink.column {
                d.add("\(sink.what) \(problem)", line: line, column: column)
            }
        }
        if let output, let v = m["dead_letter"] ?? m["output"], Self.sameSink(output, deadLetter) {
            d.error("dead_letter and output are the same ('\(deadLetter.cutForMessage())'): rejected items would mix with passed events", at: v)
        }
        // Two dedup stages filing keys under one name would share them: the shorter window's
        // purge would take keys the other still needs, and each would drop events the other
        // passed as duplicates.
        var scopes: [String: StageEntry] = [:]
        for stage in stages {
            guard let dedup = stage.spec as? DedupSpec, dedup.usesStore else { continue }
            let scope = dedup.scope(stageName: stage.name, hasExplicitName: stage.hasExplicitName)
            if let earlier = scopes[scope] {
                d.add(
                    "dedup stage '\(stage.name.cutForMessage())' would file its keys in the store under '\(scope.cutForMessage())', as '\(earlier.name.cutForMessage())' at line \(earlier.line) does: give one of them its own 'name:'",
                    line: stage.line, column: stage.column)
            } else {
                scopes[scope] = stage
            }
        }
        for stage in stages {
            if let log = stage.spec as? LogSpec, sameSink(log.path, deadLetter) {
                d.add(
                    "stage '\(stage.name.cutForMessage())' logs to the dead-letter file ('\(deadLetter.cutForMessage())'): rejected items would mix with logged events",
                    line: stage.line, column: stage.column)
            }
        }
        var spec = PipelineSpec(name: name, file: file, statePath: statePath, output: output, deadLetter: deadLetter, parse: parse, stages: stages)
        spec.postgres = postgres
        spec.serve = serve
        spec.declaresServe = m["serve"] != nil
        spec.namesState = m["state"] != nil && (statePath != nil || postgres != nil)
        // Against IMMUNE's events only once the file is otherwise valid: warnings about a
        // pipeline that cannot run would bury its errors.
        if !d.hasErrors { spec.flow = SchemaCheck.run(stageNodes, output: output, &d) }
        return (d.hasErrors ? nil : spec, d)
    }

    /// The bytes of a pipeline or test file (`what`), read within `maxBytes` and 10 seconds: a
    /// FIFO no one writes to or a device that never ends (`/dev/zero`) is refused, not waited on
    /// or read into memory without end. Each refusal says why; `tooLarge` is added to the
    /// message of a file over the limit.
    static func readSmallFile(_ path: String, what: String, maxBytes: Int, tooLarge: String) throws(PipelineFileError) -> [UInt8] {
        func refused(_ message: String) -> PipelineFileError {
            PipelineFileError(diagnostics: [ConfigDiagnostic(file: path, line: 1, column: 1, message: message)])
        }
        do {
            return try SmallFileRead(maxBytes: maxBytes, timeout: .seconds(10)).read(path)
        } catch {
            switch error {
            case .cannotOpen(let code), .readFailed(let code):
                throw refused("cannot read the \(what): \(String(cString: strerror(code)))")
            case .folder: throw refused("cannot read the \(what): it is a folder")
            case .tooLarge: throw refused("\(what) is larger than \(maxBytes) bytes\(tooLarge)")
            case .timedOut: throw refused("cannot read the \(what): it did not end within 10 seconds (a FIFO or a device?)")
            }
        }
    }

    /// Why `name` cannot name a stage (parse included), or nil. Printed in messages and dead
    /// letters, and it names a dedup stage's keys in the store, where names starting with a
    /// control character are Lymph's own.
    static func stageNameProblem(_ name: String) -> String? {
        if name.allSatisfy(\.isWhitespace) { return "a stage name cannot be empty or blank" }
        if name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) { return "a stage name cannot contain control characters" }
        return nil
    }

    /// Whether `path` is a folder now (a file the run appends to cannot be one).
    static func isFolder(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Why `path` cannot name a store file: SQLite's own names for a store in memory
    /// (`:memory:`) and URIs (`file:…`), taken as they are, would keep nothing between runs, or
    /// not where the path seems to say. Nil for a path.
    public static func stateNotationProblem(_ path: String) -> String? {
        guard path.hasPrefix(":memory") || path.lowercased().hasPrefix("file:") else { return nil }
        return "state '\(path.cutForMessage())' is SQLite's own notation, not a path: write 'memory' for a store that lasts one run, or a file path"
    }

    /// A value that is one of `keywords` in other letters (`NONE`, `Stdout`, `Memory`): taken
    /// as a path it would quietly make a file of that name in the working folder. `./NONE`
    /// still names such a file.
    public static func keywordLookalikeProblem(_ value: String, _ what: String, keywords: [String]) -> String? {
        let lower = value.lowercased()
        guard let keyword = keywords.first(where: { $0 == lower && $0 != value }) else { return nil }
        return "\(what) '\(value)' is not the keyword '\(keyword)' (keywords are lower case): write '\(keyword)', or './\(value)' for a file of that name"
    }

    /// The files SQLite keeps a store at `path` in (its journal, shared memory and lymph's lock).
    public static func storeFiles(_ path: String) -> [String] {
        [path, path + "-wal", path + "-shm", path + "-journal", path + ".lock"]
    }

    /// Whether two sink names write to the same place (`./x` and `x` do, and `-` and `stdout`).
    public static func sameSink(_ a: String, _ b: String) -> Bool {
        SinkRegistry.captureKey(a) == SinkRegistry.captureKey(b)
    }

    /// `- kind` or `- kind: {options}`: the kind, where it is written, and its options node.
    static func stageHeader(_ item: ConfigValue, _ d: inout ConfigDiagnostics) -> (String, ConfigValue, ConfigValue)? {
        switch item.node {
        case .scalar(let s):
            // The tag names the basic resolver: a bare `Tag.implicit` would build Yams' default one.
            let options = Node.Mapping([], Tag(.implicit, .basic))
            return (s.string, item, ConfigValue(Node.mapping(options), fallbackLine: item.line, fallbackColumn: item.column))
        case .mapping(let mapping):
            let pairs = Array(mapping)
            if pairs.count == 1 {
                let k = ConfigValue(pairs[0].key, fallbackLine: item.line, fallbackColumn: item.column)
                guard let kind = pairs[0].key.scalar?.string else {
                    d.error("a stage is written '- kind' or '- kind: {options}'", at: k)
                    return nil
                }
                return (kind, k, ConfigValue(pairs[0].value, fallbackLine: k.line, fallbackColumn: k.column))
            }
            let keys = pairs.compactMap { $0.key.scalar?.string }
            let kinds = keys.filter { StageCatalog.names.contains($0) }
            let hint = kinds.count == 1 ? "; indent the options of '\(kinds[0])' under it" : ""
            d.error(
                "a stage is one kind with its options below it, found several keys at one level (\(keys.map { $0.cutForMessage() }.joined(separator: ", ")))\(hint)",
                at: item)
            return nil
        default:
            d.error("a stage is written '- kind' or '- kind: {options}', found \(item.kindName)", at: item)
            return nil
        }
    }

    static func describe(_ error: YamlError) -> (Int, Int, String) {
        switch error {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let ctx = context.map { "\($0.text), " } ?? ""
            return (mark.line, mark.column, ctx + problem)
        case .duplicatedKeysInMapping(let duplicates, let context):
            return (
                context.mark.line, context.mark.column, "duplicate key \(duplicates.map { "'\($0.cutForMessage())'" }.joined(separator: ", ")) in a mapping"
            )
        case .reader(let problem, _, _, _):
            return (1, 1, problem)
        default:
            return (1, 1, "\(error)")
        }
    }
}

extension PipelineLoader {
    /// For `lymph check`: every diagnostic, and warnings for secrets that cannot be read here.
    /// A pipeline without verify gets a warning when it has a `serve:` section, and a note when
    /// it does not: reading trusted files unsigned is a use, serving unsigned webhooks a mistake.
    public static func load(checking path: String) -> (PipelineSpec?, [ConfigDiagnostic]) {
        do {
            let (spec, warnings) = try load(path: path)
            var items = warnings
            if !spec.verifiesSignatures {
                items.append(
                    ConfigDiagnostic(
                        file: path, line: 1, column: 1, message: PipelineSpec.unsignedWarning, severity: spec.declaresServe ? .warning : .note))
            }
            for stage in spec.stages {
                for reference in stage.spec.secrets {
                    var problem: String?
                    do {
                        let secret = try reference.resolve()
                        // A secret the stage's signature scheme cannot use as a key (Standard
                        // Webhooks' is whsec_ and base64).
                        if let verify = stage.spec as? VerifySpec, case .failure(let p) = verify.scheme.key(forSecret: secret) {
                            problem = "secret \(reference): \(p)"
                        }
                    } catch {
                        problem = "\(error)"
                    }
                    if let problem {
                        items.append(
                            ConfigDiagnostic(
                                file: path, line: stage.line, column: stage.column,
                                message: "\(problem) (a run would stop here)", severity: .warning))
                    }
                }
            }
            return (spec, items)
        } catch {
            return (nil, error.diagnostics)
        }
    }
}
