-- The log with a cursor below the oldest running transaction: publish appends events; a claim moves the cursor
-- over up to a batch of them and leases the range with one row; the handler's transaction deletes the lease and
-- records the range as handled.
\set token random(1, 4000000000000000)
INSERT INTO proto.events (id, type, version, occurred_at, correlation_id, payload)
SELECT gen_random_uuid(), 'proto.t', 1, now(), 'corr', :payload::jsonb FROM generate_series(1, :batch);
WITH cur AS (
    SELECT subscription, topic, txid, pos FROM proto.horizon_cursors WHERE subscription = 'proto.s' FOR UPDATE),
e AS (
    SELECT x.* FROM cur CROSS JOIN LATERAL (
        SELECT * FROM proto.events ev
        WHERE ev.type = cur.topic AND (ev.txid, ev.pos) > (cur.txid, cur.pos)
            AND ev.txid < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY ev.txid, ev.pos LIMIT :batch) x),
upto AS (SELECT txid, pos, (SELECT count(*) FROM e) AS taken FROM e ORDER BY txid DESC, pos DESC LIMIT 1),
moved AS (
    UPDATE proto.horizon_cursors c SET txid = upto.txid, pos = upto.pos FROM upto WHERE c.subscription = 'proto.s'),
leased AS (
    INSERT INTO proto.ranges
    SELECT :token, 'proto.s', NULL, NULL, cur.txid, cur.pos, upto.txid, upto.pos, now() + interval '5 s', 1, upto.taken
    FROM cur, upto),
async AS (SELECT set_config('synchronous_commit', 'off', true))
SELECT e.id, e.type, e.version, e.occurred_at, e.published_at, e.correlation_id, e.payload::text FROM e, async;
BEGIN;
WITH d AS (DELETE FROM proto.ranges WHERE token = :token RETURNING *)
INSERT INTO proto.handled_ranges
SELECT subscription, from_txid, from_pos, to_txid, to_pos, events, 'proto', now() FROM d;
COMMIT;
