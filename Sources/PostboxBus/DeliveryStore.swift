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
        _ envelopes: [EventEnvelope],
        deliverAt: Date?,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws {
        guard !envelopes.isEmpty else { return }
        // Drained as a row sequence: in PostgresNIO 1.33.2 the overload returning the command tag traps on a
        // prepared statement (its stream is never marked consumed).
        let statement = DeliveryStatements.Publish(envelopes: envelopes, deliverAt: deliverAt)
        for try await _ in try await connection.execute(statement, logger: logger) {}
    }

    /// Publishes in one autocommit statement: atomic on its own, and one round trip instead of three.
    func publish(_ envelopes: [EventEnvelope], deliverAt: Date?) async throws {
        guard !envelopes.isEmpty else { return }
        try await client.withOpenConnection { [logger] connection in
            try await Self.publish(envelopes, deliverAt: deliverAt, on: connection, logger: logger)
        }
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
    /// Committed asynchronously (see ``DeliveryStatements/Claim``).
    func claim(subscription: String, limit: Int, lease: Duration, owner: String) async throws -> [ClaimedDelivery] {
        let statement = DeliveryStatements.Claim(
            subscription: subscription,
            limit: limit,
            token: UUID(),
            owner: owner,
            leaseSeconds: lease.seconds
        )
        return try await client.withOpenConnection { [logger] connection in
            var claimed: [ClaimedDelivery] = []
            for try await delivery in try await connection.execute(statement, logger: logger) {
                claimed.append(delivery)
            }
            return claimed.sorted { $0.deliveryId < $1.deliveryId }
        }
    }

    /// When the next delivery of `subscription` becomes visible (a delay, a backoff or a lease ending).
    func nextVisibleAt(subscription: String) async throws -> Date? {
        try await client.withOpenConnection { [logger] connection in
            let statement = DeliveryStatements.NextVisibleAt(subscription: subscription)
            for try await next in try await connection.execute(statement, logger: logger) { return next }
            return nil
        }
    }

    /// Extends the leases this consumer still holds; rows being acknowledged right now are skipped, not waited for.
    func renew(token: UUID, deliveryIds: [Int64], lease: Duration) async throws {
        let statement = DeliveryStatements.Renew(deliveryIds: deliveryIds, token: token, leaseSeconds: lease.seconds)
        try await client.withOpenConnection { [logger] connection in
            for try await _ in try await connection.execute(statement, logger: logger) {}
        }
    }

    /// What an acknowledgement did: how many deliveries it deleted, how many were new to `handled`, and the
    /// deliveries it claimed next.
    struct Acknowledgement {
        var deleted = 0
        var recorded = 0
        var next: [ClaimedDelivery] = []
    }

    /// Acknowledges in the handler's transaction: deletes the deliveries if this lease still owns them and records
    /// them as handled; then, in the same statement, leases up to `parameters.limit` further deliveries
    /// (they commit with the transaction, or are not claimed at all).
    ///
    /// `publishing` are events the handler published (to be visible at once): they go into the same statement and
    /// are published only if every delivery was acknowledged and recorded as handled by it.
    static func acknowledge(
        _ parameters: DeliveryStatements.AcknowledgeParameters,
        publishing: [EventEnvelope] = [],
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Acknowledgement {
        typealias Statements = DeliveryStatements
        let one = parameters.deliveryIds.count == 1 && parameters.limit <= 1
        let rows =
            switch (one, publishing.isEmpty) {
            case (true, true):
                try await connection.execute(Statements.AcknowledgeOneAndClaimOne(parameters: parameters), logger: logger)
            case (false, true):
                try await connection.execute(Statements.AcknowledgeAndClaim(parameters: parameters), logger: logger)
            case (true, false):
                try await connection.execute(
                    Statements.AcknowledgeOnePublishAndClaimOne(parameters: parameters, published: publishing),
                    logger: logger
                )
            case (false, false):
                try await connection.execute(
                    Statements.AcknowledgePublishAndClaim(parameters: parameters, published: publishing),
                    logger: logger
                )
            }
        var acknowledgement = Acknowledgement()
        for try await row in rows {
            acknowledgement.deleted = row.deleted
            acknowledgement.recorded = row.recorded
            if let next = row.next { acknowledgement.next.append(next) }
        }
        acknowledgement.next.sort { $0.deliveryId < $1.deliveryId }
        return acknowledgement
    }

    /// ``acknowledge(_:publishing:on:logger:)`` with its parameters spelled out, and a fresh token for the claim.
    static func acknowledge(
        deliveryIds: [Int64],
        token: UUID,
        owner: String,
        claimNext: Int,
        subscription: String,
        lease: Duration,
        publishing: [EventEnvelope] = [],
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Acknowledgement {
        let parameters = DeliveryStatements.AcknowledgeParameters(
            deliveryIds: deliveryIds,
            token: token,
            owner: owner,
            subscription: subscription,
            limit: claimNext,
            nextToken: UUID(),
            leaseSeconds: lease.seconds
        )
        return try await acknowledge(parameters, publishing: publishing, on: connection, logger: logger)
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
