import Foundation
import PostgresNIO

/// The bus's hot-path statements, prepared once per connection: publish, claim, acknowledge (and claim the next),
/// renew. Under load the server spends as long planning these as running them when they are sent unnamed.
///
/// All but publishing call a ``DeliveryRoutine``: the SQL below is the body of a function that migration 3
/// installed, planned with index scans only. Changing a body means a new routine name and a new migration.
enum DeliveryStatements {
    /// The row a claim returns for each delivery it leased.
    typealias ClaimedRow = (Int64, Int, Bool, Bool, UUID, String, Int, Date, Date, String?, UUID?, String?, String?, String)

    /// Selects visible deliveries of a subscription, for each ordering key only its oldest, skipping locked rows.
    /// `subscription` and `limit` are SQL expressions (placeholders); `filter` is a further condition on the
    /// candidate `d`, `olderFilter` one on the older deliveries `p` of its key that would hold it back.
    ///
    /// "Older" compares `(ordering_key, id)` as a row, which only `deliveries_ordering` can serve. Written as
    /// `p.id < d.id`, the primary key served it too, and PostgreSQL chose that after an autovacuum had counted a
    /// near-empty queue: the generic plans then walked every older delivery, dead ones included, for each candidate.
    /// Once a backlog formed the statements grew a hundredfold costlier, and the order flow never caught up.
    static func candidates(
        subscription: String,
        limit: String,
        filter: String? = nil,
        olderFilter: String? = nil
    ) -> String {
        """
        SELECT d.id
            FROM bus.deliveries d
            WHERE d.subscription = \(subscription) AND d.visible_at <= now()\(filter.map { " AND \($0)" } ?? "")
              AND (d.ordering_key IS NULL OR NOT EXISTS (
                  SELECT 1 FROM bus.deliveries p
                  WHERE p.subscription = d.subscription AND p.ordering_key = d.ordering_key
                    AND (p.ordering_key, p.id) < (d.ordering_key, d.id)\(
                      olderFilter.map { " AND \($0)" } ?? "")))
            ORDER BY d.visible_at, d.id
            LIMIT \(limit)
            FOR UPDATE SKIP LOCKED
        """
    }

    /// Leases the candidates `c` as the common table expressions `l`, `n` and `u`: counts the attempt, sets a fresh
    /// token and owner, hides them for the lease. `u` holds each leased delivery's id, attempts, whether it took
    /// over an expired lease, subscription and event id, followed by `extraColumns`.
    ///
    /// The lease deletes each candidate and inserts it again under the same id rather than updating it. A claim
    /// whose snapshot is older than another consumer's claim of the same delivery still sees the old row. Had that
    /// row been updated, PostgreSQL's `SKIP LOCKED` could follow the update to the new row and wait, ignoring
    /// `SKIP LOCKED`, for the transaction acknowledging it. Two acknowledgements that each claim next can wait
    /// for each other that way: a deadlock, broken only after `deadlock_timeout`. A deleted row has no newer
    /// version to follow, so the claim skips it.
    ///
    /// `u` reads the deleted rows, not the inserted ones: the insert copies every one of them or fails the whole
    /// statement, and joining its rows back to the candidates compared every pair of a batch.
    static func lease(token: String, owner: String, seconds: String, extraColumns: String = "") -> String {
        """
        l AS (
                DELETE FROM bus.deliveries d USING c WHERE d.id = c.id
                RETURNING d.id, d.subscription, d.event_id, d.ordering_key, d.attempts, d.errors, d.lease_token),
            n AS (
                INSERT INTO bus.deliveries
                    (id, subscription, event_id, ordering_key, visible_at, attempts, lease_token, lease_owner, errors)
                OVERRIDING SYSTEM VALUE
                SELECT id, subscription, event_id, ordering_key,
                    clock_timestamp() + make_interval(secs => \(seconds)::float8), attempts + 1, \(token)::uuid,
                    \(owner)::text, errors
                FROM l),
            u AS (
                SELECT id, attempts + 1 AS attempts, lease_token IS NOT NULL AS took_over, subscription,
                    event_id\(extraColumns)
                FROM l)
        """
    }

