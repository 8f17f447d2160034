import Foundation
import Logging
import PostgresNIO

/// Every statement the bus runs against its tables. Nothing outside this module writes bus SQL.
struct DeliveryStore: Sendable {
    let client: PostgresClient
    let logger: Logger

    // MARK: Publishing

    /// Inserts the events and one delivery per subscribed subscription, in the caller's transaction.
    /// An id that already exists is skipped (a duplicate publish has no effect).
    static func publish(
        _ envelopes: [EventEnvelope], deliverAt: Date?, on connection: PostgresConnection, logger: Logger
    ) async throws {
        guard !envelopes.isEmpty else { return }
        try await connection.query(publishStatement(envelopes, deliverAt: deliverAt), logger: logger)
    }

    /// Publishes in one autocommit statement: atomic on its own, and one round trip instead of three.
    func publish(_ envelopes: [EventEnvelope], deliverAt: Date?) async throws {
        guard !envelopes.isEmpty else { return }
        try await client.execute(Self.publishStatement(envelopes, deliverAt: deliverAt), logger: logger)
    }

    private static func publishStatement(_ envelopes: [EventEnvelope], deliverAt: Date?) -> PostgresQuery {
        let ids = envelopes.map(\.id)
        let types = envelopes.map(\.type)
        let versions = envelopes.map(\.version)
        let occurred = envelopes.map(\.occurredAt)
        let correlations = envelopes.map { $0.correlationId ?? "" }
        let causations = envelopes.map { $0.causationId?.uuidString ?? "" }
        let traces = envelopes.map { $0.traceparent ?? "" }
        let keys = envelopes.map { $0.orderingKey ?? "" }
        let payloads = envelopes.map(\.payload)
        let visible = deliverAt ?? Date(timeIntervalSince1970: 0)
        return """
            WITH v AS (
                SELECT * FROM unnest(\(ids)::uuid[], \(types)::text[], \(versions)::int[], \(occurred)::timestamptz[],
                    \(correlations)::text[], \(causations)::text[], \(traces)::text[], \(keys)::text[], \(payloads)::text[])
                    WITH ORDINALITY AS v(id, type, version, occurred_at, correlation_id, causation_id, traceparent,
                        ordering_key, payload, ord)),
            e AS (
                INSERT INTO bus.events (id, type, version, occurred_at, correlation_id, causation_id, traceparent,
                    ordering_key, payload)
                SELECT id, type, version, occurred_at, NULLIF(correlation_id, ''), NULLIF(causation_id, '')::uuid,
                    NULLIF(traceparent, ''), NULLIF(ordering_key, ''), payload::jsonb
                FROM v ORDER BY ord
                ON CONFLICT (id) DO NOTHING
                RETURNING id)
            INSERT INTO bus.deliveries (subscription, event_id, ordering_key, visible_at)
            SELECT s.subscription, v.id, NULLIF(v.ordering_key, ''), GREATEST(\(visible)::timestamptz, now())
            FROM e JOIN v ON v.id = e.id JOIN bus.subscriptions s ON s.topic = v.type
            ORDER BY v.ord, s.subscription
            """
    }

    // MARK: Subscriptions

    func register(_ subscription: Subscription) async throws {
        try await client.withOpenTransaction(logger: logger) { connection in
            try await connection.query(
                """
                DELETE FROM bus.subscriptions
                WHERE subscription = \(subscription.name) AND NOT (topic = ANY(\(subscription.topics)::text[]))
                """,
                logger: logger
            )
            try await connection.query(
                """
                INSERT INTO bus.subscriptions (topic, subscription)
                SELECT unnest(\(subscription.topics)::text[]), \(subscription.name)
                ON CONFLICT DO NOTHING
                """,
                logger: logger
            )
        }
    }

    // MARK: Consuming

    /// Leases up to `limit` visible deliveries of `subscription`: for each ordering key only its oldest delivery.
    /// Committed asynchronously (see the body).
    func claim(subscription: String, limit: Int, lease: Duration, owner: String) async throws -> [ClaimedDelivery] {
        let token = UUID()
        return try await client.withOpenConnection { connection in
        let rows = try await connection.query(
            """
            WITH c AS (
                SELECT d.id, d.lease_token AS previous_token
                FROM bus.deliveries d
                WHERE d.subscription = \(subscription) AND d.visible_at <= now()
                  AND (d.ordering_key IS NULL OR NOT EXISTS (
                      SELECT 1 FROM bus.deliveries p
                      WHERE p.subscription = d.subscription AND p.ordering_key = d.ordering_key AND p.id < d.id))
                ORDER BY d.visible_at, d.id
                LIMIT \(limit)
                FOR UPDATE SKIP LOCKED),
            u AS (
                UPDATE bus.deliveries d
                SET attempts = d.attempts + 1, lease_token = \(token), lease_owner = \(owner),
                    visible_at = now() + make_interval(secs => \(lease.seconds))
                FROM c
                WHERE d.id = c.id
                -- The lease and the attempt count must survive the consumer, not the server: an asynchronous commit
                -- keeps them through any consumer crash, and the handler's synchronous commit, later in the WAL,
                -- makes them durable before any effect of the event is. It saves a WAL flush per claim, in the
                -- same single statement (set_config(…, true) lasts until this statement's implicit commit).
                RETURNING d.id, d.attempts, c.previous_token IS NOT NULL AS took_over, d.subscription, d.event_id,
                    set_config('synchronous_commit', 'off', true) AS async_commit)
            SELECT u.id, u.attempts, u.took_over,
                EXISTS (SELECT 1 FROM bus.handled h WHERE h.subscription = u.subscription AND h.event_id = u.event_id),
                e.id, e.type, e.version, e.occurred_at, e.published_at, e.correlation_id, e.causation_id,
                e.traceparent, e.ordering_key, e.payload::text
            FROM u CROSS JOIN LATERAL (SELECT * FROM bus.events WHERE id = u.event_id) e
            """,
            logger: logger
        )
        var claimed: [ClaimedDelivery] = []
        for try await row in rows.decode(
            (Int64, Int, Bool, Bool, UUID, String, Int, Date, Date, String?, UUID?, String?, String?, String).self
        ) {
            let envelope = EventEnvelope(
                id: row.4, type: row.5, version: row.6, occurredAt: row.7, correlationId: row.9, causationId: row.10,
                traceparent: row.11, orderingKey: row.12, payload: row.13
            )
            claimed.append(
                ClaimedDelivery(
                    event: ReceivedEvent(
                        envelope: envelope, subscription: subscription, attempt: row.1, publishedAt: row.8,
                        deliveryId: row.0
                    ),
                    leaseToken: token,
                    tookOverLease: row.2,
                    alreadyHandled: row.3
                )
            )
        }
        return claimed.sorted { $0.deliveryId < $1.deliveryId }
        }
    }

