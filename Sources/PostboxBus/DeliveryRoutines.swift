/// The functions behind the bus's per-delivery statements (see ``DeliveryRoutine`` for why they are functions),
/// built from the SQL in ``DeliveryStatements``, installed by migration 3 and tuned by migration 4.
enum DeliveryRoutines {
    /// The columns of a claimed delivery with its event, as ``DeliveryStatements/ClaimedRow``.
    private static let claimedResult = """
        delivery_id bigint, attempts int, took_over boolean, handled boolean, event_id uuid, type text, \
        version int, occurred_at timestamptz, published_at timestamptz, correlation_id text, causation_id uuid, \
        traceparent text, ordering_key text, payload text
        """

    /// An acknowledgement's counts, then the delivery it claimed next (all null when none).
    private static let acknowledgedResult = "TABLE (deleted int, recorded int, \(claimedResult))"

    /// The seven parameters every acknowledgement takes, its first being the delivery ids (`ids`).
    private static func acknowledgeParameters(ids: String) -> [String] {
        [ids, "uuid", "text", "text", "bigint", "uuid", "float8"]
    }

    /// The nine event columns a publishing acknowledgement binds, then how many deliveries it must acknowledge.
    private static let publishingParameters = [
        "uuid[]", "text[]", "bigint[]", "timestamptz[]", "text[]", "text[]", "text[]", "text[]", "text[]", "bigint",
    ]

    static let claim = DeliveryRoutine(
        name: "bus.claim_v1",
        parameterTypes: ["text", "bigint", "uuid", "text", "float8"],
        returns: "TABLE (\(claimedResult))",
        query: """
            WITH c AS (
                \(DeliveryStatements.candidates(subscription: "$1", limit: "$2"))),
            \(DeliveryStatements.lease(token: "$3", owner: "$4", seconds: "$5",
                extraColumns: ", set_config('synchronous_commit', 'off', true) AS async_commit"))
            SELECT \(DeliveryStatements.claimedColumns)
            FROM u CROSS JOIN LATERAL (SELECT * FROM bus.events WHERE id = u.event_id) e
            """
    )

    static let acknowledge = DeliveryRoutine(
        name: "bus.acknowledge_v1",
        parameterTypes: acknowledgeParameters(ids: "bigint[]"),
        returns: acknowledgedResult,
        query: DeliveryStatements.acknowledgeSQL(ids: "ANY($1)", limit: "$5")
    )

    static let acknowledgeOne = DeliveryRoutine(
        name: "bus.acknowledge_one_v1",
        parameterTypes: acknowledgeParameters(ids: "bigint"),
        returns: acknowledgedResult,
        query: DeliveryStatements.acknowledgeSQL(ids: "$1", limit: "1")
    )

    static let acknowledgePublish = DeliveryRoutine(
        name: "bus.acknowledge_publish_v1",
        parameterTypes: acknowledgeParameters(ids: "bigint[]") + publishingParameters,
        returns: acknowledgedResult,
        query: DeliveryStatements.acknowledgeSQL(ids: "ANY($1)", limit: "$5", publishing: true)
    )

    static let acknowledgeOnePublish = DeliveryRoutine(
        name: "bus.acknowledge_one_publish_v1",
        parameterTypes: acknowledgeParameters(ids: "bigint") + publishingParameters,
        returns: acknowledgedResult,
        query: DeliveryStatements.acknowledgeSQL(ids: "$1", limit: "1", publishing: true)
    )

    /// The acknowledgement a handler's own statement calls (see ``StatementAcknowledgement``): acknowledges and
    /// records the deliveries, claims up to `$5` more, and returns those as JSON (`[]` when none). It raises instead
    /// of returning counts, so that the calling statement fails and rolls back with it: `PB001` when the lease was
    /// lost, `PB002` when the subscription had handled the event already. One delivery claiming at most one is the
    /// flow's case and runs a statement planned once; batches run one planned at each call (`EXECUTE`), as their
    /// own acknowledgement's custom plans are. Its eighth parameter says whether the transaction commits
    /// synchronously; false sets `synchronous_commit` off for that transaction only
    /// (``BusTransaction/commitAsynchronously()``).
    static let acknowledgeInStatement = acknowledgeInStatement(name: "bus.acknowledge_in_statement_v2", choosesCommit: true)