    /// The claimed rows of `u` with their events, as ``ClaimedRow``.
    static let claimedColumns = """
        u.id, u.attempts, u.took_over,
            EXISTS (SELECT 1 FROM bus.handled h WHERE h.subscription = u.subscription AND h.event_id = u.event_id),
            e.id, e.type, e.version, e.occurred_at, e.published_at, e.correlation_id, e.causation_id,
            e.traceparent, e.ordering_key, e.payload::text
        """

    fileprivate static func claimed(_ row: ClaimedRow, subscription: String, token: UUID) -> ClaimedDelivery {
        let envelope = EventEnvelope(
            id: row.4,
            type: row.5,
            version: row.6,
            occurredAt: row.7,
            correlationId: row.9,
            causationId: row.10,
            traceparent: row.11,
            orderingKey: row.12,
            payload: row.13
        )
        return ClaimedDelivery(
            event: ReceivedEvent(
                envelope: envelope,
                subscription: subscription,
                attempt: row.1,
                publishedAt: row.8,
                deliveryId: row.0
            ),
            leaseToken: token,
            tookOverLease: row.2,
            alreadyHandled: row.3
        )
    }
}

extension DeliveryStatements {
    /// Inserts events (skipping ids that exist) and one delivery per subscription of each event's topic.
    struct Publish: PostgresPreparedStatement {
        static let name = "postbox_bus_publish_v2"
        static let sql = """
            WITH \(publishing(firstParameter: 1, visibleAt: "GREATEST($10::timestamptz, now())"))
            SELECT 1 WHERE false
            """
        typealias Row = ()

