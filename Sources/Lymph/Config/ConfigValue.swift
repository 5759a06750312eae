import Yams

/// A node of a pipeline file with its position, and typed readers that report problems
/// to `ConfigDiagnostics` instead of throwing, so reading goes on.
struct ConfigValue {
    /// The YAML node as Yams parsed it.
    let node: Node
    /// The node's line, counted from 1 (its parent's when Yams gives none).
    let line: Int
    /// The node's column, counted from 1 (its parent's when Yams gives none).
    let column: Int

    init(_ node: Node, fallbackLine: Int = 1, fallbackColumn: Int = 1) {
        self.node = node
        self.line = node.mark?.line ?? fallbackLine
        self.column = node.mark?.column ?? fallbackColumn
    }

    /// An explicit `!!null`, or a plain scalar YAML reads as null (`PipelineLoader.compose`
    /// leaves plain scalars untyped).
    var isNull: Bool {
        if case .scalar(let s) = node {
            return s.tag.description == Tag.Name.null.rawValue || (s.string.isEmpty && s.style == .plain)
                || (s.style == .plain && ["~", "null", "Null", "NULL"].contains(s.string))
        }
        return false
    }

    var kindName: String {
        switch node {
        case .scalar: return "a value"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    func string(_ d: inout ConfigDiagnostics, _ what: String) -> String? {
        guard case .scalar(let s) = node, !isNull else {
            d.error("\(what) must be a string, found \(isNull ? "nothing" : kindName)", at: self)
            return nil
        }
        return s.string
    }

    func strings(_ d: inout ConfigDiagnostics, _ what: String) -> [ConfigValue]? {
        if case .scalar = node, !isNull { return [self] }
        guard case .sequence(let seq) = node else {
            d.error("\(what) must be a list of strings, found \(isNull ? "nothing" : kindName)", at: self)
            return nil
        }
        var out: [ConfigValue] = []
        for item in seq {
            let v = ConfigValue(item, fallbackLine: line, fallbackColumn: column)
            guard case .scalar = item, !v.isNull else {
                d.error("\(what) must be a list of strings, found \(v.kindName) in it", at: v)
                continue
            }
            out.append(v)
        }
        return out
    }

    func list(_ d: inout ConfigDiagnostics, _ what: String) -> [ConfigValue]? {
        guard case .sequence(let seq) = node else {
            d.error("\(what) must be a list, found \(isNull ? "nothing" : kindName)", at: self)
            return nil
        }
        return seq.map { ConfigValue($0, fallbackLine: line, fallbackColumn: column) }
    }

    func int(_ d: inout ConfigDiagnostics, _ what: String, range: ClosedRange<Int>) -> Int? {
        guard case .scalar(let s) = node, let v = Int(s.string.replacingOccurrences(of: "_", with: "")) else {
            d.error("\(what) must be a whole number", at: self)
            return nil
        }
        guard range.contains(v) else {
            d.error("\(what) must be between \(range.lowerBound) and \(range.upperBound), found \(v)", at: self)
            return nil
        }
        return v
    }

    func bool(_ d: inout ConfigDiagnostics, _ what: String) -> Bool? {
        guard case .scalar(let s) = node else {
            d.error("\(what) must be true or false", at: self)
            return nil
        }
        switch s.string.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            d.error("\(what) must be true or false, found '\(s.string.cutForMessage())'", at: self)
            return nil
        }
    }

    /// `30s`, `10m`, `48h`, `7d`, or combinations (`1h30m`); a bare number is seconds.
    func duration(_ d: inout ConfigDiagnostics, _ what: String) -> Double? {
        guard case .scalar(let s) = node, let seconds = ConfigValue.parseDuration(s.string), seconds > 0, seconds.isFinite else {
            d.error("\(what) must be a positive duration like 30s, 10m, 48h or 7d", at: self)
            return nil
        }
        guard seconds <= ConfigValue.maxDuration else {
            d.error("\(what) must be at most 100 years", at: self)
            return nil
        }
        return seconds
    }

    /// A size in bytes: `1048576`, `512KiB`, `1MiB`, `1MB` (binary units either way).
    func byteSize(_ d: inout ConfigDiagnostics, _ what: String, range: ClosedRange<Int>) -> Int? {
        guard case .scalar(let s) = node, let v = ConfigValue.parseByteSize(s.string) else {
            d.error("\(what) must be a size like 1048576, 512KiB or 1MiB", at: self)
            return nil
        }
        guard range.contains(v) else {
            d.error("\(what) must be between \(range.lowerBound) and \(range.upperBound) bytes, found \(v)", at: self)
            return nil
        }
        return v
    }

    /// The longest duration accepted anywhere (100 years): bigger ones are mistakes.
    static let maxDuration = 100 * 365 * 86_400.0

    /// Seconds in `text`: a bare number, or numbers with units `ms`, `s`, `m`, `h`, `d` (`1h30m`);
    /// nil otherwise.
    static func parseDuration(_ text: String) -> Double? {
        let t = text.trimmingCharacters(in: .whitespaces)
        if let n = Double(t) { return n }
        var total = 0.0
        var number = ""
        var sawUnit = false
        let chars = Array(t)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            i += 1
            if c.isNumber || c == "." {
                number.append(c)
                continue
            }
            guard let n = Double(number) else { return nil }
            let unit: Double
            switch c {
            case "m" where i < chars.count && chars[i] == "s":
                unit = 0.001
                i += 1
            case "s": unit = 1
            case "m": unit = 60
            case "h": unit = 3600
            case "d": unit = 86_400
            default: return nil
            }
            total += n * unit
            number = ""
            sawUnit = true
        }
        return number.isEmpty && sawUnit ? total : nil
    }

