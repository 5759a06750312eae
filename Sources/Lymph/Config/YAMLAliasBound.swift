// libyaml itself, as bundled by Yams: its event stream lets the size be counted before Yams
// builds a tree (Yams hashes mapping keys while composing, so a key that aliases a huge node
// would hang inside `compose` before any walk of ours could stop it).
import CYaml

/// Bounds the size of a YAML document once its aliases are expanded (an alias bomb: nine
/// levels of ten aliases are a billion nodes in a kilobyte of text).
enum YAMLAliasBound {
    /// Where the document passed `limit` nodes, counting an aliased node's whole size at each
    /// use; nil when it stays within (or does not parse: the composer then reports why).
    /// Linear in the text: every event is seen once and sizes are kept per anchor.
    static func firstExcess(in text: String, limit: Int) -> (line: Int, column: Int)? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return nil }
        defer { yaml_parser_delete(&parser) }
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBufferPointer { buffer -> (line: Int, column: Int)? in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var anchors: [String: Int] = [:]
            // Open collections: their size so far and their anchor.
            var open: [(size: Int, anchor: String?)] = []
            var total = 0
            func add(_ size: Int) -> Bool {
                if open.isEmpty {
                    total = min(total + size, limit + 1)
                } else {
                    open[open.count - 1].size = min(open[open.count - 1].size + size, limit + 1)
                }
                return total > limit || (open.last?.size ?? 0) > limit
            }
            func name(_ anchor: UnsafeMutablePointer<yaml_char_t>?) -> String? {
                anchor.map { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
            }
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { return nil }
                defer { yaml_event_delete(&event) }
                let mark = (line: Int(event.start_mark.line) + 1, column: Int(event.start_mark.column) + 1)
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return nil
                case YAML_SCALAR_EVENT:
                    if let a = name(event.data.scalar.anchor) { anchors[a] = 1 }
                    if add(1) { return mark }
                case YAML_ALIAS_EVENT:
                    let size = name(event.data.alias.anchor).flatMap { anchors[$0] } ?? 1
                    if add(size) { return mark }
                case YAML_SEQUENCE_START_EVENT:
                    open.append((1, name(event.data.sequence_start.anchor)))
                case YAML_MAPPING_START_EVENT:
                    open.append((1, name(event.data.mapping_start.anchor)))
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    guard let closed = open.popLast() else { return nil }
                    if let a = closed.anchor { anchors[a] = closed.size }
                    if add(closed.size) { return mark }
                default:
                    break
                }
            }
        }
    }
}
