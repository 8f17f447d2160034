import Foundation
import Logging
import PostgresNIO

/// A snapshot of the bus, per subscription: what waits, what is leased, what is dead.
public struct BusStats: Sendable, Hashable, Codable {
    /// The state of one subscription's queue.
    public struct SubscriptionStats: Sendable, Hashable, Codable {
        /// The subscription's name.
        public var name: String
        /// Deliveries visible now, waiting for a consumer.
        public var ready: Int
        /// Deliveries a consumer holds a live lease on.
        public var leased: Int
        /// Deliveries waiting for a delay or a retry backoff.
        public var scheduled: Int
        /// Deliveries that failed at least once and are not dead yet.
        public var retrying: Int
        /// Dead letters.
        public var deadLetters: Int
        /// Seconds since the event of the oldest pending delivery was published (0 when empty). A replayed dead
        /// letter counts from its replay's place in the queue, not from its first publish.
        public var oldestAgeSeconds: Double
        /// Ordering keys whose head event has failed and holds back the key's later events.
        public var blockedKeys: Int

        /// Everything not yet handled or dead.
        public var depth: Int { ready + leased + scheduled }
    }

    /// One entry per known subscription, sorted by name.
    public var subscriptions: [SubscriptionStats]

    /// Every subscription's depth, added up.
    public var totalDepth: Int { subscriptions.reduce(0) { $0 + $1.depth } }
    /// Live leases, added up.
    public var totalLeased: Int { subscriptions.reduce(0) { $0 + $1.leased } }
    /// Dead letters, added up.
    public var totalDeadLetters: Int { subscriptions.reduce(0) { $0 + $1.deadLetters } }

    static func read(client: PostgresClient, logger: Logger) async throws -> BusStats {
        try await client.withOpenConnection { connection in
            let rows = try await connection.query(
                """
                WITH q AS (
                    SELECT d.subscription,
                        count(*) FILTER (WHERE d.visible_at <= now())::int AS ready,
                        count(*) FILTER (WHERE d.visible_at > now() AND d.lease_token IS NOT NULL)::int AS leased,
                        count(*) FILTER (WHERE d.visible_at > now() AND d.lease_token IS NULL)::int AS scheduled,
                        count(*) FILTER (WHERE cardinality(d.errors) > 0)::int AS retrying,
                        count(DISTINCT d.ordering_key) FILTER (
                            WHERE cardinality(d.errors) > 0 AND d.ordering_key IS NOT NULL)::int AS blocked,
                        min(d.id) AS oldest_id
                    FROM bus.deliveries d
                    GROUP BY d.subscription),
                names AS (
                    SELECT subscription FROM bus.subscriptions
                    UNION SELECT subscription FROM q
                    UNION SELECT subscription FROM bus.dead_letters),
                dl AS (SELECT subscription, count(*)::int AS dead FROM bus.dead_letters GROUP BY subscription)
                SELECT n.subscription, coalesce(q.ready, 0), coalesce(q.leased, 0), coalesce(q.scheduled, 0),
                    coalesce(q.retrying, 0), coalesce(dl.dead, 0),
                    -- The age of the oldest delivery's event: one event looked up per subscription, not one per delivery.
                    coalesce(extract(epoch FROM now() - (
                        SELECT e.published_at FROM bus.deliveries o JOIN bus.events e ON e.id = o.event_id
                        WHERE o.id = q.oldest_id)), 0)::float8,
                    coalesce(q.blocked, 0)
                FROM names n LEFT JOIN q ON q.subscription = n.subscription
                    LEFT JOIN dl ON dl.subscription = n.subscription
                ORDER BY n.subscription
                """,
                logger: logger
            )
            var subscriptions: [SubscriptionStats] = []
            for try await row in rows.decode((String, Int, Int, Int, Int, Int, Double, Int).self) {
                subscriptions.append(
                    SubscriptionStats(
                        name: row.0,
                        ready: row.1,
                        leased: row.2,
                        scheduled: row.3,
                        retrying: row.4,
                        deadLetters: row.5,
                        oldestAgeSeconds: row.6,
                        blockedKeys: row.7
                    )
                )
            }
            return BusStats(subscriptions: subscriptions)
        }
    }
}
