-- The log with a cursor between two snapshots (proto.claim_snapshot_range); otherwise as log-horizon.sql.
\set token random(1, 4000000000000000)
INSERT INTO proto.events (id, type, version, occurred_at, correlation_id, payload)
SELECT gen_random_uuid(), 'proto.t', 1, now(), 'corr', :payload::jsonb FROM generate_series(1, :batch);
SELECT id, type, version, occurred_at, published_at, correlation_id, payload::text
FROM proto.claim_snapshot_range('proto.s', :batch, :token);
BEGIN;
WITH d AS (DELETE FROM proto.ranges WHERE token = :token RETURNING *)
INSERT INTO proto.handled_ranges
SELECT subscription, from_txid, from_pos, to_txid, to_pos, events, 'proto', now() FROM d;
COMMIT;
