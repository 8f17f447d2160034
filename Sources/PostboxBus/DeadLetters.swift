public import Foundation
import Logging
import PostgresNIO

/// One event a subscription gave up on, with the error of every attempt.
public struct DeadLetter: Sendable, Hashable {
    /// The subscription that gave up.
    public var subscription: String
    /// The event, as published.
    public var envelope: EventEnvelope
    /// How many attempts were made.
    public var attempts: Int
    /// Why it was given up (one line).
    public var reason: String
    /// The error of each attempt, oldest first.
    public var errors: [String]
    /// When it was given up.
    public var deadAt: Date
}

/// Lists, inspects, replays and purges dead letters. Get one from ``MessageBus/deadLetters``.
public struct DeadLetters: Sendable {
    let bus: MessageBus

    /// Dead letters, newest first, optionally of one subscription.
    public func list(subscription: String? = nil, limit: Int = 100) async throws -> [DeadLetter] {
        try await read(subscription: subscription, eventId: nil, limit: limit)
    }

    /// One dead letter, or `nil`.
    public func inspect(subscription: String, eventId: UUID) async throws -> DeadLetter? {
        try await read(subscription: subscription, eventId: eventId, limit: 1).first
    }

    /// Puts dead letters back into their subscription's queue with a fresh attempt count (their error history is
    /// kept); returns how many. Without `eventIds`, replays all of the subscription's (or all, without one).
    @discardableResult
    public func replay(subscription: String? = nil, eventIds: [UUID]? = nil) async throws -> Int {
        let rows = try await bus.client.rows(
            """
            WITH dl AS (
                DELETE FROM bus.dead_letters
                WHERE (\(subscription)::text IS NULL OR subscription = \(subscription))
                  AND (\(eventIds == nil) OR event_id = ANY(\(eventIds ?? [])::uuid[]))
                RETURNING subscription, event_id, errors),
            ins AS (
                INSERT INTO bus.deliveries (subscription, event_id, ordering_key, visible_at, errors)
                SELECT dl.subscription, dl.event_id, e.ordering_key, now(), dl.errors
                FROM dl JOIN bus.events e ON e.id = dl.event_id
                RETURNING 1)
            SELECT count(*)::int FROM ins
            """,
            as: Int.self,
            logger: bus.logger
        )
        var count = 0
        for replayed in rows { count = replayed }
        bus.notifier.committed(topics: Set(try await subscribedTopics(subscription)))
        return count
    }

    /// Deletes dead letters for good; returns how many. Without `eventIds`, all of the subscription's.
    @discardableResult
    public func purge(subscription: String? = nil, eventIds: [UUID]? = nil) async throws -> Int {
        let rows = try await bus.client.rows(
            """
            WITH d AS (
                DELETE FROM bus.dead_letters
                WHERE (\(subscription)::text IS NULL OR subscription = \(subscription))
                  AND (\(eventIds == nil) OR event_id = ANY(\(eventIds ?? [])::uuid[]))
                RETURNING 1)
            SELECT count(*)::int FROM d
            """,
            as: Int.self,
            logger: bus.logger
        )
        for count in rows { return count }
        return 0
    }

    private func subscribedTopics(_ subscription: String?) async throws -> [String] {
        let rows = try await bus.client.rows(
            """
            SELECT DISTINCT topic FROM bus.subscriptions
            WHERE \(subscription)::text IS NULL OR subscription = \(subscription)
            """,
            as: String.self,
            logger: bus.logger
        )
        var topics: [String] = []
        for topic in rows { topics.append(topic) }
        return topics
    }

    private func read(subscription: String?, eventId: UUID?, limit: Int) async throws -> [DeadLetter] {
        try await bus.client.withOpenConnection { connection in
            let rows = try await connection.query(
                """
                SELECT dl.subscription, dl.attempts, dl.reason, dl.errors, dl.dead_at,
                    e.id, e.type, e.version, e.occurred_at, e.correlation_id, e.causation_id, e.traceparent,
                    e.ordering_key, e.payload::text
                FROM bus.dead_letters dl JOIN bus.events e ON e.id = dl.event_id
                WHERE (\(subscription)::text IS NULL OR dl.subscription = \(subscription))
                  AND (\(eventId)::uuid IS NULL OR dl.event_id = \(eventId))
                ORDER BY dl.dead_at DESC
                LIMIT \(limit)
                """,
                logger: bus.logger
            )
            var letters: [DeadLetter] = []
            for try await row in rows.decode(
                (String, Int, String, [String], Date, UUID, String, Int, Date, String?, UUID?, String?, String?, String).self
            ) {
                letters.append(
                    DeadLetter(
                        subscription: row.0,
                        envelope: EventEnvelope(
                            id: row.5,
                            type: row.6,
                            version: row.7,
                            occurredAt: row.8,
                            correlationId: row.9,
                            causationId: row.10,
                            traceparent: row.11,
                            orderingKey: row.12,
                            payload: row.13
                        ),
                        attempts: row.1,
                        reason: row.2,
                        errors: row.3,
                        deadAt: row.4
                    )
                )
            }
            return letters
        }
    }
}