        var envelopes: [EventEnvelope]
        var deliverAt: Date?

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 10)
            bindings.appendColumns(of: envelopes)
            bindings.append(deliverAt ?? Date(timeIntervalSince1970: 0))
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws {}
    }

    /// The common table expressions `pv`, `pe`, `pd` that insert the events bound as nine arrays from
    /// `$firstParameter` (see ``PostgresBindings/appendColumns(of:)``) and one delivery per subscription of each
    /// event's topic, visible at `visibleAt`; an event id that exists is skipped. With `gate`, nothing is inserted
    /// unless that condition holds.
    static func publishing(firstParameter p: Int, visibleAt: String, gate: String? = nil) -> String {
        """
        pv AS (
                SELECT * FROM unnest($\(p)::uuid[], $\(p + 1)::text[], $\(p + 2)::int[], $\(p + 3)::timestamptz[],
                    $\(p + 4)::text[], $\(p + 5)::text[], $\(p + 6)::text[], $\(p + 7)::text[], $\(p + 8)::text[])
                    WITH ORDINALITY AS v(id, type, version, occurred_at, correlation_id, causation_id, traceparent,
                        ordering_key, payload, ord)\(gate.map { "\n            WHERE \($0)" } ?? "")),
            pe AS (
                INSERT INTO bus.events (id, type, version, occurred_at, correlation_id, causation_id, traceparent,
                    ordering_key, payload)
                SELECT id, type, version, occurred_at, NULLIF(correlation_id, ''), NULLIF(causation_id, '')::uuid,
                    NULLIF(traceparent, ''), NULLIF(ordering_key, ''), payload::jsonb
                FROM pv ORDER BY ord
                ON CONFLICT (id) DO NOTHING
                RETURNING id),
            pd AS (
                INSERT INTO bus.deliveries (subscription, event_id, ordering_key, visible_at)
                SELECT s.subscription, pv.id, NULLIF(pv.ordering_key, ''), \(visibleAt)
                FROM pe JOIN pv ON pv.id = pe.id JOIN bus.subscriptions s ON s.topic = pv.type
                ORDER BY pv.ord, s.subscription
                RETURNING 1)
        """
    }

    /// Leases up to `limit` visible deliveries and returns them with their events; commits asynchronously.
    ///
    /// The lease and the attempt count must survive the consumer, not the server: an asynchronous commit keeps them
    /// through any consumer crash, and the handler's synchronous commit, later in the WAL, makes them durable before
    /// any effect of the event is. It saves a WAL flush per claim in the same single statement
    /// (`set_config(…, true)` lasts until this statement's implicit commit).
    struct Claim: PostgresPreparedStatement {
        static let name = "postbox_bus_claim_v2"
        static let sql = DeliveryRoutines.claim.call
        typealias Row = ClaimedDelivery

        var subscription: String
        var limit: Int
        var token: UUID
        var owner: String
        var leaseSeconds: Double

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 5)
            bindings.append(subscription)
            bindings.append(limit)
            bindings.append(token)
            bindings.append(owner)
            bindings.append(leaseSeconds)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> ClaimedDelivery {
            claimed(try row.decode(ClaimedRow.self), subscription: subscription, token: token)
        }
    }

    /// In the handler's transaction: deletes the deliveries if this lease still owns them, records them as handled,
    /// and leases up to `limit` further deliveries (committed with the transaction). Every row carries how many
    /// were deleted and how many were new to `handled`; the claimed columns are null when nothing was claimed.
    ///
    /// `LIMIT $5` makes PostgreSQL plan every execution (a generic plan must assume a tenth of the table), which
    /// is fine for a batch; one event per transaction uses ``AcknowledgeOneAndClaimOne``, planned once.
    struct AcknowledgeAndClaim: PostgresPreparedStatement {
        static let name = "postbox_bus_acknowledge_v2"
        static let sql = DeliveryRoutines.acknowledge.call
        typealias Row = Acknowledged

        var parameters: AcknowledgeParameters

        func makeBindings() throws -> PostgresBindings { try parameters.bindings(ids: parameters.deliveryIds) }
        func decodeRow(_ row: PostgresRow) throws -> Row { try parameters.decode(row) }
    }

    /// ``AcknowledgeAndClaim`` for one delivery, claiming at most one: the same work in a statement whose generic
    /// plan is as good as a custom one, so its function keeps that plan (migration 4) and is planned once per
    /// connection.
    struct AcknowledgeOneAndClaimOne: PostgresPreparedStatement {
        static let name = "postbox_bus_acknowledge_one_v2"
        static let sql = DeliveryRoutines.acknowledgeOne.call
        typealias Row = Acknowledged

        var parameters: AcknowledgeParameters

        func makeBindings() throws -> PostgresBindings { try parameters.bindings(ids: parameters.deliveryIds[0]) }
        func decodeRow(_ row: PostgresRow) throws -> Row { try parameters.decode(row) }
    }

    /// ``AcknowledgeAndClaim`` that also publishes the handler's events, if and only if every delivery was
    /// acknowledged and recorded as handled now: a handler's publishes cost no statement of their own, and one that
    /// only publishes commits with its acknowledgement in a single statement.
    struct AcknowledgePublishAndClaim: PostgresPreparedStatement {
        static let name = "postbox_bus_acknowledge_publish_v2"
        static let sql = DeliveryRoutines.acknowledgePublish.call
        typealias Row = Acknowledged

        var parameters: AcknowledgeParameters
        var published: [EventEnvelope]

        func makeBindings() throws -> PostgresBindings {
            try parameters.bindings(ids: parameters.deliveryIds, publishing: published)
        }
        func decodeRow(_ row: PostgresRow) throws -> Row { try parameters.decode(row) }
    }

    /// ``AcknowledgeOneAndClaimOne`` that also publishes, as ``AcknowledgePublishAndClaim`` does.
    struct AcknowledgeOnePublishAndClaimOne: PostgresPreparedStatement {
        static let name = "postbox_bus_acknowledge_one_publish_v2"
        static let sql = DeliveryRoutines.acknowledgeOnePublish.call
        typealias Row = Acknowledged

        var parameters: AcknowledgeParameters
        var published: [EventEnvelope]

        func makeBindings() throws -> PostgresBindings {
            try parameters.bindings(ids: parameters.deliveryIds[0], publishing: published)
        }
        func decodeRow(_ row: PostgresRow) throws -> Row { try parameters.decode(row) }
    }

    /// How many deliveries an acknowledgement deleted, how many were new to `handled`, and one it claimed next.
    typealias Acknowledged = (deleted: Int, recorded: Int, next: ClaimedDelivery?)

    /// The values both acknowledgement statements bind, and how their rows decode.
    struct AcknowledgeParameters: Sendable {
        var deliveryIds: [Int64]
        var token: UUID
        var owner: String
        var subscription: String
        var limit: Int
        var nextToken: UUID
        var leaseSeconds: Double

        /// `$1`–`$7`; with `publishing`, also the events as `$8`–`$16` and how many deliveries must be
        /// acknowledged for them to be published as `$17`.
        func bindings(
            ids: some PostgresEncodable & Sendable,
            publishing: [EventEnvelope]? = nil
        ) throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: publishing == nil ? 7 : 17)
            try bindings.append(ids)
            bindings.append(token)
            bindings.append(owner)
            bindings.append(subscription)
            bindings.append(limit)
            bindings.append(nextToken)
            bindings.append(leaseSeconds)
            if let publishing {
                bindings.appendColumns(of: publishing)
                bindings.append(deliveryIds.count)
            }
            return bindings
        }

        func decode(_ row: PostgresRow) throws -> Acknowledged {
            let r = try row.decode(
                (
                    Int, Int, Int64?, Int?, Bool?, Bool?, UUID?, String?, Int?, Date?, Date?, String?, UUID?, String?,
                    String?, String?
                ).self
            )
            guard let id = r.2, let attempts = r.3, let tookOver = r.4, let handled = r.5, let eventId = r.6,
                let type = r.7, let version = r.8, let occurredAt = r.9, let publishedAt = r.10, let payload = r.15
            else { return (r.0, r.1, nil) }
            let next = claimed(
                (
                    id, attempts, tookOver, handled, eventId, type, version, occurredAt, publishedAt, r.11, r.12, r.13,
                    r.14, payload
                ),
                subscription: subscription,
                token: nextToken
            )
            return (r.0, r.1, next)
        }
    }

    /// The acknowledgement statement; `ids` matches the deliveries to acknowledge (`$1`), `limit` caps the claim
    /// (which `$5 > 0` gates, so a limit of 0 claims nothing either way). The deliveries being acknowledged do not
    /// hold back the next event of their ordering key: it may be claimed in the same statement, which is still in
    /// order (it commits only with the acknowledgement; if the lease was lost, the transaction rolls back).
    ///
    /// With `publishing`, it also inserts the events bound as `$8`–`$16`, gated on `$17` deliveries having been
    /// deleted and recorded: a lease lost or a duplicate publishes nothing, even when the statement commits alone.
    ///
    /// `result` is the final `SELECT`, over the counts `a` (deleted) and `h` (recorded) and the claimed `u`; by
    /// default every row carries both counts and one claimed delivery as ``ClaimedRow``'s columns.
    static func acknowledgeSQL(ids: String, limit: String, publishing: Bool = false, result: String? = nil) -> String {
        let publishes =
            publishing
            ? DeliveryStatements.publishing(
                firstParameter: 8,
                visibleAt: "now()",
                gate: "(SELECT count(*) FROM a) = $17 AND (SELECT count(*) FROM h) = $17"
            ) + ",\n    "
            : ""
        return """
            WITH a AS (
                DELETE FROM bus.deliveries WHERE id = \(ids) AND lease_token = $2
                RETURNING subscription, event_id, attempts),
            h AS (
                INSERT INTO bus.handled (subscription, event_id, attempts, handled_by)
                SELECT subscription, event_id, attempts, $3 FROM a
                ON CONFLICT DO NOTHING
                RETURNING 1),
            \(publishes)c AS (
                \(candidates(
                subscription: "$4", limit: limit, filter: "NOT (d.id = \(ids)) AND $5::bigint > 0",
                olderFilter: "NOT (p.id = \(ids))"))),
            \(lease(token: "$6", owner: "$3", seconds: "$7"))
            \(result ?? acknowledgedRows)
            """
    }

    /// The default final `SELECT` of ``acknowledgeSQL(ids:limit:publishing:result:)``.
    private static let acknowledgedRows = """
        SELECT (SELECT count(*) FROM a)::int, (SELECT count(*) FROM h)::int, x.*
        FROM (SELECT 1) one LEFT JOIN LATERAL (
            SELECT \(claimedColumns)
            FROM u CROSS JOIN LATERAL (SELECT * FROM bus.events WHERE id = u.event_id) e) x ON true
        """

    /// A final `SELECT` for ``acknowledgeSQL(ids:limit:publishing:result:)`` that returns one row: the two counts
    /// and the claimed deliveries as a JSON array (null when none), in the form ``StatementAcknowledgement`` reads.
    static let acknowledgedCountsAndClaimedJSON = """
        SELECT (SELECT count(*) FROM a)::int, (SELECT count(*) FROM h)::int, (
                SELECT json_agg(json_build_object(
                    'id', u.id, 'attempts', u.attempts, 'tookOver', u.took_over,
                    'handled', EXISTS (SELECT 1 FROM bus.handled h WHERE h.subscription = u.subscription
                        AND h.event_id = u.event_id),
                    'eventId', e.id, 'type', e.type, 'version', e.version,
                    'occurredAt', extract(epoch FROM e.occurred_at), 'publishedAt', extract(epoch FROM e.published_at),
                    'correlationId', e.correlation_id, 'causationId', e.causation_id, 'traceparent', e.traceparent,
                    'orderingKey', e.ordering_key, 'payload', e.payload::text) ORDER BY u.id)
                FROM u CROSS JOIN LATERAL (SELECT * FROM bus.events WHERE id = u.event_id) e)::text
        """

    /// When the next delivery of a subscription becomes visible: a delay, a backoff or a lease ending. A consumer
    /// that ran dry asks this before it sleeps, about once per order in each service of the order flow; sent unnamed,
    /// planning it cost the server two to three times as long as running it.
    struct NextVisibleAt: PostgresPreparedStatement {
        static let name = "postbox_bus_next_visible_at_v2"
        static let sql = DeliveryRoutines.nextVisibleAt.call
        typealias Row = Date?

        var subscription: String

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 1)
            bindings.append(subscription)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Date? {
            try row.decode(Date?.self)
        }
    }

    /// Extends the leases a consumer still holds; rows being acknowledged right now are skipped, not waited for.
    struct Renew: PostgresPreparedStatement {
        static let name = "postbox_bus_renew_v2"
        static let sql = DeliveryRoutines.renew.call
        typealias Row = ()

        var deliveryIds: [Int64]
        var token: UUID
        var leaseSeconds: Double

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 3)
            bindings.append(deliveryIds)
            bindings.append(token)
            bindings.append(leaseSeconds)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws {}
    }
}

extension PostgresBindings {
    /// The envelopes as the nine arrays the publishing statements unnest: id, type, version, occurred at,
    /// correlation id, causation id, traceparent, ordering key and payload (absent values as empty strings).
    fileprivate mutating func appendColumns(of envelopes: [EventEnvelope]) {
        append(envelopes.map(\.id))
        append(envelopes.map(\.type))
        append(envelopes.map(\.version))
        append(envelopes.map(\.occurredAt))
        append(envelopes.map { $0.correlationId ?? "" })
        append(envelopes.map { $0.causationId?.uuidString ?? "" })
        append(envelopes.map { $0.traceparent ?? "" })
        append(envelopes.map { $0.orderingKey ?? "" })
        append(envelopes.map(\.payload))
    }
}
