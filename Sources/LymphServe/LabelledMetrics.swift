import Synchronization

/// One metric family with labels: each set of label values is registered on first use and
/// reused after (swift-prometheus wants every name defined once, the same way).
final class LabelledMetrics<Metric: Sendable>: Sendable {
    let names: [String]
    let make: @Sendable ([(String, String)]) -> Metric
    let made = Mutex<[[String]: Metric]>([:])

    init(_ names: [String], make: @escaping @Sendable ([(String, String)]) -> Metric) {
        self.names = names
        self.make = make
    }

    subscript(_ values: String...) -> Metric {
        made.withLock { m in
            if let metric = m[values] { return metric }
            let metric = make(Array(zip(names, values)))
            m[values] = metric
            return metric
        }
    }
}
