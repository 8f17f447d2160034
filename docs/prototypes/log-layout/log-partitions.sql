-- The log in 16 partitions by ordering key (proto.claim_partition_range): each event carries one of 1,000 keys.
\set token random(1, 4000000000000000)
INSERT INTO proto.keyed_events (id, type, version, occurred_at, correlation_id, ordering_key, part, payload)
SELECT gen_random_uuid(), 'proto.t', 1, now(), 'corr', k, abs(hashtext(k)) % 16, :payload::jsonb
FROM (SELECT 'order-' || (random() * 1000)::int AS k FROM generate_series(1, :batch)) keys;
SELECT id, type, version, occurred_at, published_at, correlation_id, payload::text
FROM proto.claim_partition_range('proto.s', :batch, :token);
BEGIN;
WITH d AS (DELETE FROM proto.ranges WHERE token = :token RETURNING *),
released AS (
    UPDATE proto.partition_cursors SET token = NULL, leased_until = NULL
    WHERE subscription = 'proto.s' AND token = :token)
INSERT INTO proto.handled_ranges
SELECT subscription, from_txid, from_pos, to_txid, to_pos, events, 'proto', now() FROM d;
COMMIT;
