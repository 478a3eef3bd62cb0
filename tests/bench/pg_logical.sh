#!/usr/bin/env bash
# pg_logical.sh: the PostgreSQL reference of obsync's replication benchmark.
# Three throw-away PostgreSQL clusters on loopback (origin -> hub -> subscriber,
# built-in logical replication, default durable settings: fsync and
# synchronous_commit on), the same observation rows obsync replicates, and the
# time until the subscriber holds them all. Not a test: never in ctest or CI.
# Called by tests/bench/bench_replication.py, or by hand as root:
#
#   tests/bench/pg_logical.sh [--n ROWS] [--seed S] [--workdir DIR] [--timeout S]
#
# Measures (each printed as a table row and a "RESULT name rows seconds" line):
#   pg_copy     N rows COPYed at the origin in ONE transaction, until the
#               subscriber holds N (end-to-end through the hub)
#   pg_batch    the same N rows (after a replicated TRUNCATE) in transactions
#               of 1,000 rows, as an observatory's steady trickle would be
#   pg_catchup  subscriber's subscription disabled, N more rows loaded at the
#               origin and applied at the hub, subscription enabled: time until
#               the subscriber holds 2N
# "load s" is how long the origin's load took (for catch-up: the ENABLE).
# Every cluster and process it starts is stopped and removed on exit (trap).
set -euo pipefail

N=1000000 SEED=1 WORKDIR=/tmp TIMEOUT=1800
while [ $# -gt 0 ]; do
    case "$1" in
    --n) N=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --workdir) WORKDIR=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    *) echo "usage: $0 [--n ROWS] [--seed S] [--workdir DIR] [--timeout S]" >&2
       exit 2 ;;
    esac
done
HERE=$(cd "$(dirname "$0")" && pwd)

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    if [ -n "${CI:-}" ]; then
        echo "pg_logical.sh: PostgreSQL missing and this is CI: not installing" >&2
        exit 1
    fi
    echo "pg_logical.sh: installing Debian's postgresql" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

BASE=$(mktemp -d "$WORKDIR/pg-logical-XXXXXX")
chmod 755 "$BASE"
if ! runuser -u postgres -- test -x "$BASE"; then
    echo "pg_logical.sh: user postgres cannot reach $BASE (--workdir)" >&2
    rm -rf "$BASE"
    exit 1
fi
cleanup() {
    for c in "$BASE"/c?; do
        [ -f "$c/postmaster.pid" ] &&
            runuser -u postgres -- "$PGBIN/pg_ctl" -D "$c" -m immediate -w stop \
                >/dev/null 2>&1
    done
    rm -rf "$BASE"
}
trap cleanup EXIT INT TERM

now() { date +%s.%N; }
elapsed() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.3f", a - b }'; }
too_long() { awk -v e="$(elapsed "$1")" -v t="$TIMEOUT" 'BEGIN { exit !(e > t) }'; }
# Three free loopback ports, chosen by the kernel.
read -r P0 P1 P2 < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
PORTS=("$P0" "$P1" "$P2")
sql() { # sql CLUSTER_INDEX SQL...
    local p=${PORTS[$1]}; shift
    psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$p" -U postgres -d bench "$@"
}

start_cluster() { # start_cluster INDEX
    local c="$BASE/c$1"
    runuser -u postgres -- "$PGBIN/initdb" -D "$c" -A trust -U postgres \
        --no-instructions >"$BASE/initdb$1.log"
    cat >>"$c/postgresql.conf" <<EOF
port = ${PORTS[$1]}
listen_addresses = '127.0.0.1'
unix_socket_directories = '$BASE'
wal_level = logical
EOF
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$c" -l "$BASE/c$1.log" -w start \
        >/dev/null
    psql -X -q -h 127.0.0.1 -p "${PORTS[$1]}" -U postgres -d postgres \
        -c 'CREATE DATABASE bench'
    sql "$1" -c "CREATE TABLE obs(key text PRIMARY KEY, dataflow text,
        time_period text, value text, attrs jsonb, hlc bigint, origin text)"
}

# wait_count INDEX ROWS: poll count(*) until it is ROWS (bounded by TIMEOUT).
wait_count() {
    local t0; t0=$(now)
    while [ "$(sql "$1" -c 'SELECT count(*) FROM obs')" != "$2" ]; do
        if too_long "$t0"; then
            echo "pg_logical.sh: cluster $1 never reached $2 rows" >&2
            exit 1
        fi
        sleep 0.05
    done
}

wait_sql() { # wait_sql INDEX QUERY: poll until QUERY returns t
    local t0; t0=$(now)
    while [ "$(sql "$1" -c "$2")" != t ]; do
        if too_long "$t0"; then
            echo "pg_logical.sh: timed out waiting for: $2" >&2
            exit 1
        fi
        sleep 0.05
    done
}

