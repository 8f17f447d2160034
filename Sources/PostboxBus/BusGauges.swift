import Metrics

/// Publishes a ``BusStats`` snapshot as gauges: `postbox.bus.depth`, `postbox.bus.leased`,
/// `postbox.bus.dead_letters`, `postbox.bus.oldest_age_seconds`, `postbox.bus.blocked_keys`, by subscription.
struct BusGauges {
    func update(with stats: BusStats) {
        for subscription in stats.subscriptions {
            let dimensions = [("subscription", subscription.name)]
            Gauge(label: "postbox.bus.depth", dimensions: dimensions).record(subscription.depth)
            Gauge(label: "postbox.bus.leased", dimensions: dimensions).record(subscription.leased)
            Gauge(label: "postbox.bus.dead_letters", dimensions: dimensions).record(subscription.deadLetters)
            Gauge(label: "postbox.bus.oldest_age_seconds", dimensions: dimensions).record(subscription.oldestAgeSeconds)
            Gauge(label: "postbox.bus.blocked_keys", dimensions: dimensions).record(subscription.blockedKeys)
        }
    }
}