    /// Bytes in `text`: a whole number with an optional unit `b`, `k`/`kb`/`kib`, `m`/`mb`/`mib` or
    /// `g`/`gb`/`gib` (any case, binary either way); nil otherwise or on overflow.
    static func parseByteSize(_ text: String) -> Int? {
        let t = text.trimmingCharacters(in: .whitespaces)
        let digits = t.prefix { $0.isNumber }
        guard let n = Int(digits) else { return nil }
        let unit = t.dropFirst(digits.count).trimmingCharacters(in: .whitespaces).lowercased()
        let scale: Int
        switch unit {
        case "", "b": scale = 1
        case "k", "kb", "kib": scale = 1 << 10
        case "m", "mb", "mib": scale = 1 << 20
        case "g", "gb", "gib": scale = 1 << 30
        default: return nil
        }
        let (value, overflow) = n.multipliedReportingOverflow(by: scale)
        return overflow ? nil : value
    }
}

/// The members of a YAML mapping, read once each; keys nobody asked for are reported as
/// unknown (a typo must never silently disable a check).
struct ConfigMapping {
    let owner: ConfigValue
    let entries: [(key: String, keyValue: ConfigValue, value: ConfigValue)]
    let context: String

    /// nil (with an error) when `value` is neither a mapping nor empty.
    init?(_ value: ConfigValue, context: String, diagnostics d: inout ConfigDiagnostics) {
        owner = value
        self.context = context
        if value.isNull {
            entries = []
            return
        }
        guard case .mapping(let mapping) = value.node else {
            d.error("\(context) must be a mapping of options, found \(value.kindName)", at: value)
            return nil
        }
        var entries: [(String, ConfigValue, ConfigValue)] = []
        for (k, v) in mapping {
            let kv = ConfigValue(k, fallbackLine: value.line, fallbackColumn: value.column)
            entries.append((k.scalar?.string ?? "", kv, ConfigValue(v, fallbackLine: kv.line, fallbackColumn: kv.column)))
        }
        self.entries = entries
    }

    subscript(_ key: String) -> ConfigValue? {
        entries.first { $0.key == key }?.value
    }

    /// Reports every key not in `allowed`, with a suggestion.
    func rejectUnknownKeys(allowed: [String], _ d: inout ConfigDiagnostics) {
        for entry in entries where !allowed.contains(entry.key) {
            d.error("unknown key '\(entry.key.cutForMessage())' in \(context)\(Suggestion.didYouMean(entry.key, in: allowed))", at: entry.keyValue)
        }
    }
}
