// libyaml itself, as bundled by Yams: its event stream lets the size be counted before Yams
// builds a tree (Yams hashes mapping keys while composing, so a key that aliases a huge node
// would hang inside `compose` before any walk of ours could stop it).
import CYaml

/// Bounds the size of a YAML document once its aliases are expanded (an alias bomb: nine
/// levels of ten aliases are a billion nodes in a kilobyte of text).
enum YAMLAliasBound {
    /// Where the document passed `limit` nodes or `byteLimit` bytes of scalars, counting an
    /// aliased node's whole size at each use (one long scalar used a thousand times is as much
    /// work as a thousand nodes); nil when it stays within (or does not parse: the composer then
    /// reports why). Linear in the text: every event is seen once and sizes are kept per anchor.
    static func firstExcess(in text: String, limit: Int, byteLimit: Int) -> (line: Int, column: Int)? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return nil }
        defer { yaml_parser_delete(&parser) }
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBufferPointer { buffer -> (line: Int, column: Int)? in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var anchors: [String: Size] = [:]
            // Open collections: their size so far and their anchor.
            var open: [(size: Size, anchor: String?)] = []
            var total = Size(nodes: 0, bytes: 0)
            func add(_ size: Size) -> Bool {
                if open.isEmpty {
                    total = total.adding(size, limit, byteLimit)
                } else {
                    open[open.count - 1].size = open[open.count - 1].size.adding(size, limit, byteLimit)
                }
                let current = open.last?.size ?? total
                return total.exceeds(limit, byteLimit) || current.exceeds(limit, byteLimit)
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
                    let size = Size(nodes: 1, bytes: Int(event.data.scalar.length))
                    if let a = name(event.data.scalar.anchor) { anchors[a] = size }
                    if add(size) { return mark }
                case YAML_ALIAS_EVENT:
                    let size = name(event.data.alias.anchor).flatMap { anchors[$0] } ?? Size(nodes: 1, bytes: 0)
                    if add(size) { return mark }
                case YAML_SEQUENCE_START_EVENT:
                    open.append((Size(nodes: 1, bytes: 0), name(event.data.sequence_start.anchor)))
                case YAML_MAPPING_START_EVENT:
                    open.append((Size(nodes: 1, bytes: 0), name(event.data.mapping_start.anchor)))
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

    /// Nodes and scalar bytes, saturating just past the limits.
    struct Size {
        var nodes: Int
        var bytes: Int

        func adding(_ other: Size, _ limit: Int, _ byteLimit: Int) -> Size {
            Size(nodes: min(nodes + other.nodes, limit + 1), bytes: min(bytes + other.bytes, byteLimit + 1))
        }

        func exceeds(_ limit: Int, _ byteLimit: Int) -> Bool { nodes > limit || bytes > byteLimit }
    }
}