# SDMX-CSV from gen_obs.py -> COPY text rows of obs; with a second argument,
# also a psql script that COPYs them in transactions of 1,000 rows.
to_copy() { # to_copy CSV OUT [BATCHED_SQL]
    python3 - "$@" <<'EOF'
import csv, json, sys
src, out = sys.argv[1], sys.argv[2]
batched = open(sys.argv[3], "w") if len(sys.argv) > 3 else None
esc = lambda s: s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
with open(src, newline="") as f, open(out, "w") as o:
    r = csv.reader(f)
    next(r)
    for i, row in enumerate(r):
        key = "DF_VIOLENCE:" + ".".join(row[3:10]) + ":" + row[10]
        attrs = json.dumps({"UNIT_MEASURE": row[12], "OBS_STATUS": row[13],
                            "SOURCE_DETAIL": row[14]})
        line = "\t".join(esc(x) for x in (key, row[1], row[10], row[11], attrs,
                                          str((1764000000000 << 16) + i), "OID"))
        o.write(line + "\n")
        if batched:
            if i % 1000 == 0:
                batched.write("\\.\n" if i else "")
                batched.write("COPY obs FROM STDIN;\n")
            batched.write(line + "\n")
if batched:
    batched.write("\\.\n")
    batched.close()
EOF
}

echo "pg_logical.sh: generating $N + $N rows" >&2
python3 "$HERE/gen_obs.py" --n "$N" --seed "$SEED" --order import -o "$BASE/a.csv"
python3 "$HERE/gen_obs.py" --n "$N" --skip "$N" --seed "$SEED" --order import \
    -o "$BASE/b.csv"
to_copy "$BASE/a.csv" "$BASE/a.copy" "$BASE/a.batched.sql"
to_copy "$BASE/b.csv" "$BASE/b.copy"
rm -f "$BASE/a.csv" "$BASE/b.csv"

echo "pg_logical.sh: starting 3 clusters on ports $P0 $P1 $P2 in $BASE" >&2
chown postgres "$BASE"
for i in 0 1 2; do start_cluster $i; done
conn() { echo "host=127.0.0.1 port=${PORTS[$1]} dbname=bench user=postgres"; }
sql 0 -c 'CREATE PUBLICATION p_origin FOR TABLE obs'
sql 1 -c "CREATE SUBSCRIPTION s_hub CONNECTION '$(conn 0)' PUBLICATION p_origin"
sql 1 -c 'CREATE PUBLICATION p_hub FOR TABLE obs'
sql 2 -c "CREATE SUBSCRIPTION s_sub CONNECTION '$(conn 1)' PUBLICATION p_hub"
ready="SELECT count(*) = 1 FROM pg_subscription_rel WHERE srsubstate = 'r'"
wait_sql 1 "$ready"
wait_sql 2 "$ready"

declare -A SECS LOADS
measure() { # measure NAME EXPECTED_ROWS LOAD_COMMAND...
    local name=$1 rows=$2 t0; shift 2
    sync # the steps before leave no writeback to compete with
    t0=$(now)
    "$@"
    LOADS[$name]=$(elapsed "$t0")
    wait_count 2 "$rows"
    SECS[$name]=$(elapsed "$t0")
    echo "RESULT pg_$name $N ${SECS[$name]}"
}
copy_one_tx() { sql 0 -c "\\copy obs FROM '$1'"; }
copy_batched() { sql 0 -f "$BASE/a.batched.sql"; }

measure copy "$N" copy_one_tx "$BASE/a.copy"
sql 0 -c 'TRUNCATE obs'
wait_count 2 0
measure batch "$N" copy_batched

# Catch-up: the subscriber goes away, the origin and hub move on, it returns.
sql 2 -c 'ALTER SUBSCRIPTION s_sub DISABLE'
wait_sql 2 "SELECT count(*) = 0 FROM pg_stat_subscription WHERE pid IS NOT NULL"
copy_one_tx "$BASE/b.copy"
wait_count 1 $((2 * N))
measure catchup $((2 * N)) sql 2 -c 'ALTER SUBSCRIPTION s_sub ENABLE'

printf '\n%-12s %10s %12s %14s %10s\n' measurement rows "load s" \
    "end-to-end s" "rows/s"
for m in copy batch catchup; do
    printf '%-12s %10d %12.2f %14.2f %10.0f\n' "$m" "$N" "${LOADS[$m]}" \
        "${SECS[$m]}" "$(awk -v n="$N" -v s="${SECS[$m]}" 'BEGIN { print n / s }')"
done
