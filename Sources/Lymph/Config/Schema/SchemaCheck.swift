import Yams

/// Reads a pipeline against `ImmuneSchema`, stage by stage, and warns where it would silently do
/// the wrong thing: a type no event has, a path no event that reaches the stage has, a comparison
/// that can never be true, two writers on stdout, a side effect that also sees the events
/// `schedule_maintenance` emits. Warnings only: a pipeline may be meant for other events too.
///
/// It follows which IMMUNE types can reach each stage: all four at the start; a `filter`'s
/// `types` narrows them; a `when:` narrows what the stage itself sees; `schedule_maintenance`
/// adds the `maintenance.scheduled` events it emits. After an `exec` stage whose output replaces
/// events the payload is unknown and paths are no longer judged, unless the stage declares what
/// its plugin adds (`schema: { add: { data.site: string } }`).
struct SchemaCheck {
    /// One stage as the loader read it, with the nodes (and their positions) of its options.
    struct StageNodes {
        let kind: String
        let name: String
        let at: ConfigValue
        let options: ConfigMapping?
        let when: ConfigMapping?
    }

    /// What flows between stages.
    struct Flow {
        var types = Set(ImmuneSchema.typeNames)
        /// The payloads are IMMUNE's (false after a plugin that replaces events without a declared schema).
        var known = true
        /// Fields that plugins declared they add.
        var added: [String: ImmuneSchema.FieldType] = [:]
        /// `schedule_maintenance` emitted events upstream.
        var emitted = false
    }

    var flow = Flow()
    var report: [PipelineSpec.StageFlow] = []
    /// Paths read by the stage being checked, for `--explain`.
    var reads: [String] = []

    static func run(_ stages: [StageNodes], output: String?, _ d: inout ConfigDiagnostics) -> [PipelineSpec.StageFlow] {
        var check = SchemaCheck()
        for stage in stages { check.visit(stage, output: output, &d) }
        return check.report
    }

    static func isStdout(_ path: String) -> Bool { path == "-" || path == "/dev/stdout" }

    /// Whether a `types` pattern (exact, `prefix.*` or `*`) matches `type`.
    static func pattern(_ p: String, matches type: String) -> Bool {
        if p == "*" { return true }
        if p.hasSuffix(".*") { return type.hasPrefix(String(p.dropLast(1))) }
        return p == type
    }

    mutating func visit(_ stage: StageNodes, output: String?, _ d: inout ConfigDiagnostics) {
        reads = []
        var seen = flow.types
        if let when = stage.when {
            if let t = when["types"] {
                let ps = patterns(t, &d)
                seen = seen.filter { type in ps.contains { Self.pattern($0, matches: type) } }
            }
            if let m = when["match"] { checkMatch(m, seen: seen, &d) }
        }
        let options = stage.options
        switch stage.kind {
        case "filter":
            var passing = seen
            if let t = options?["types"] {
                let ps = patterns(t, &d)
                passing = seen.filter { type in ps.contains { Self.pattern($0, matches: type) } }
            }
            if let m = options?["match"] { checkMatch(m, seen: passing, &d) }
            flow.types = flow.types.subtracting(seen).union(passing)
        case "dedup":
            if let k = options?["key"], case .scalar(let s) = k.node {
                // A header key is not a field of the event.
                if !s.string.hasPrefix("header:") { checkPath(s.string, at: k, seen: seen, &d) }
            } else {
                reads.append("id")  // the default key
            }
        case "log":
            var path = "-"
            if let p = options?["path"], case .scalar(let s) = p.node { path = s.string }
            var fields: [String] = []
            if let t = options?["template"], case .scalar(let s) = t.node {
                fields = Self.templateFields(s.string)
                for name in fields { checkPath(name, at: t, seen: seen, &d) }
            }
            if Self.isStdout(path), let output, Self.isStdout(output) {
                d.warning(
                    "this log stage and the pipeline's output both write to stdout, so every event would appear twice there; give the log a 'path:' (or set 'output:' to a file, or 'none')",
                    at: stage.at)
            }
            // A template written for the tickets (it reads fields only they have, and none only
            // the source events have) would log blanks for every source event.
            let ticketOnly = fields.contains { Self.only(in: "maintenance.scheduled", $0, among: seen) }
            let sourceOnly = fields.contains { f in seen.contains { $0 != "maintenance.scheduled" && Self.only(in: $0, f, among: seen) } }
            if ticketOnly && !sourceOnly { sideEffect(stage, seen: seen, &d) }
        case "exec":
            var replaces = true
            if let o = options?["output"], case .scalar(let s) = o.node, s.string == "ignore" { replaces = false }
            if !replaces { sideEffect(stage, seen: seen, &d) }
            let declared = declaredFields(options?["schema"], &d)
            if replaces {
                if let declared {
                    flow.added.merge(declared) { _, new in new }
                } else {
                    flow.known = false
                }
            }
        case "schedule_maintenance":
            var emits = true
            if let e = options?["emit"], e.node.bool == false { emits = false }
            if emits {
                flow.types.insert("maintenance.scheduled")
                flow.emitted = true
            }
        default:
            break
        }
        report.append(
            PipelineSpec.StageFlow(
                name: stage.name, kind: stage.kind, types: flow.known ? seen.sorted() : nil,
                reads: reads))
    }

