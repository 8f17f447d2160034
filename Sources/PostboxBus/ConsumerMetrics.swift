import Metrics

/// The counters and timer one consumer reports, labelled by subscription.
struct ConsumerMetrics: Sendable {
    let handled: Counter
    let failures: Counter
    let deadLettered: Counter
    let leaseTakeovers: Counter
    let duplicates: Counter
    let duration: Metrics.Timer

    init(subscription: String) {
        let dimensions = [("subscription", subscription)]
        handled = Counter(label: "postbox.bus.handled", dimensions: dimensions)
        failures = Counter(label: "postbox.bus.failures", dimensions: dimensions)
        deadLettered = Counter(label: "postbox.bus.dead_lettered", dimensions: dimensions)
        leaseTakeovers = Counter(label: "postbox.bus.lease_takeovers", dimensions: dimensions)
        duplicates = Counter(label: "postbox.bus.duplicates", dimensions: dimensions)
        duration = Metrics.Timer(label: "postbox.bus.handle.duration", dimensions: dimensions)
    }
}