    /// The first version, without the choice of commit; installed by migration 6 and kept for processes of earlier
    /// builds.
    static let acknowledgeInStatementV1 = acknowledgeInStatement(name: "bus.acknowledge_in_statement_v1", choosesCommit: false)

    private static func acknowledgeInStatement(name: String, choosesCommit: Bool) -> DeliveryRoutine {
        DeliveryRoutine(
            name: name,
            parameterTypes: acknowledgeParameters(ids: "bigint[]") + (choosesCommit ? ["boolean"] : []),
            returns: "text",
            body: """
                DECLARE
                    acknowledged_count int;
                    recorded_count int;
                    claimed_json text;
                BEGIN
                \(choosesCommit ? "    IF NOT $8 THEN PERFORM set_config('synchronous_commit', 'off', true); END IF;\n" : "")\
                    IF cardinality($1) = 1 AND $5 <= 1 THEN
                        \(DeliveryStatements.acknowledgeSQL(
                            ids: "$1[1]", limit: "1", result: DeliveryStatements.acknowledgedCountsAndClaimedJSON))
                        INTO acknowledged_count, recorded_count, claimed_json;
                    ELSE
                        EXECUTE $batch$
                        \(DeliveryStatements.acknowledgeSQL(
                            ids: "ANY($1)", limit: "$5", result: DeliveryStatements.acknowledgedCountsAndClaimedJSON))
                        $batch$ INTO acknowledged_count, recorded_count, claimed_json USING $1, $2, $3, $4, $5, $6, $7;
                    END IF;
                    IF acknowledged_count < cardinality($1) THEN
                        RAISE EXCEPTION 'the lease on the event was lost before it was acknowledged'
                            USING ERRCODE = '\(StatementAcknowledgement.leaseLostState)',
                                HINT = 'another consumer holds it now and handles it; this statement rolled back';
                    END IF;
                    IF recorded_count < acknowledged_count THEN
                        RAISE EXCEPTION 'the subscription has already handled this event'
                            USING ERRCODE = '\(StatementAcknowledgement.alreadyHandledState)',
                                HINT = 'a duplicate delivery; this statement rolled back';
                    END IF;
                    RETURN coalesce(claimed_json, '[]');
                END;
                """
        )
    }

    static let nextVisibleAt = DeliveryRoutine(
        name: "bus.next_visible_at_v1",
        parameterTypes: ["text"],
        returns: "timestamptz",
        body: "RETURN (SELECT min(visible_at) FROM bus.deliveries WHERE subscription = $1);"
    )

    static let renew = DeliveryRoutine(
        name: "bus.renew_v1",
        parameterTypes: ["bigint[]", "uuid", "float8"],
        returns: "void",
        body: """
            UPDATE bus.deliveries d SET visible_at = clock_timestamp() + make_interval(secs => $3)
            FROM (SELECT id FROM bus.deliveries WHERE id = ANY($1) AND lease_token = $2
                  FOR UPDATE SKIP LOCKED) r
            WHERE d.id = r.id;
            """
    )

    /// Every routine, in the order migration 3 installs them.
    static let all = [claim, acknowledge, acknowledgeOne, acknowledgePublish, acknowledgeOnePublish, nextVisibleAt, renew]

    /// The routines whose statements have no parameter PostgreSQL could plan better knowing (constant limits), which
    /// migration 4 sets to the generic plan. Left to choose, PostgreSQL kept planning the one-event acknowledgements
    /// at every call in the order flow (about 0.2 ms each, under load): with the subscription as a parameter, the
    /// generic plan's estimate looked costlier than a custom plan's, though both walk the same indexes. With
    /// sequential and bitmap scans off, the generic plan is as good. The batch forms (`LIMIT $n`) stay custom: their
    /// generic plan must assume a tenth of the table is claimed.
    static let plannedOnce = [acknowledgeOne, acknowledgeOnePublish, nextVisibleAt]
}
