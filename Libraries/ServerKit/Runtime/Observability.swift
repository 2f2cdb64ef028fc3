import Foundation
import Metrics
import NIOConcurrencyHelpers
import Prometheus

/// The process's Prometheus registry. swift-metrics is bootstrapped once per process; every service in the process
/// (one in production, several in some tests) shares it.
public enum MetricsSetup {
    private static let state = NIOLockedValueBox<PrometheusCollectorRegistry?>(nil)

    public static var registry: PrometheusCollectorRegistry {
        state.withLockedValue { registry in
            if let registry { return registry }
            let created = PrometheusCollectorRegistry()
            var factory = PrometheusMetricsFactory(registry: created)
            factory.defaultDurationHistogramBuckets = [
                .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5),
                .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
            ]
            MetricsSystem.bootstrap(factory)
            registry = created
            return created
        }
    }
}

extension Metrics.Timer {
    /// Records a duration measured with a `ContinuousClock`.
    public func record(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// The figures of one kind of group commit (`Storage.GroupCommit`): `labportal_group_commit_batches_total{kind}` and
/// `labportal_group_commit_calls_total{kind}` (their ratio is the mean batch size) and
/// `labportal_group_commit_seconds{kind}` (each batch, from `BEGIN` to the last answer, lock waits included).
public struct GroupCommitMetrics: Sendable {
    let batches: Metrics.Counter
    let calls: Metrics.Counter
    let seconds: Metrics.Timer

    public init(kind: String) {
        batches = Metrics.Counter(label: "labportal_group_commit_batches_total", dimensions: [("kind", kind)])
        calls = Metrics.Counter(label: "labportal_group_commit_calls_total", dimensions: [("kind", kind)])
        seconds = Metrics.Timer(label: "labportal_group_commit_seconds", dimensions: [("kind", kind)])
    }

    public func record(calls count: Int, elapsed: Duration) {
        batches.increment()
        calls.increment(by: count)
        seconds.record(elapsed)
    }
}
