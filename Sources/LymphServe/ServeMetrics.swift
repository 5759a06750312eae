import Lymph
import Prometheus
import Synchronization

/// Everything `GET /metrics` shows, in one registry owned by the server (no global metrics
/// system, so several servers can run in one process, as tests do). Every metric is defined
/// here once: swift-prometheus stops the process if a name is registered twice differently.
public final class ServeMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let requests: LabelledMetrics<Prometheus.Counter>
    let signatureFailures: LabelledMetrics<Prometheus.Counter>
    let stageEvents: LabelledMetrics<Prometheus.Counter>
    let stageSeconds: LabelledMetrics<Prometheus.DurationHistogram>
    let requestBytes: Prometheus.Counter
    let requestDuration: Prometheus.DurationHistogram
    let spoolDepth: Prometheus.Gauge
    let spoolOldestAge: Prometheus.Gauge
    let spoolAppended: Prometheus.Counter
    let spoolCommits: Prometheus.Counter
    let spoolTimeouts: Prometheus.Counter
    let deadLetters: Prometheus.Counter
    let eventsRead: Prometheus.Counter
    let reloads: Prometheus.Counter
    let reloadFailures: Prometheus.Counter

    static let latencyBuckets: [Duration] = [
        .microseconds(250), .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(100), .milliseconds(500), .seconds(2.5),
    ]

    public init() {
        let registry = self.registry
        requests = LabelledMetrics(["status"]) { labels in
            registry.makeCounter(descriptor: Self.name("http_requests", "total", "HTTP requests by response status"), labels: labels)
        }
        signatureFailures = LabelledMetrics(["reason"]) { labels in
            registry.makeCounter(descriptor: Self.name("signature_failures", "total", "Webhooks refused with 401, by reason"), labels: labels)
        }
        stageEvents = LabelledMetrics(["stage", "outcome"]) { labels in
            registry.makeCounter(descriptor: Self.name("stage_events", "total", "Events per pipeline stage and outcome"), labels: labels)
        }
        stageSeconds = LabelledMetrics(["stage"]) { labels in
            registry.makeDurationHistogram(
                descriptor: Self.name("stage_batch_duration", "seconds", "Time a stage spent on one batch"),
                labels: labels, buckets: Self.latencyBuckets)
        }
        requestBytes = registry.makeCounter(descriptor: Self.name("http_request_body", "bytes_total", "Bytes of request bodies read"))
        requestDuration = registry.makeDurationHistogram(
            descriptor: Self.name("http_request_duration", "seconds", "Time from request to response, webhooks only"),
            buckets: Self.latencyBuckets)
        spoolDepth = registry.makeGauge(descriptor: Self.name("spool_depth", "entries", "Accepted webhooks not yet through the pipeline"))
        spoolOldestAge = registry.makeGauge(descriptor: Self.name("spool_oldest_age", "seconds", "Age of the oldest spool entry (0 when empty)"))
        spoolAppended = registry.makeCounter(descriptor: Self.name("spool_appended", "total", "Webhooks stored in the spool (answered 202)"))
        spoolCommits = registry.makeCounter(
            descriptor: Self.name("spool_commits", "total", "Spool transactions committed (appended / commits = webhooks per group commit)"))
        spoolTimeouts = registry.makeCounter(
            descriptor: Self.name("spool_timeouts", "total", "Webhooks answered 503 because the spool did not commit within 3 s"))
        deadLetters = registry.makeCounter(descriptor: Self.name("dead_letters", "total", "Events sent to the dead-letter output"))
        eventsRead = registry.makeCounter(descriptor: Self.name("pipeline_items", "total", "Spool entries taken through the pipeline"))
        reloads = registry.makeCounter(descriptor: Self.name("pipeline_reloads", "total", "Pipelines swapped in by a reload (SIGHUP or --watch)"))
        reloadFailures = registry.makeCounter(descriptor: Self.name("pipeline_reload_failures", "total", "Reloads refused (the running pipeline stayed)"))
    }

    static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "lymph", metricName: metric, unitName: unit, helpText: help)
    }

    func request(status: Int) { requests[String(status)].increment() }

    func signatureFailure(reason: String) { signatureFailures[reason].increment() }

    /// Per stage and outcome (`in`, `out`, `dropped`, `dead_letter`), and per-batch stage time.
    func record(_ report: BatchReport) {
        eventsRead.increment(by: Int64(report.itemsRead))
        if report.deadLetters > 0 { deadLetters.increment(by: Int64(report.deadLetters)) }
        for (i, name) in report.stageNames.enumerated() {
            let s = report.stats[i]
            for (outcome, n) in [("in", s.received), ("out", s.emitted), ("dropped", s.droppedTotal), ("dead_letter", s.deadLetters)] where n > 0 {
                stageEvents[name, outcome].increment(by: Int64(n))
            }
            if s.received > 0 { stageSeconds[name].record(.nanoseconds(Int64(report.stageSeconds[i] * 1e9))) }
        }
    }

    /// The Prometheus text exposition, with the spool gauges brought up to date first.
    func render(depth: Int, oldestAge: Double) -> [UInt8] {
        spoolDepth.set(Double(depth))
        spoolOldestAge.set(oldestAge)
        return registry.emitToBuffer()
    }
}
