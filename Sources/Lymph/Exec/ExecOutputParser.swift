/// Turns what a plugin wrote into events, per the contract in docs/stages.md.
///
/// Every event a plugin writes must be a JSON object with string `id` and `type`; anything
/// else fails the event it answered (never the following ones).
enum ExecOutputParser {
    /// Event mode stdout: nothing (drop), one object (one line or pretty-printed), a JSON array
    /// of objects, or one object per line.
    static func events(fromOutput bytes: [UInt8], replacing original: Event, stage: String) -> Result<StageOutcome, ExecFailure> {
        let trimmed = trim(bytes[...])
        if trimmed.isEmpty { return .success(.replace([])) }
        if let document = try? JSONDocument(parsing: trimmed) {
            return whole(document, original: original, stage: stage, what: "stdout")
        }
        var events: [Event] = []
        var lineNumber = 0
        var start = trimmed.startIndex
        while start < trimmed.endIndex {
            let end = trimmed[start...].firstIndex(of: 0x0A) ?? trimmed.endIndex
            lineNumber += 1
            let line = trim(trimmed[start..<end])
            start = end + 1
            if line.isEmpty { continue }
            let document: JSONDocument
            do { document = try JSONDocument(parsing: line) } catch {
                return .failure(invalid(stage, "stdout line \(lineNumber) is not valid JSON (\(error)): \(excerpt(line))"))
            }
            switch event(document, original: original) {
            case .success(let e): events.append(e)
            case .failure(let problem): return .failure(invalid(stage, "stdout line \(lineNumber): \(problem.text)"))
            }
        }
        return .success(.replace(events))
    }

    /// Stream mode: one answer line for one event.
    static func answer(_ line: ArraySlice<UInt8>, replacing original: Event, stage: String) -> Result<StageOutcome, ExecFailure> {
        let trimmed = trim(line)
        if trimmed.isEmpty {
            return .failure(invalid(stage, "answer is an empty line; answer null to drop an event"))
        }
        let document: JSONDocument
        do { document = try JSONDocument(parsing: trimmed) } catch {
            return .failure(invalid(stage, "answer is not valid JSON (\(error)): \(excerpt(trimmed))"))
        }
        let root = document.root
        if root.kind == .object, root.member(EventField.id) == nil, let error = root.member(EventField.error) {
            let message = error.string ?? String(decoding: error.rawBytes, as: UTF8.self)
            return .failure(ExecFailure(reason: "plugin_error", message: "stage '\(stage)': the plugin reported: \(message)", retryable: true))
        }
        return whole(document, original: original, stage: stage, what: "answer")
    }

    static func whole(_ document: JSONDocument, original: Event, stage: String, what: String) -> Result<StageOutcome, ExecFailure> {
        let root = document.root
        switch root.kind {
        case .null:
            return .success(.replace([]))
        case .object:
            switch event(document, original: original) {
            case .success(let e): return .success(.replace([e]))
            case .failure(let problem): return .failure(invalid(stage, "\(what): \(problem.text)"))
            }
        case .array:
            var events: [Event] = []
            let elements: [JSONValue] = root.elements.map { Array($0) } ?? []
            for (n, element) in elements.enumerated() {
                guard element.kind == .object, let d = try? JSONDocument(parsing: Array(element.rawBytes)) else {
                    return .failure(invalid(stage, "\(what): element \(n + 1) of the array is not a JSON object"))
                }
                switch event(d, original: original) {
                case .success(let e): events.append(e)
                case .failure(let problem): return .failure(invalid(stage, "\(what): element \(n + 1): \(problem.text)"))
                }
            }
            return .success(.replace(events))
        default:
            return .failure(invalid(stage, "\(what) is a JSON \(root.kind), not an event object, an array of them, or null: \(excerpt(document.bytes))"))
        }
    }

    struct Problem: Error { let text: String }

    static func event(_ document: JSONDocument, original: Event) -> Result<Event, Problem> {
        let root = document.root
        guard root.kind == .object else { return .failure(Problem(text: "not a JSON object")) }
        guard let id = root.member(EventField.id)?.stringBytes, !id.isEmpty else {
            return .failure(Problem(text: "the event has no string 'id' (every event a plugin writes needs 'id' and 'type')"))
        }
        guard let type = root.member(EventField.type)?.stringBytes, !type.isEmpty else {
            return .failure(Problem(text: "the event has no string 'type' (every event a plugin writes needs 'id' and 'type')"))
        }
        return .success(Event(document: document, source: original.source, origin: original.origin))
    }

    static func invalid(_ stage: String, _ text: String) -> ExecFailure {
        ExecFailure(reason: "plugin_output", message: "stage '\(stage)': \(text)", retryable: false)
    }

    static func trim(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var s = bytes
        while let f = s.first, f == 0x20 || f == 0x0A || f == 0x0D || f == 0x09 { s.removeFirst() }
        while let l = s.last, l == 0x20 || l == 0x0A || l == 0x0D || l == 0x09 { s.removeLast() }
        return s
    }

    /// The start of what the plugin wrote, for a message (bounded, one line).
    static func excerpt(_ bytes: ArraySlice<UInt8>) -> String {
        let cut = bytes.prefix(120)
        var text = String(decoding: cut, as: UTF8.self).replacingOccurrences(of: "\n", with: " ")
        if bytes.count > 120 { text += "…" }
        return "'\(text)'"
    }
}
