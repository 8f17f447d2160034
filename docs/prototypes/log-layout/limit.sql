-- Plain SQL, as `postbox bench bus` measures its limit: insert a batch, claim and delete a batch.
INSERT INTO proto.queue (payload) SELECT :payload::jsonb FROM generate_series(1, :batch);
DELETE FROM proto.queue WHERE id = ANY(ARRAY(
    SELECT id FROM proto.queue ORDER BY id FOR UPDATE SKIP LOCKED LIMIT :batch))
RETURNING id, payload::text, created_at;
