/// Turns what a plugin wrote into events, per the contract in docs/stages.md.
///
/// Every event a plugin writes must be a JSON object with string `id` and `type`; anything
/// else fails the event it answered (never the following ones).
enum ExecOutputParser {
    /// Event mode stdout: nothing (drop), one object (one line or pretty-printed), a JSON array
    /// of objects, or one object per line.
    static func events(fromOutput bytes: [UInt8], replacing original: Event, stage: String, redact: Redactor) -> Result<StageOutcome, ExecFailure> {
        let trimmed = trim(bytes[...])
        if trimmed.isEmpty { return .success(.replace([])) }
        if let document = try? JSONDocument(parsing: trimmed) {
            return whole(document, original: original, stage: stage, what: "stdout", redact: redact)
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
                return .failure(invalid(stage, "stdout line \(lineNumber) is not valid JSON (\(error)): \(excerpt(line, redact))"))
            }
            switch event(document, original: original) {
            case .success(let e): events.append(e)
            case .failure(let problem): return .failure(invalid(stage, "stdout line \(lineNumber): \(problem.text)"))
            }
        }
        return .success(.replace(events))
    }

    /// Stream mode: what one answer line means, and the id of the event it names (nil when it
    /// names none: then it cannot be matched to an event, and the worker treats the stream as
    /// out of step). Every answer names its event, so a plugin that writes a line too many or
    /// too few is caught instead of shifting answers onto other events:
    /// - an event object: the event whose `id` it carries (changed or not);
    /// - `{"answer_to": ID, "events": [...]}`: zero or more events in its place (`[]` drops);
    /// - `{"answer_to": ID, "error": "message"}`: that event failed.
    static func streamAnswer(
        _ line: ArraySlice<UInt8>, replacing original: Event, stage: String, redact: Redactor
    ) -> (names: String?, result: Result<StageOutcome, ExecFailure>) {
        let trimmed = trim(line)
        if trimmed.isEmpty {
            return (nil, .failure(invalid(stage, "answer is an empty line")))
        }
        let document: JSONDocument
        do { document = try JSONDocument(parsing: trimmed) } catch {
            return (nil, .failure(invalid(stage, "answer is not valid JSON (\(error)): \(excerpt(trimmed, redact))")))
        }
        let root = document.root
        guard root.kind == .object else {
            return (nil, .failure(invalid(stage, "answer \(excerpt(trimmed, redact)) names no event; drop with {\"answer_to\": ID, \"events\": []}")))
        }
        if let answerTo = root.member(EventField.answerTo) {
            guard let id = answerTo.string, !id.isEmpty else {
                return (nil, .failure(invalid(stage, "answer_to must be the id (a string) of the event answered: \(excerpt(trimmed, redact))")))
            }
            if let error = root.member(EventField.error) {
                let message = error.string ?? String(decoding: error.rawBytes, as: UTF8.self)
                return (id, .failure(ExecFailure(reason: .pluginError, message: "stage '\(stage)': the plugin reported: \(message)", retryable: true)))
            }
            guard let events = root.member(EventField.events), events.kind == .array,
                let list = try? JSONDocument(parsing: Array(events.rawBytes))
            else {
                return (id, .failure(invalid(stage, "an answer_to answer needs 'events' (a list; [] drops) or 'error': \(excerpt(trimmed, redact))")))
            }
            return (id, whole(list, original: original, stage: stage, what: "answer", redact: redact))
        }
        guard let id = root.member(EventField.id)?.string, !id.isEmpty else {
            return (nil, .failure(invalid(stage, "answer \(excerpt(trimmed, redact)) has no string 'id' and no 'answer_to': it names no event")))
        }
        return (id, whole(document, original: original, stage: stage, what: "answer", redact: redact))
    }

    static func whole(_ document: JSONDocument, original: Event, stage: String, what: String, redact: Redactor) -> Result<StageOutcome, ExecFailure> {
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
            return .failure(
                invalid(stage, "\(what) is a JSON \(root.kind), not an event object, an array of them, or null: \(excerpt(document.bytes, redact))"))
        }
    }

    struct Problem: Error { let text: String }

    static func event(_ document: JSONDocument, original: Event) -> Result<Event, Problem> {
        let root = document.root
        guard root.kind == .object else { return .failure(Problem(text: "not a JSON object")) }
        let fields = EventFields(document)
        if let name = fields.repeatedEventMember {
            return .failure(Problem(text: "the event has '\(name)' more than once (JSON readers differ on which one counts): write it once"))
        }
        guard let id = root.member(EventField.id)?.stringBytes, !id.isEmpty else {
            return .failure(Problem(text: "the event has no string 'id' (every event a plugin writes needs 'id' and 'type')"))
        }
        guard let type = root.member(EventField.type)?.stringBytes, !type.isEmpty else {
            return .failure(Problem(text: "the event has no string 'type' (every event a plugin writes needs 'id' and 'type')"))
        }
        // The fields found once, for the check above and the event.
        return .success(Event(document: document, fields: fields, source: original.source, origin: original.origin, delivery: nil))
    }

    static func invalid(_ stage: String, _ text: String) -> ExecFailure {
        ExecFailure(reason: .pluginOutput, message: "stage '\(stage)': \(text)", retryable: false)
    }

    static func trim(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var s = bytes
        while let f = s.first, f == 0x20 || f == 0x0A || f == 0x0D || f == 0x09 { s.removeFirst() }
        while let l = s.last, l == 0x20 || l == 0x0A || l == 0x0D || l == 0x09 { s.removeLast() }
        return s
    }

    /// The start of what the plugin wrote, for a message (bounded, one line), redacted before it
    /// is cut: a secret the cut fell inside would be left there in part.
    static func excerpt(_ bytes: ArraySlice<UInt8>, _ redact: Redactor) -> String {
        let limit = 120
        let redacted = redact(String(decoding: bytes.prefix(limit + redact.longest), as: UTF8.self))
        var text = String(redacted.prefix(limit)).replacingOccurrences(of: "\n", with: " ")
        if redacted.count > limit || bytes.count > limit + redact.longest { text += "…" }
        return "'\(text)'"
    }
}