    /// Whether `path` is a field of `type` and of no other type in `seen`.
    static func only(in type: String, _ path: String, among seen: Set<String>) -> Bool {
        let p = withoutIndices(path)
        return ImmuneSchema.types[type]?[p] != nil && !seen.contains { $0 != type && ImmuneSchema.types[$0]?[p] != nil }
    }

    /// A `log` or an `exec` with `output: ignore` after `schedule_maintenance`, with no `when:`,
    /// sees the source events and the emitted ones alike.
    func sideEffect(_ stage: StageNodes, seen: Set<String>, _ d: inout ConfigDiagnostics) {
        guard flow.known, flow.emitted, stage.when == nil, seen.contains("maintenance.scheduled"), seen.count > 1 else { return }
        d.warning(
            "this \(stage.kind) stage comes after schedule_maintenance and has no 'when:', so it sees the source events and the maintenance.scheduled events emitted for them alike (types: \(seen.sorted().joined(separator: ", "))); add 'when: { types: [maintenance.scheduled] }' if it is meant for the tickets",
            at: stage.at)
    }

    /// The entries of a `types` list, each checked against the IMMUNE types.
    func patterns(_ value: ConfigValue, _ d: inout ConfigDiagnostics) -> [String] {
        // A bare string is a list of one, and checked as one.
        let items: [ConfigValue]
        switch value.node {
        case .sequence(let seq): items = seq.map { ConfigValue($0, fallbackLine: value.line, fallbackColumn: value.column) }
        case .scalar: items = [value]
        default: return []
        }
        var out: [String] = []
        for v in items {
            guard case .scalar(let s) = v.node else { continue }
            out.append(s.string)
            if flow.known, !ImmuneSchema.typeNames.contains(where: { Self.pattern(s.string, matches: $0) }) {
                let hint =
                    Suggestion.closest(to: s.string, in: ImmuneSchema.typeNames).map { "; did you mean '\($0)'?" }
                    ?? " (IMMUNE's are \(ImmuneSchema.typeNames.joined(separator: ", ")))"
                d.warning("no IMMUNE event has the type '\(s.string.cutForMessage())'\(hint)", at: v)
            }
        }
        return out
    }

    /// The paths and comparisons of a `match` mapping.
    mutating func checkMatch(_ value: ConfigValue, seen: Set<String>, _ d: inout ConfigDiagnostics) {
        guard case .mapping(let mapping) = value.node else { return }
        for (k, v) in mapping {
            let key = ConfigValue(k, fallbackLine: value.line, fallbackColumn: value.column)
            let val = ConfigValue(v, fallbackLine: key.line, fallbackColumn: key.column)
            guard let name = k.scalar?.string else { continue }
            switch name {
            case "any", "all":
                if case .sequence(let items) = val.node {
                    for item in items { checkMatch(ConfigValue(item, fallbackLine: val.line, fallbackColumn: val.column), seen: seen, &d) }
                }
            case "not":
                checkMatch(val, seen: seen, &d)
            default:
                guard let type = checkPath(name, at: key, seen: seen, &d) else { continue }
                checkComparisons(val, path: name, type: type, &d)
            }
        }
    }

    /// Values compared with a field of `type`: one of another JSON type never equals it.
    func checkComparisons(_ value: ConfigValue, path: String, type: ImmuneSchema.FieldType, _ d: inout ConfigDiagnostics) {
        func check(_ v: ConfigValue) {
            guard let scalar = Self.scalar(v), case .scalar(let s) = v.node else { return }
            if case .null = scalar { return }
            guard !type.admits(scalar) else { return }
            switch scalar {
            case .string where type == .number:
                d.warning(
                    "'\(s.string.cutForMessage())' is a string, but \(path) is a number in IMMUNE events, so this comparison is never true; write \(s.string.cutForMessage()) without quotes",
                    at: v)
            case .number where type == .string || type == .nullableString:
                d.warning(
                    "\(s.string.cutForMessage()) is a number, but \(path) is a string in IMMUNE events, so this comparison is never true; quote it: \"\(s.string.cutForMessage())\"",
                    at: v)
            default:
                d.warning(
                    "\(s.string.cutForMessage()) is \(Self.describe(scalar)), but \(path) is \(type.rawValue == "array" || type.rawValue == "object" ? "an" : "a") \(type.rawValue) in IMMUNE events, so this comparison is never true",
                    at: v)
            }
        }
        switch value.node {
        case .scalar:
            check(value)
        case .mapping(let ops):
            for (k, v) in ops {
                guard let op = k.scalar?.string else { continue }
                let arg = ConfigValue(v, fallbackLine: value.line, fallbackColumn: value.column)
                switch op {
                case "eq", "ne", "gt", "gte", "lt", "lte":
                    check(arg)
                case "in", "nin":
                    if case .sequence(let items) = arg.node {
                        for item in items { check(ConfigValue(item, fallbackLine: arg.line, fallbackColumn: arg.column)) }
                    }
                default:
                    break
                }
            }
        default:
            break
        }
    }

