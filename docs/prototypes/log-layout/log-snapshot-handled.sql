-- log-snapshot.sql that also records each event of the range in bus.handled, as the bus records handling today.
\set token random(1, 4000000000000000)
INSERT INTO proto.events (id, type, version, occurred_at, correlation_id, payload)
SELECT gen_random_uuid(), 'proto.t', 1, now(), 'corr', :payload::jsonb FROM generate_series(1, :batch);
SELECT string_agg(id::text, ',') AS ids
FROM proto.claim_snapshot_range('proto.s', :batch, :token) \gset
BEGIN;
WITH d AS (DELETE FROM proto.ranges WHERE token = :token RETURNING *)
INSERT INTO proto.handled_ranges
SELECT subscription, from_txid, from_pos, to_txid, to_pos, events, 'proto', now() FROM d;
INSERT INTO bus.handled (subscription, event_id, attempts, handled_by)
SELECT 'proto.s', unnest(string_to_array(:ids, ','))::uuid, 1, 'proto' ON CONFLICT DO NOTHING;
COMMIT;
