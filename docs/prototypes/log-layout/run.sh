#!/usr/bin/env bash
# Measures each layout in this folder with pgbench, against plain SQL, taking turns (see README.md).
#
#   run.sh DATABASE_URL [SECONDS] [ROUNDS]
#
# DATABASE_URL must name a database `postbox db setup` has prepared (the bus's tables) and that this may fill,
# such as the one `swift run -c release postbox postgres` prints. BATCH (100) sets the events per transaction,
# CLIENTS (16) the pgbench clients; each client publishes a batch, claims a batch and acknowledges it, in a loop.
# LAYOUTS picks the scripts each round runs, in order (default: limit deliveries log-horizon log-snapshot; also
# log-partitions and log-snapshot-handled).
# With HOLD_SECONDS set, each log layout also runs once while another session holds a transaction id open for
# that long, from the run's second second.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
url=${1:?usage: run.sh DATABASE_URL [SECONDS] [ROUNDS]}
seconds=${2:-10}
rounds=${3:-2}
batch=${BATCH:-100}
clients=${CLIENTS:-16}
# A 223-byte JSON body, the size of the order flow's events.
payload='{"orderId": "0f8fad5b-d9cb-469f-a165-70867728950e", "customerId": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "lines": [{"sku": "SKU-1", "qty": 2, "price": 1999}], "total": 3998, "n": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}'

sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$url" -c "$1"; }

PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 "$url" -f "$here/schema.sql"
sql "INSERT INTO bus.subscriptions (topic, subscription) VALUES ('proto.t', 'proto.s') ON CONFLICT DO NOTHING"

reset() {
    sql "TRUNCATE proto.queue, proto.events, proto.keyed_events, proto.ranges, proto.handled_ranges"
    sql "DELETE FROM bus.deliveries WHERE subscription = 'proto.s'"
    sql "DELETE FROM bus.handled WHERE subscription = 'proto.s'"
    sql "DELETE FROM bus.events WHERE type = 'proto.t'"
    sql "DELETE FROM proto.horizon_cursors; INSERT INTO proto.horizon_cursors VALUES ('proto.s', 'proto.t', '0', 0)"
    sql "DELETE FROM proto.snapshot_cursors;
         INSERT INTO proto.snapshot_cursors
         SELECT 'proto.s', 'proto.t', pg_current_snapshot(), pg_current_snapshot(), '0', 0"
    sql "DELETE FROM proto.partition_cursors;
         INSERT INTO proto.partition_cursors
         SELECT 'proto.s', part, 'proto.t', pg_current_snapshot(), pg_current_snapshot(), '0', 0, NULL, NULL
         FROM generate_series(0, 15) part"
    sql "VACUUM ANALYZE proto.queue, proto.events, proto.keyed_events, proto.ranges, proto.handled_ranges,
         proto.horizon_cursors, proto.snapshot_cursors, proto.partition_cursors, bus.deliveries, bus.handled,
         bus.events"
}

# Messages handled: deleted from the queue, recorded in bus.handled, or counted in the handled ranges.
handled() {
    case $1 in
    limit) echo $(( $2 * batch - $(sql "SELECT count(*) FROM proto.queue") )) ;;
    deliveries) sql "SELECT count(*) FROM bus.handled WHERE subscription = 'proto.s'" ;;
    *) sql "SELECT coalesce(sum(events), 0) FROM proto.handled_ranges" ;;
    esac
}

# Fails the run unless every event a log layout took in is handled, leased, or still ahead of its cursor, so that
# no rate here comes from a cursor that passed events over. The single snapshot cursor is drained first.
check_log() {
    local layout=$1 total accounted ahead=0
    total=$(sql "SELECT count(*) FROM proto.events")
    if [[ $layout == log-horizon ]]; then
        ahead=$(sql "SELECT count(*) FROM proto.events e, proto.horizon_cursors c
                     WHERE (e.txid, e.pos) > (c.txid, c.pos)")
    elif [[ $layout == log-partitions ]]; then
        # Ahead of a partition's cursor: not in its done snapshot, and not among the events of its current range
        # it has handed out already.
        total=$(sql "SELECT count(*) FROM proto.keyed_events")
        ahead=$(sql "SELECT count(*) FROM proto.keyed_events e JOIN proto.partition_cursors c ON c.part = e.part
                     WHERE NOT pg_visible_in_snapshot(e.txid, c.done_snapshot)
                       AND NOT (pg_visible_in_snapshot(e.txid, c.upper_snapshot)
                                AND (e.txid, e.pos) <= (c.last_txid, c.last_pos))")
    else
        local empty=0 token=1
        while (( empty < 2 )); do
            token=$(( token + 1 ))
            if [[ $(sql "SELECT count(*) FROM proto.claim_snapshot_range('proto.s', 100000, -$token)") == 0 ]]; then
                empty=$(( empty + 1 ))
            fi
        done
    fi
    accounted=$(sql "SELECT (SELECT coalesce(sum(events), 0) FROM proto.handled_ranges)
                          + (SELECT coalesce(sum(events), 0) FROM proto.ranges)")
    if (( accounted + ahead != total )); then
        echo "$layout: $(( total - accounted - ahead )) of $total events were passed over" >&2
        exit 1
    fi
}

limit_rate=0
measure() { # layout [hold]
    local layout=$1 hold=${2:-0} note="" holder=""
    reset
    local wal_before
    wal_before=$(sql "SELECT pg_current_wal_insert_lsn()")
    if (( hold > 0 )); then
        note=" (a transaction id held open ${hold} s)"
        (sleep 1; psql -X -q "$url" -c "BEGIN" -c "SELECT pg_current_xact_id()" -c "SELECT pg_sleep($hold)" \
            -c "COMMIT" >/dev/null) &
        holder=$!
    fi
    local out
    out=$(pgbench -n -M prepared -c "$clients" -j 2 -T "$seconds" -D batch="$batch" -D payload="$payload" \
        -f "$here/$layout.sql" "$url" 2>&1)
    [[ -n $holder ]] && wait "$holder"
    if grep -q "aborted\|ERROR" <<<"$out"; then
        echo "$layout: pgbench failed" >&2
        echo "$out" >&2
        exit 1
    fi
    local transactions count wal rate
    transactions=$(awk '/number of transactions actually processed/ { split($6, n, "/"); print n[1] }' <<<"$out")
    count=$(handled "$layout" "$transactions")
    wal=$(sql "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '$wal_before')::bigint")
    [[ $layout == log-* ]] && check_log "$layout"
    rate=$(( count / seconds ))
    [[ $layout == limit ]] && limit_rate=$rate
    local ratio
    ratio=$(awk -v r="$rate" -v l="$limit_rate" 'BEGIN { if (l > 0) printf "%.2f", r / l; else printf "-" }')
    printf '%-21s %8d msg/s  %5s of the limit before it  %5d B of WAL per message%s\n' \
        "$layout" "$rate" "$ratio" $(( wal / (transactions * batch) )) "$note"
}

echo "pgbench, $clients clients, $batch per transaction, $seconds s each, PostgreSQL $(sql 'SHOW server_version')"
for (( round = 1; round <= rounds; round++ )); do
    echo "round $round"
    for layout in ${LAYOUTS:-limit deliveries log-horizon log-snapshot}; do
        measure "$layout"
    done
done
if [[ -n ${HOLD_SECONDS:-} ]]; then
    echo "with a transaction held open"
    measure limit
    measure log-horizon "$HOLD_SECONDS"
    measure log-snapshot "$HOLD_SECONDS"
fi
