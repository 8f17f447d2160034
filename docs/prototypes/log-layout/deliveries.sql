-- The bus's layout today, through its own functions: publish (events and one delivery per subscription), claim
-- (bus.claim_v1 leases by rewriting each delivery), acknowledge in the handler's transaction (bus.acknowledge_v1
-- deletes the deliveries and records each event in bus.handled).
\set token random(1, 4000000000000000)
WITH pv AS (
    SELECT gen_random_uuid() AS id, 'proto.t' AS type, 1 AS version, now() AS occurred_at, 'corr' AS correlation_id,
        :payload::jsonb AS payload, g AS ord
    FROM generate_series(1, :batch) g),
pe AS (
    INSERT INTO bus.events (id, type, version, occurred_at, correlation_id, payload)
    SELECT id, type, version, occurred_at, correlation_id, payload FROM pv ORDER BY ord
    ON CONFLICT (id) DO NOTHING RETURNING id)
INSERT INTO bus.deliveries (subscription, event_id, ordering_key, visible_at)
SELECT s.subscription, pv.id, NULL, now()
FROM pe JOIN pv ON pv.id = pe.id JOIN bus.subscriptions s ON s.topic = pv.type
ORDER BY pv.ord, s.subscription;
SELECT coalesce(array_agg(delivery_id), '{}')::text AS ids, string_agg(payload, ',') AS payloads
FROM bus.claim_v1('proto.s', :batch, lpad(to_hex(:token::bigint), 32, '0')::uuid, 'proto', 5) \gset
BEGIN;
SELECT deleted, recorded FROM bus.acknowledge_v1(:ids::bigint[], lpad(to_hex(:token::bigint), 32, '0')::uuid, 'proto',
    'proto.s', 0, lpad(to_hex(:token::bigint + 1), 32, '0')::uuid, 5);
COMMIT;