    static func describe(_ s: ScalarValue) -> String {
        switch s {
        case .string: "a string"
        case .number: "a number"
        case .bool: "a boolean"
        case .null: "null"
        }
    }

    /// A YAML scalar as a condition reads it (quoted: a string).
    static func scalar(_ value: ConfigValue) -> ScalarValue? {
        guard case .scalar(let s) = value.node else { return nil }
        if s.style != .plain { return .string(Array(s.string.utf8)) }
        let node = value.node
        if node.null != nil { return .null }
        if let b = node.bool { return .bool(b) }
        if let i = node.int { return .number(Double(i)) }
        if let f = node.float { return .number(f) }
        return .string(Array(s.string.utf8))
    }

    /// Warns when no event that reaches the stage has `path`; its JSON type when one has.
    @discardableResult
    mutating func checkPath(_ path: String, at value: ConfigValue, seen: Set<String>, _ d: inout ConfigDiagnostics) -> ImmuneSchema.FieldType? {
        reads.append(path)
        guard flow.known, !seen.isEmpty else { return nil }
        let normalized = Self.withoutIndices(path)
        var candidates: [String: ImmuneSchema.FieldType] = flow.added
        for type in seen { candidates.merge(ImmuneSchema.fields(of: type)) { a, _ in a } }
        if let type = candidates[normalized] { return type }
        // Below a field a plugin added, or inside an array: not described, not judged.
        if candidates.contains(where: { field, type in
            normalized.hasPrefix(field + ".")
                && (type == .array || flow.added[field] != nil || type == .object && !candidates.keys.contains { $0.hasPrefix(field + ".") })
        }) {
            return nil
        }
        let hint = Suggestion.closest(to: normalized, in: candidates.keys.sorted()).map { "; did you mean '\($0)'?" } ?? ""
        d.warning("no event that reaches this stage has '\(path.cutForMessage())' (types: \(seen.sorted().joined(separator: ", ")))\(hint)", at: value)
        return nil
    }

    /// `data.items[0].name` as `data.items.name`: the schema describes fields, not positions.
    static func withoutIndices(_ path: String) -> String {
        var out = ""
        var skipping = false
        for c in path {
            if c == "[" { skipping = true; continue }
            if c == "]" { skipping = false; continue }
            if !skipping { out.append(c) }
        }
        return out
    }

    /// The `{path}` names of a log template.
    static func templateFields(_ text: String) -> [String] {
        var names: [String] = []
        var chars = Substring(text)
        while let open = chars.firstIndex(of: "{") {
            let after = chars.index(after: open)
            if after < chars.endIndex, chars[after] == "{" {
                chars = chars[chars.index(after: after)...]
                continue
            }
            guard let close = chars[after...].firstIndex(of: "}") else { break }
            names.append(chars[after..<close].trimmingCharacters(in: .whitespaces))
            chars = chars[chars.index(after: close)...]
        }
        return names
    }

    /// An exec stage's `schema: { add: { PATH: TYPE } }`; nil when it declares none.
    func declaredFields(_ value: ConfigValue?, _ d: inout ConfigDiagnostics) -> [String: ImmuneSchema.FieldType]? {
        guard let value, let m = ConfigMapping(value, context: "schema", diagnostics: &d) else { return nil }
        m.rejectUnknownKeys(allowed: ["add"], &d)
        guard let add = m["add"], let fields = ConfigMapping(add, context: "schema.add", diagnostics: &d) else { return [:] }
        var out: [String: ImmuneSchema.FieldType] = [:]
        for entry in fields.entries {
            guard case .scalar(let s) = entry.value.node, let type = ImmuneSchema.FieldType(declared: s.string) else {
                d.error("schema.add maps a field path to its JSON type: string, number, boolean, object or array", at: entry.value)
                continue
            }
            out[entry.key] = type
        }
        return out
    }
}

extension PipelineSpec {
    /// What `lymph check --explain` shows of a stage: the IMMUNE types that can reach it (nil:
    /// unknown, after a plugin that replaces events) and the fields it reads.
    public struct StageFlow: Sendable {
        /// The stage's name.
        public let name: String
        /// The stage's kind.
        public let kind: String
        /// The IMMUNE event types that can reach the stage, sorted; nil when unknown.
        public let types: [String]?
        /// The field paths the stage reads, in the order its options name them.
        public let reads: [String]
    }
}
