/// `log`: appends each event to a file, stdout or stderr, as a JSON line or a line from a template.
public struct LogSpec: StageSpec {
    /// `path:`: `-` (stdout, the default), `stderr`, or a file path.
    public var path: String
    /// The parsed `template:`; with it each line is the template's, without it the event's JSON.
    public var template: LogTemplate?
    /// `template:` as written, for the summary.
    public var templateText: String?
    /// `fsync:`: sync the file to disk after each batch's lines (default false).
    public var fsync: Bool

    /// The path, then `json` or the template, then `fsync` when set.
    public var summary: String {
        "to \(path), " + (templateText.map { "text \"\($0)\"" } ?? "json") + (fsync ? ", fsync" : "")
    }

    /// Opens the path through the pipeline's sinks, so that a file named twice is written through
    /// one descriptor.
    public func build(_ env: StageBuildEnvironment) throws -> any Stage {
        LogStage(sink: try env.sinks.sink(for: path), format: template.map { .text($0) } ?? .json, fsync: fsync)
    }

    static let kind = StageKind(name: "log", optionKeys: ["path", "format", "template", "fsync"]) { m, d in
        var path = "-"
        if let p = m["path"], let text = p.string(&d, "path") {
            if text.isEmpty {
                d.error("path cannot be empty; use '-' for stdout", at: p)
            } else if let problem = PipelineLoader.keywordLookalikeProblem(text, "path", keywords: ["stdout", "stderr"]) {
                d.error(problem, at: p)
            } else {
                path = text
            }
        }
        var format = "json"
        if let f = m["format"], let text = f.string(&d, "format") {
            if text == "json" || text == "text" {
                format = text
            } else {
                d.error("format must be 'json' or 'text'\(Suggestion.didYouMean(text, in: ["json", "text"]))", at: f)
            }
        }
        var template: LogTemplate?
        var templateText: String?
        if let t = m["template"], let text = t.string(&d, "template") {
            if text.allSatisfy(\.isWhitespace) {
                d.error("template is empty: every event would log a blank line", at: t)
            } else if text.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\t" || $0.value == 0x7F }) {
                // Values' own control characters become spaces; the template's would be written
                // as they are, a line break splitting each event's line in two.
                d.error("template holds a line break or another control character: a text log is one line per event", at: t)
            }
            do {
                template = try LogTemplate(parsing: text)
                templateText = text
            } catch {
                d.error("\(error)", at: t)
            }
            if format != "text" && m["format"] != nil {
                d.error("template is only used with 'format: text'", at: t)
            }
        } else if format == "text" {
            d.error("format: text needs a 'template:' such as \"{created_at} {type} {id}\"", at: m["format"] ?? m.owner)
        }
        let fsync = m["fsync"].flatMap { $0.bool(&d, "fsync") } ?? false
        return LogSpec(path: path, template: template, templateText: templateText, fsync: fsync)
    }
}
