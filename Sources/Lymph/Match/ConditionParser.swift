import Yams

/// Reads `types:` and `match:` (and `when:`, which has the same two keys) from a pipeline file.
enum ConditionParser {
    static let operators = ["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "exists", "prefix", "suffix", "contains", "regex"]
    static let combinators = ["any", "all", "not"]

    /// A `{types, match}` mapping (the body of `filter` or of `when:`); nil when it holds neither.
    static func typesAndMatch(_ m: ConfigMapping, _ d: inout ConfigDiagnostics) -> Condition? {
        var parts: [Condition] = []
        if let t = m["types"], let names = t.strings(&d, "types") {
            let patterns = names.compactMap { v -> String? in
                guard let s = v.string(&d, "a type"), !s.isEmpty else {
                    d.error("a type name cannot be empty", at: v)
                    return nil
                }
                if s.contains("*") && !(s == "*" || (s.hasSuffix(".*") && !s.dropLast(2).contains("*"))) {
                    d.error("'\(s.cutForMessage())': the only wildcard is a trailing '.*' (as in 'alert.*') or '*' alone", at: v)
                    return nil
                }
                return s
            }
            if names.isEmpty { d.error("types is an empty list: nothing would match", at: t) }
            parts.append(.types(TypeMatcher(patterns)))
        }
        if let matchValue = m["match"] {
            if let c = match(matchValue, &d) {
                parts.append(c)
            } else if case .mapping(let mm) = matchValue.node, mm.isEmpty {
                d.error("match is empty: it would test nothing (remove it, or add a condition)", at: matchValue)
            }
        }
        if parts.isEmpty { return nil }
        return parts.count == 1 ? parts[0] : .all(parts)
    }

    /// A mapping of `path: value` or `path: {op: value}` and `any`/`all`/`not`, all of which must hold.
    static func match(_ value: ConfigValue, _ d: inout ConfigDiagnostics) -> Condition? {
        guard case .mapping(let mapping) = value.node else {
            d.error("match must be a mapping of field paths to conditions, found \(value.kindName)", at: value)
            return nil
        }
        var parts: [Condition] = []
        for (k, v) in mapping {
            let key = ConfigValue(k, fallbackLine: value.line, fallbackColumn: value.column)
            let val = ConfigValue(v, fallbackLine: key.line, fallbackColumn: key.column)
            guard let name = k.scalar?.string else {
                d.error("a match key must be a field path", at: key)
                continue
            }
            switch name {
            case "any", "all":
                guard let items = val.list(&d, name) else { continue }
                if items.isEmpty { d.error("\(name) needs at least one condition", at: val) }
                let subs = items.compactMap { nonEmptyMatch($0, &d) }
                if subs.count == items.count { parts.append(name == "any" ? .any(subs) : .all(subs)) }
            case "not":
                if let sub = nonEmptyMatch(val, &d) { parts.append(.not(sub)) }
            default:
                let path: JSONPath
                do { path = try JSONPath(parsing: name) } catch {
                    d.error(error.description, at: key)
                    continue
                }
                if let tests = fieldTests(val, &d) {
                    parts.append(contentsOf: tests.map { .field(path, $0) })
                }
            }
        }
        if parts.isEmpty { return nil }
        return parts.count == 1 ? parts[0] : .all(parts)
    }

    /// A condition inside `any`, `all` or `not`: an empty one is an error, never dropped.
    static func nonEmptyMatch(_ value: ConfigValue, _ d: inout ConfigDiagnostics) -> Condition? {
        let errorsBefore = d.errors.count
        let c = match(value, &d)
        if c == nil && d.errors.count == errorsBefore {
            d.error("an empty condition tests nothing; write at least one field test", at: value)
        }
        return c
    }

    static func fieldTests(_ value: ConfigValue, _ d: inout ConfigDiagnostics) -> [FieldTest]? {
        switch value.node {
        case .scalar:
            return scalar(value, &d).map { [.eq($0)] }
        case .sequence:
            d.error("a field maps to one value or to operators; for a list of allowed values write 'in: [...]'", at: value)
            return nil
        case .alias:
            d.error("aliases are not supported here", at: value)
            return nil
        case .mapping(let ops):
            var tests: [FieldTest] = []
            for (k, v) in ops {
                let key = ConfigValue(k, fallbackLine: value.line, fallbackColumn: value.column)
                let arg = ConfigValue(v, fallbackLine: key.line, fallbackColumn: key.column)
                let op = k.scalar?.string ?? ""
                switch op {
                case "eq", "ne", "gt", "gte", "lt", "lte", "contains":
                    guard let c = scalar(arg, &d) else { continue }
                    if ["gt", "gte", "lt", "lte"].contains(op) {
                        switch c {
                        case .number, .string: break
                        default:
                            d.error("\(op) compares numbers or strings, found \(c)", at: arg)
                            continue
                        }
                    }
                    switch op {
                    case "eq": tests.append(.eq(c))
                    case "ne": tests.append(.ne(c))
                    case "gt": tests.append(.gt(c))
                    case "gte": tests.append(.gte(c))
                    case "lt": tests.append(.lt(c))
                    case "lte": tests.append(.lte(c))
                    default:
                        if case .string(let needle) = c, needle.isEmpty {
                            d.error("contains is empty: every string would match (use 'exists: true' to test presence)", at: arg)
                            continue
                        }
                        tests.append(.contains(c))
                    }
                case "in", "nin":
                    guard let items = arg.list(&d, op) else { continue }
                    if items.isEmpty {
                        d.error("\(op) needs at least one value (an empty list would \(op == "in" ? "match nothing" : "match everything"))", at: arg)
                        continue
                    }
                    let values = items.compactMap { scalar($0, &d) }
                    guard values.count == items.count else { continue }
                    tests.append(op == "in" ? .isIn(values) : .notIn(values))
                case "exists":
                    if let b = arg.bool(&d, "exists") { tests.append(.exists(b)) }
                case "prefix", "suffix":
                    guard let s = arg.string(&d, op) else { continue }
                    if s.isEmpty {
                        d.error("\(op) is empty: every string would match (use 'exists: true' to test presence)", at: arg)
                        continue
                    }
                    tests.append(op == "prefix" ? .prefix(Array(s.utf8)) : .suffix(Array(s.utf8)))
                case "regex":
                    guard let s = arg.string(&d, "regex") else { continue }
                    if s.isEmpty {
                        d.error("regex is empty: every string would match (use 'exists: true' to test presence)", at: arg)
                        continue
                    }
                    do { tests.append(.regex(try RegexPattern(s))) } catch {
                        d.error("invalid regular expression '\(s.cutForMessage())': \(error)", at: arg)
                    }
                default:
                    d.error("unknown operator '\(op.cutForMessage())'\(Suggestion.didYouMean(op, in: operators))", at: key)
                }
            }
            if ops.isEmpty { d.error("no operator given", at: value) }
            return tests
        }
    }

    /// A YAML scalar as a constant: quoted text is always a string; plain text is a number,
    /// boolean or null when YAML reads it as one.
    static func scalar(_ value: ConfigValue, _ d: inout ConfigDiagnostics) -> ScalarValue? {
        guard case .scalar(let s) = value.node else {
            d.error("expected a single value, found \(value.kindName)", at: value)
            return nil
        }
        if s.style != .plain { return .string(Array(s.string.utf8)) }
        let node = value.node
        if node.null != nil { return .null }
        if let b = node.bool { return .bool(b) }
        if let i = node.int { return .number(Double(i)) }
        if let f = node.float {
            // JSON has no infinity or NaN: `.nan` would match nothing and `lt: 1e309` everything.
            guard f.isFinite else {
                d.error("'\(s.string.cutForMessage())' is not a number JSON can hold (infinite or NaN): no event's value compares to it", at: value)
                return nil
            }
            return .number(f)
        }
        return .string(Array(s.string.utf8))
    }
}
