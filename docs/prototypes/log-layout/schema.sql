-- Tables of the pgbench prototypes in this folder (see README.md). Apply after `postbox db setup`, which creates the
-- bus's own schema that deliveries.sql runs against. Everything here lives in the schema `proto`.
DROP SCHEMA IF EXISTS proto CASCADE;
CREATE SCHEMA proto;

-- Plain SQL: the limit `postbox bench bus` measures the bus against.
CREATE TABLE proto.queue (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());

-- The log: bus.events with the publishing transaction's id and a position, indexed in the order consumers read.
CREATE TABLE proto.events (
    pos bigint GENERATED ALWAYS AS IDENTITY,
    txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    id uuid PRIMARY KEY,
    type text NOT NULL,
    version int NOT NULL,
    occurred_at timestamptz NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    correlation_id text,
    causation_id uuid,
    traceparent text,
    ordering_key text,
    payload jsonb NOT NULL);
CREATE INDEX events_log ON proto.events (type, txid, pos);
CREATE INDEX events_published_at ON proto.events (published_at);

-- A lease on a range of the log, and the record of a range handled (one row per batch, not per event).
CREATE TABLE proto.ranges (
    token bigint PRIMARY KEY,
    subscription text NOT NULL,
    done_snapshot pg_snapshot,
    upper_snapshot pg_snapshot,
    from_txid xid8 NOT NULL,
    from_pos bigint NOT NULL,
    to_txid xid8 NOT NULL,
    to_pos bigint NOT NULL,
    visible_at timestamptz NOT NULL,
    attempts int NOT NULL,
    events int NOT NULL);
CREATE TABLE proto.handled_ranges (
    subscription text NOT NULL,
    from_txid xid8 NOT NULL,
    from_pos bigint NOT NULL,
    to_txid xid8 NOT NULL,
    to_pos bigint NOT NULL,
    events int NOT NULL,
    handled_by text NOT NULL,
    handled_at timestamptz NOT NULL DEFAULT now());

-- Cursor below the oldest running transaction: everything under pg_snapshot_xmin has committed or aborted, so a
-- cursor ordered by (txid, pos) never passes an event still to commit. Any transaction left open holds it back.
CREATE TABLE proto.horizon_cursors (
    subscription text PRIMARY KEY,
    topic text NOT NULL,
    txid xid8 NOT NULL,
    pos bigint NOT NULL) WITH (fillfactor = 50);

-- Cursor between two snapshots, as PgQ cuts its batches: the events to hand out are those visible in
-- upper_snapshot and not in done_snapshot, in (txid, pos) order, up to (last_txid, last_pos). An open transaction
-- does not hold the others back; its events join a later pair of snapshots.
CREATE TABLE proto.snapshot_cursors (
    subscription text PRIMARY KEY,
    topic text NOT NULL,
    done_snapshot pg_snapshot NOT NULL,
    upper_snapshot pg_snapshot NOT NULL,
    last_txid xid8 NOT NULL,
    last_pos bigint NOT NULL) WITH (fillfactor = 50);

-- Leases up to `batch` events of the snapshot cursor's range and returns them. PL/pgSQL because each statement
-- must take its snapshot after the cursor's row lock: a single statement whose snapshot predates another claim's
-- move of the cursor can pass over events it cannot see (the prototype lost events that way).
CREATE FUNCTION proto.claim_snapshot_range(subscription_name text, batch int, token bigint)
RETURNS SETOF proto.events
LANGUAGE plpgsql
SET plan_cache_mode = force_custom_plan
AS $claim$
DECLARE
    c record;
    upto_txid xid8;
    upto_pos bigint;
    taken int;
    advanced boolean := false;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT * INTO c FROM proto.snapshot_cursors WHERE subscription = subscription_name FOR UPDATE;
    LOOP
        SELECT y.txid, y.pos, count(*) OVER () INTO upto_txid, upto_pos, taken
        FROM (
            SELECT e.txid, e.pos FROM proto.events e
            WHERE e.type = c.topic AND (e.txid, e.pos) > (c.last_txid, c.last_pos)
                AND e.txid < pg_snapshot_xmax(c.upper_snapshot)
                AND pg_visible_in_snapshot(e.txid, c.upper_snapshot)
                AND NOT pg_visible_in_snapshot(e.txid, c.done_snapshot)
            ORDER BY e.txid, e.pos LIMIT batch) y
        ORDER BY y.txid DESC, y.pos DESC LIMIT 1;
        IF taken IS NOT NULL THEN
            UPDATE proto.snapshot_cursors SET last_txid = upto_txid, last_pos = upto_pos
            WHERE subscription = subscription_name;
            INSERT INTO proto.ranges VALUES (token, subscription_name, c.done_snapshot, c.upper_snapshot,
                c.last_txid, c.last_pos, upto_txid, upto_pos, now() + interval '5 s', 1, taken);
            RETURN QUERY SELECT * FROM proto.events e
                WHERE e.type = c.topic AND (e.txid, e.pos) > (c.last_txid, c.last_pos)
                    AND (e.txid, e.pos) <= (upto_txid, upto_pos)
                    AND pg_visible_in_snapshot(e.txid, c.upper_snapshot)
                    AND NOT pg_visible_in_snapshot(e.txid, c.done_snapshot)
                ORDER BY e.txid, e.pos;
            RETURN;
        END IF;
        IF advanced THEN
            RETURN;
        END IF;
        -- The range is used up: the next one runs from the upper snapshot to now.
        advanced := true;
        c.done_snapshot := c.upper_snapshot;
        c.upper_snapshot := pg_current_snapshot();
        c.last_txid := pg_snapshot_xmin(c.done_snapshot);
        c.last_pos := 0;
        UPDATE proto.snapshot_cursors SET done_snapshot = c.done_snapshot, upper_snapshot = c.upper_snapshot,
            last_txid = c.last_txid, last_pos = 0
        WHERE subscription = subscription_name;
    END LOOP;
