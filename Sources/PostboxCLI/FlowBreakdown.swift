import Foundation
import Histogram
import Logging
import PostboxScenarios
import PostgresNIO

/// Where an order-flow run's latency came from: how long each subscription's events waited, and in which seconds
/// the slow orders fell.
///
/// A wait runs from the start of the publishing transaction to the start of the handling one (`published_at` to
/// `handled_at`, both PostgreSQL's `now()`), so it includes the publisher's commit, the wake-up, the claim and any
/// queueing in the consumer. A handler that works before its transaction begins has that work counted too:
/// payments' charge reads and calls the card processor before its one statement, which is its transaction. One
/// subscription far behind the others is a consumer short of capacity; all of them behind together is a machine
/// short of CPU, or a stall: the vacuums, analyzes and checkpoint of the run's seconds are listed beside them.
struct FlowBreakdown: Codable {
    /// The waits of one subscription for one event type, in milliseconds.
    struct Wait: Codable {
        var subscription: String
        var eventType: String
        var events: Int
        var p50: Double
        var p99: Double
        var max: Double
    }

    /// The orders over 100 ms placed in one second of the run, counted from the first checkout.
    struct SlowSecond: Codable {
        var second: Int
        var orders: Int
    }

    var waits: [Wait]
    /// Orders over 100 ms, and how many of the run's seconds (counted from the first checkout) held one.
    var slowOrders: Int
    var slowSeconds: Int
    var seconds: Int
    /// The second with the most slow orders (from the first checkout), and how many it held.
    var worstSecond: Int?
    var worstSecondSlowOrders: Int
    /// Every second that held a slow order, in order: to lay beside the server's log (an autovacuum, a checkpoint).
    var slowOrdersBySecond: [SlowSecond]
    /// The vacuums and analyzes that finished in the run's seconds, and a checkpoint that began in them, seconds
    /// counted as for the slow orders.
    var maintenance: [ServerMaintenance]

    /// Reads the breakdown of the orders placed since `since` (PostgreSQL's clock, seconds since 1970), but those of
    /// `excludingCarts` (a warm-up's orders, whose last few may start after `since`) and their events (an order's
    /// events carry its id, as `UUID.uuidString` writes it, as their ordering key).
    static func read(
        on connection: PostgresConnection,
        since: Double,
        excludingCarts: [UUID],
        logger: Logger
    ) async throws -> FlowBreakdown {
        var histograms: [String: (String, String, Histogram<UInt64>)] = [:]
        for try await (subscription, type, micros) in try await connection.query(
            """
            WITH warmup AS (SELECT upper(id::text) AS key FROM orders.orders WHERE cart_id = ANY(\(excludingCarts)))
            SELECT h.subscription, e.type, (extract(epoch FROM h.handled_at - e.published_at) * 1000000)::bigint
            FROM bus.handled h JOIN bus.events e ON e.id = h.event_id
            WHERE e.published_at >= to_timestamp(\(since))
              AND NOT EXISTS (SELECT 1 FROM warmup WHERE warmup.key = e.ordering_key)
            """,
            logger: logger
        ).decode((String, String, Int).self) {
            let key = subscription + "\u{0}" + type
            var entry =
                histograms[key]
                ?? (subscription, type, Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three))
            _ = entry.2.record(UInt64(max(micros, 1)))
            histograms[key] = entry
        }
        let waits = histograms.values.map { subscription, type, histogram in
            Wait(
                subscription: subscription,
                eventType: type,
                events: Int(histogram.totalCount),
                p50: Double(histogram.valueAtPercentile(50)) / 1000,
                p99: Double(histogram.valueAtPercentile(99)) / 1000,
                max: Double(histogram.maxRecorded) / 1000
            )
        }.sorted { ($0.subscription, $0.eventType) < ($1.subscription, $1.eventType) }

        var slowBySecond: [Int: Int] = [:]
        var seconds = 0
        var lastSecond = 0
        for try await (second, slow) in try await connection.query(
            """
            SELECT floor(extract(epoch FROM created_at) - \(since))::int,
                count(*) FILTER (WHERE updated_at - created_at > interval '100 milliseconds')::int
            FROM orders.orders WHERE created_at >= to_timestamp(\(since)) AND NOT cart_id = ANY(\(excludingCarts))
            GROUP BY 1
            """,
            logger: logger
        ).decode((Int, Int).self) {
            seconds += 1
            lastSecond = max(lastSecond, second)
            if slow > 0 { slowBySecond[second] = slow }
        }
        let maintenance = try await ServerMaintenance.during(
            from: since,
            to: since + Double(lastSecond + 1),
            on: connection,
            logger: logger
        )
        let worst = slowBySecond.max { ($0.value, -$0.key) < ($1.value, -$1.key) }
        return FlowBreakdown(
            waits: waits,
            slowOrders: slowBySecond.values.reduce(0, +),
            slowSeconds: slowBySecond.count,
            seconds: seconds,
            worstSecond: worst?.key,
            worstSecondSlowOrders: worst?.value ?? 0,
            slowOrdersBySecond: slowBySecond.sorted { $0.key < $1.key }.map { SlowSecond(second: $0.key, orders: $0.value) },
            maintenance: maintenance
        )
    }

    /// The breakdown as text, one subscription per line.
    var summary: String {
        var lines = ["event waits, publish → handling transaction (ms):"]
        for wait in waits {
            lines.append(
                "  " + "\(wait.subscription) ← \(wait.eventType)".padding(toLength: 36, withPad: " ", startingAt: 0)
                    + String(format: "p50 %6.1f   p99 %6.1f   max %6.1f   (%d events)", wait.p50, wait.p99, wait.max, wait.events)
            )
        }
        var slow = "orders over 100 ms: \(slowOrders), in \(slowSeconds) of \(seconds) seconds"
        if let worstSecond { slow += "; the worst was second \(worstSecond) with \(worstSecondSlowOrders)" }
        lines.append(slow)
        if !slowOrdersBySecond.isEmpty {
            let bySecond = slowOrdersBySecond.map { "\($0.second): \($0.orders)" }
            lines.append("  by second (second: orders): " + bySecond.joined(separator: ", "))
        }
        if maintenance.isEmpty {
            lines.append("no vacuum, analyze or checkpoint in the run's seconds")
        } else {
            lines.append("vacuums and analyzes as they finished, a checkpoint as it began (second: what):")
            let bySecond = Dictionary(grouping: maintenance, by: \.second).sorted { $0.key < $1.key }
            for (second, runs) in bySecond {
                let checkpoint = runs.contains { $0.table == nil } ? ["checkpoint began"] : []
                let tables = Dictionary(grouping: runs.filter { $0.table != nil }, by: { $0.table ?? "" })
                    .sorted { $0.key < $1.key }
                    .map { table, runs in "\(table) (\(runs.map(\.kind).sorted().joined(separator: ", ")))" }
                lines.append("  \(second): " + (checkpoint + tables).joined(separator: ", "))
            }
        }
        return lines.joined(separator: "\n")
    }
}