    /// When the next delivery of `subscription` becomes visible (a delay, a backoff or a lease ending).
    func nextVisibleAt(subscription: String) async throws -> Date? {
        try await client.withOpenConnection { connection in
            let rows = try await connection.query(
                "SELECT min(visible_at) FROM bus.deliveries WHERE subscription = \(subscription)", logger: logger
            )
            for try await next in rows.decode(Date?.self) { return next }
            return nil
        }
    }

    /// Extends the leases this consumer still holds; rows being acknowledged right now are skipped, not waited for.
    func renew(token: UUID, deliveryIds: [Int64], lease: Duration) async throws {
        try await client.execute(
            """
            UPDATE bus.deliveries d SET visible_at = now() + make_interval(secs => \(lease.seconds))
            FROM (SELECT id FROM bus.deliveries WHERE id = ANY(\(deliveryIds)::bigint[]) AND lease_token = \(token)
                  FOR UPDATE SKIP LOCKED) r
            WHERE d.id = r.id
            """,
            logger: logger
        )
    }

    /// Acknowledges in the handler's transaction: deletes the deliveries if this lease still owns them and records
    /// them as handled. Returns how many were deleted and how many were new to `handled`.
    static func acknowledge(
        deliveryIds: [Int64], token: UUID, owner: String, on connection: PostgresConnection, logger: Logger
    ) async throws -> (deleted: Int, recorded: Int) {
        let rows = try await connection.query(
            """
            WITH d AS (
                DELETE FROM bus.deliveries WHERE id = ANY(\(deliveryIds)::bigint[]) AND lease_token = \(token)
                RETURNING subscription, event_id, attempts),
            h AS (
                INSERT INTO bus.handled (subscription, event_id, attempts, handled_by)
                SELECT subscription, event_id, attempts, \(owner) FROM d
                ON CONFLICT DO NOTHING
                RETURNING 1)
            SELECT (SELECT count(*) FROM d)::int, (SELECT count(*) FROM h)::int
            """,
            logger: logger
        )
        for try await (deleted, recorded) in rows.decode((Int, Int).self) { return (deleted, recorded) }
        return (0, 0)
    }

    /// Drops deliveries of events the subscription already handled.
    func dropDuplicates(deliveryIds: [Int64], token: UUID) async throws {
        try await client.execute(
            "DELETE FROM bus.deliveries WHERE id = ANY(\(deliveryIds)::bigint[]) AND lease_token = \(token)",
            logger: logger
        )
    }

    /// Releases a failed delivery for a later attempt and records the error.
    func retryLater(deliveryId: Int64, token: UUID, after delay: Duration, error: String) async throws {
        try await client.execute(
            """
            UPDATE bus.deliveries
            SET visible_at = now() + make_interval(secs => \(delay.seconds)), lease_token = NULL, lease_owner = NULL,
                errors = array_append(errors, \(error))
            WHERE id = \(deliveryId) AND lease_token = \(token)
            """,
            logger: logger
        )
    }

    /// Moves a delivery to dead letters with the reason and its last error. Returns false if the lease was lost.
    @discardableResult
    func deadLetter(deliveryId: Int64, token: UUID, reason: String, error: String) async throws -> Bool {
        try await client.withOpenConnection { connection in
        let rows = try await connection.query(
            """
            WITH d AS (
                DELETE FROM bus.deliveries WHERE id = \(deliveryId) AND lease_token = \(token)
                RETURNING subscription, event_id, attempts, errors)
            INSERT INTO bus.dead_letters (subscription, event_id, attempts, reason, errors)
            SELECT subscription, event_id, attempts, \(reason), array_append(errors, \(error)) FROM d
            ON CONFLICT (subscription, event_id) DO UPDATE
                SET attempts = EXCLUDED.attempts, reason = EXCLUDED.reason, errors = EXCLUDED.errors, dead_at = now()
            RETURNING 1
            """,
            logger: logger
        )
        for try await _ in rows { return true }
        return false
        }
    }
}