END
$claim$;

-- The log split into partitions by ordering key, each with its own snapshot cursor, as Kafka splits a topic: a claim
-- leases one whole partition (its cursor row) for its range, so one range per partition is in flight and the events
-- of a key are handled in publish order without a check per key. Claims on different partitions do not wait for
-- each other.
CREATE TABLE proto.keyed_events (
    pos bigint GENERATED ALWAYS AS IDENTITY,
    txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    part int NOT NULL,
    id uuid PRIMARY KEY,
    type text NOT NULL,
    version int NOT NULL,
    occurred_at timestamptz NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    correlation_id text,
    causation_id uuid,
    traceparent text,
    ordering_key text,
    payload jsonb NOT NULL);
CREATE INDEX keyed_events_log ON proto.keyed_events (type, part, txid, pos);
CREATE INDEX keyed_events_published_at ON proto.keyed_events (published_at);

CREATE TABLE proto.partition_cursors (
    subscription text NOT NULL,
    part int NOT NULL,
    topic text NOT NULL,
    done_snapshot pg_snapshot NOT NULL,
    upper_snapshot pg_snapshot NOT NULL,
    last_txid xid8 NOT NULL,
    last_pos bigint NOT NULL,
    token bigint,
    leased_until timestamptz,
    PRIMARY KEY (subscription, part)) WITH (fillfactor = 50);

-- Leases a partition no range holds (or whose lease ran out) and up to `batch` events of its snapshot range.
CREATE FUNCTION proto.claim_partition_range(subscription_name text, batch int, token bigint)
RETURNS SETOF proto.keyed_events
LANGUAGE plpgsql
SET plan_cache_mode = force_custom_plan
AS $claim$
DECLARE
    c record;
    upto_txid xid8;
    upto_pos bigint;
    taken int;
    advanced boolean := false;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT * INTO c FROM proto.partition_cursors p
    WHERE p.subscription = subscription_name AND (p.token IS NULL OR p.leased_until < now())
    ORDER BY random() LIMIT 1
    FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    LOOP
        SELECT y.txid, y.pos, count(*) OVER () INTO upto_txid, upto_pos, taken
        FROM (
            SELECT e.txid, e.pos FROM proto.keyed_events e
            WHERE e.type = c.topic AND e.part = c.part AND (e.txid, e.pos) > (c.last_txid, c.last_pos)
                AND e.txid < pg_snapshot_xmax(c.upper_snapshot)
                AND pg_visible_in_snapshot(e.txid, c.upper_snapshot)
                AND NOT pg_visible_in_snapshot(e.txid, c.done_snapshot)
            ORDER BY e.txid, e.pos LIMIT batch) y
        ORDER BY y.txid DESC, y.pos DESC LIMIT 1;
        IF taken IS NOT NULL THEN
            UPDATE proto.partition_cursors p SET last_txid = upto_txid, last_pos = upto_pos,
                token = claim_partition_range.token, leased_until = now() + interval '5 s'
            WHERE p.subscription = subscription_name AND p.part = c.part;
            INSERT INTO proto.ranges VALUES (token, subscription_name, c.done_snapshot, c.upper_snapshot,
                c.last_txid, c.last_pos, upto_txid, upto_pos, now() + interval '5 s', 1, taken);
            RETURN QUERY SELECT * FROM proto.keyed_events e
                WHERE e.type = c.topic AND e.part = c.part AND (e.txid, e.pos) > (c.last_txid, c.last_pos)
                    AND (e.txid, e.pos) <= (upto_txid, upto_pos)
                    AND pg_visible_in_snapshot(e.txid, c.upper_snapshot)
                    AND NOT pg_visible_in_snapshot(e.txid, c.done_snapshot)
                ORDER BY e.txid, e.pos;
            RETURN;
        END IF;
        IF advanced THEN
            RETURN;
        END IF;
        advanced := true;
        c.done_snapshot := c.upper_snapshot;
        c.upper_snapshot := pg_current_snapshot();
        c.last_txid := pg_snapshot_xmin(c.done_snapshot);
        c.last_pos := 0;
        UPDATE proto.partition_cursors p SET done_snapshot = c.done_snapshot, upper_snapshot = c.upper_snapshot,
            last_txid = c.last_txid, last_pos = 0
        WHERE p.subscription = subscription_name AND p.part = c.part;
    END LOOP;
END
$claim$;
