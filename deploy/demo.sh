#!/usr/bin/env bash
# The main job: a regional hub and three observatory nodes (COL, MEX, JAM) on
# this machine. Each node imports its own country's real sample data
# (deploy/sample-data/), the hub relays it, and every node converges on all
# three countries' data. The daemons keep running afterwards so you can try
# the CLI; `bash deploy/demo.sh stop` stops them. Replication is CURVE, as
# in a deployment (README "Keys and deployment"): each daemon gets a key
# pair from `obsync keygen`, the hub an allow-list of the nodes' public
# keys, and each node pins the hub's public key.
#
#   bash deploy/demo.sh          install what is missing, build, run the demo
#   bash deploy/demo.sh stop     stop the demo daemons
#   OBSYNC_DEMO_DIR=/path ...    where the stores and logs go (/tmp/obsync-demo)
#   OBSYNC_DEMO_PORT=N ...       the hub's replication port (7600)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
demo=${OBSYNC_DEMO_DIR:-/tmp/obsync-demo}
countries=(COL MEX JAM)

stop_all() {
    for pidf in "$demo"/*/obsyncd.pid; do
        [ -f "$pidf" ] || continue
        kill "$(cat "$pidf")" 2>/dev/null || true
        rm -f "$pidf"
    done
}
if [ "${1:-}" = stop ]; then
    stop_all
    echo "demo daemons stopped (stores kept in $demo)"
    exit 0
fi

bash "$top/deploy/install-deps.sh"
echo "== building (release)"
cmake -S "$top" --preset release >/dev/null
cmake --build "$top/build/release" -j"$(nproc)" --target obsyncd obsync_cli >/dev/null
obsyncd=$top/build/release/obsyncd
obsync=$top/build/release/obsync

stop_all
rm -rf "$demo"
mkdir -p "$demo"

start() { # name config
    "$obsyncd" -c "$2" -d >"$demo/$1/obsyncd.log" 2>&1 &
    echo $! >"$demo/$1/obsyncd.pid"
    for _ in $(seq 100); do
        "$obsync" -s "$demo/$1/api.sock" status >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "obsyncd $1 did not start; its log:" >&2
    tail -n 20 "$demo/$1/obsyncd.log" >&2
    exit 1
}

echo "== keys: one pair per daemon (obsync keygen), public halves exchanged"
mkdir -p "$demo/keys" "$demo/hub/allow"
"$obsync" keygen HUB --hub --dir "$demo/keys" >/dev/null
for c in "${countries[@]}"; do
    "$obsync" keygen "$c" --dir "$demo/keys" >/dev/null
    cp "$demo/keys/$c.key" "$demo/hub/allow/" # the hub allows the node
done
ls -l "$demo/keys"

echo "== starting the hub"
cat >"$demo/hub/obsyncd.conf" <<EOF
role = hub
node_id = HUB
provider = OID
data_dir = $demo/hub
structure_file = $top/deploy/structure/starter.structure
# a fixed port, as in a deployment: with port 0 the hub would get another
# port at each restart while the nodes keep this one (PROTOCOL.md §5.1)
repl_bind = tcp://127.0.0.1:${OBSYNC_DEMO_PORT:-7600}
security = curve
curve_secret_key = $demo/keys/HUB.key_secret
curve_allow_dir = $demo/hub/allow
EOF
start hub "$demo/hub/obsyncd.conf"
endpoint=$(cat "$demo/hub/repl.endpoint")
echo "hub listening on $endpoint"

for c in "${countries[@]}"; do
    d="$demo/${c,,}"
    mkdir -p "$d"
    cat >"$d/obsyncd.conf" <<EOF
role = node
node_id = $c
provider = $c
data_dir = $d
structure_file = $top/deploy/structure/starter.structure
hub_endpoint = $endpoint
security = curve
curve_secret_key = $demo/keys/$c.key_secret
hub_public_key = $demo/keys/HUB.key
EOF
    start "${c,,}" "$d/obsyncd.conf"
    # This country's rows of each sample file (an observatory loads its own).
    python3 - "$c" "$d" "$top"/deploy/sample-data/*.csv <<'EOF'
import csv, os, sys
area, out, files = sys.argv[1], sys.argv[2], sys.argv[3:]
for f in files:
    with open(f, newline="") as src:
        rows = list(csv.reader(src))
    col = rows[0].index("REF_AREA")
    keep = [r for r in rows[1:] if r[col] == area]
    if keep:
        name = os.path.join(out, os.path.basename(f))
        with open(name, "w", newline="") as dst:
            csv.writer(dst, lineterminator="\n").writerows([rows[0]] + keep)
EOF
done

echo "== each observatory imports its own data"
for c in "${countries[@]}"; do
    d="$demo/${c,,}"
    "$obsync" -s "$d/api.sock" import "$d"/*.csv
done

echo "== waiting for every node to hold all three countries' data"
count() { "$obsync" -s "$demo/$1/api.sock" --json status |
          python3 -c 'import json,sys; print(json.load(sys.stdin)["observations"])'; }
for _ in $(seq 300); do
    want=$(count hub)
    ok=1
    for c in "${countries[@]}"; do
        [ "$(count "${c,,}")" = "$want" ] || ok=0
    done
    [ "$ok" = 1 ] && [ "$want" -gt 0 ] && break
    sleep 0.2
done
printf '%-6s %12s\n' daemon observations
printf '%-6s %12s\n' hub "$(count hub)"
for c in "${countries[@]}"; do
    printf '%-6s %12s\n' "$c" "$(count "${c,,}")"
done

echo
echo "== the hub's view of its nodes"
"$obsync" -s "$demo/hub/api.sock" status
echo
echo "== at JAM: Colombia's homicide rate, replicated from COL"
"$obsync" -s "$demo/jam/api.sock" query OID:DF_VIOLENCE --key A.COL.VC_IHR_PSRC._T._T._T.HARM --start 2015 --end 2023
echo
echo "Try it yourself, for example:"
echo "  $obsync -s $demo/mex/api.sock query OID:DF_DRUG_USE --key A.COL....."
echo "  $obsync -s $demo/col/api.sock status"
echo "  $obsync -s $demo/hub/api.sock status"
echo "Logs: $demo/*/obsyncd.log    Stop: bash deploy/demo.sh stop"
