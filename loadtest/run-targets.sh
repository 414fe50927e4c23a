#!/usr/bin/env bash
# run-targets.sh: the performance targets of tidings (docs/BENCHMARKS.md 4), one scenario
# of tidings-load per target, each against a fresh gateway, results as JSON in --out.
#
# The fan-out efficiency and peak targets run in compare.sh, side by side with the floor
# and the peers. Targets here (names for --only):
#   peak         5,000 subscribers of one topic, REST batches of 10 messages (so frames
#                coalesce into one write per socket), rates 50..200 msg/s, one worker on cpu 0
#   idle         100,000 sockets across 6 gateway workers on one port, held 20 s
#   many-topics  50,000 sockets, each on the shared topic and its own (3 workers + Redis)
#   churn        2,000 connects+joins+closes per second while 5,000 subscribers get 20 msg/s
#   db           postgres_changes at 10,000 rows/s, 1,000 filtered subscribers (run-pg.sh)
#   soak         20,000 sockets (2 workers + Redis), fan-out + own topics + churn, --soak-s
#                seconds (default 3600), RSS sampled every second
# Each run first measures the write floor on the same machine (tidings-floor: 5,000 loopback
# sockets, one 204-byte frame per write at 20 msg/s, and 10 frames per write at 100 msg/s,
# writer on cpu 0), and ends with one summary table of every result next to the floor.
# Every run is bounded (tidings-load stops by itself and is wrapped in `timeout`); every
# process started here is stopped by pid (trap), the temp dir removed (results stay in
# --out). Talks only to 127.0.0.1.
#
#   run-targets.sh [--build DIR] [--out DIR] [--only a,b,...] [--soak-s 3600]
# (--only soak for the one-hour soak; it is not in the default list)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build="$root/build" out="" only="peak,idle,many-topics,churn,db" soak_s=3600
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --soak-s) soak_s=$2; shift 2 ;;
    *) echo "run-targets.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
tidings=$build/gateway/tidings load=$build/tidings-load floor=$build/loadtest/tidings-floor
for b in "$tidings" "$load" "$floor"; do
    [ -x "$b" ] || { echo "run-targets.sh: $b is missing (build the tree first)" >&2; exit 2; }
done
# shellcheck source=loadtest/lib.sh
. "$here/lib.sh"
tmp=$(mktemp -d /tmp/tidings-targets.XXXXXX)
out=${out:-$root/.state/targets}
mkdir -p "$out"
pids=()

stop_all() {
    local p
    for p in "${pids[@]}"; do stop_pid "$p" 150; done
    pids=()
}
cleanup() {
    set +e
    stop_all
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

want() { [[ ",$only," == *",$1,"* ]]; }

secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
token=$("$tidings" token --jwt_secret "$secret" --role admin --ttl 86400)

start_redis() {
    rport=$(free_port)
    redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
        --maxclients 1000 >"$tmp/redis.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "run-targets.sh: redis did not start" >&2
    exit 2
}

start_gw() { # cpus workers [extra gateway args...]
    local cpus=$1 workers=$2
    shift 2
    port=$(free_port)
    taskset -c "$cpus" "$tidings" --port "$port" --jwt_secret "$secret" --workers "$workers" \
        --max_connections_per_ip 0 --max_joins_per_second 100000 \
        --max_events_per_second 1000000 --cluster_messages_per_second 0 \
        --cluster_joins_per_second 0 --cluster_connections_per_second 0 \
        --log_level warn "$@" >"$tmp/gateway.log" 2>&1 &
    gw_pid=$!
    pids+=("$gw_pid")
    for _ in $(seq 1 100); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" || true)" = 200 ] &&
            return 0
        sleep 0.1
    done
    echo "run-targets.sh: the gateway did not start; its log:" >&2
    cat "$tmp/gateway.log" >&2
    exit 2
}

run_load() { # cpus name scenario args... (the result goes to $out/name.json)
    local cpus=$1 name=$2 sc=$3 rc=0
    shift 3
    echo "## $name: tidings-load $sc $*"
    timeout 7500 taskset -c "$cpus" "$load" "$sc" --port "$port" --token "$token" \
        --gateway-pid "$gw_pid" --json "$out/$name.json" --csv "$out/$name.csv" \
        --label "$name" "$@" >"$out/$name.txt" 2>&1 || rc=$?
    grep -vE '^\s*$' "$out/$name.txt" | tail -n 14
    echo "(exit $rc)"
}

echo "## floor: tidings-floor, 5000 sockets (writer cpu 0)"
taskset -c 0 "$floor" --sockets 5000 --rate 20 --seconds 10 --json "$out/floor-k1.json" \
    >"$out/floor-k1.txt" 2>&1 || echo "run-targets.sh: tidings-floor (K=1) failed" >&2
taskset -c 0 "$floor" --sockets 5000 --rate 100 --coalesce 10 --seconds 10 \
    --json "$out/floor-k10.json" >"$out/floor-k10.txt" 2>&1 ||
    echo "run-targets.sh: tidings-floor (K=10) failed" >&2

if want peak; then
    start_gw 0 1
    for r in 50 100 150 200; do
        run_load 1 "peak-$r" fanout --clients 5000 --procs 2 --rate "$r" --per-post 10 \
            --seconds 10 --payload-bytes 200 --drain 3
    done
    stop_all
fi
if want idle; then
    start_gw 0-1 6
    run_load 0-1 idle idle --clients 100000 --procs 6 --src-addrs 5 --seconds 20 \
        --join-timeout 200
    stop_all
fi
if want many-topics; then
    start_redis
    start_gw 0-1 3 --redis "redis://127.0.0.1:$rport"
    run_load 0-1 many-topics many-topics --clients 50000 --procs 3 --src-addrs 2 --rate 4 \
        --own-rate 1000 --per-post 4 --seconds 20 --payload-bytes 200 --join-timeout 200 \
        --drain 5
    stop_all
fi
if want churn; then
    start_gw 0 1
    run_load 1 churn churn --clients 5000 --procs 2 --rate 20 --churn-rate 2000 \
        --seconds 20 --payload-bytes 200 --drain 3
    stop_all
fi
if want db; then
    "$here/run-pg.sh" --build "$build" --rates 10000 --out "$out/db" | tail -n 20 || true
fi
if want soak; then
    start_redis
    start_gw 0-1 2 --redis "redis://127.0.0.1:$rport"
    run_load 0-1 soak soak --clients 20000 --procs 2 --src-addrs 1 --rate 2 --own-rate 200 \
        --churn-rate 20 --seconds "$soak_s" --payload-bytes 200 --join-timeout 200 \
        --drain 5 --progress off
    stop_all
fi
# One table: every result of this run next to the floor measured at its start.
python3 - "$out" <<'PY'
import glob, json, os, sys
out = sys.argv[1]
def load(p):
    try:
        return json.load(open(p))
    except (OSError, ValueError):
        return None
print("\n| run | floor µs/write | floor µs/frame |")
print("|---|---:|---:|")
for k in ("k1", "k10"):
    f = load(os.path.join(out, f"floor-{k}.json"))
    if f:
        print(f"| floor {k.upper()} ({f['sockets']} sockets, {f['frames_per_s']:.0f} frames/s) "
              f"| {f['writer_us_per_write']:.2f} | {f['writer_us_per_frame']:.2f} |")
print("\n| run | sockets | deliveries/s | p50 ms | p99 ms | drops | dup | gaps | gateway CPU % "
      "| µs/delivery | RSS B/conn | churn ok/failed | complete |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
fmt = lambda v, d=1: "-" if v is None else (f"{v:,.{d}f}" if isinstance(v, float) else f"{v:,}")
for p in sorted(glob.glob(os.path.join(out, "*.json"))):
    j = load(p)
    if not j or j.get("tool") != "tidings-load":
        continue
    r = j["results"]
    churn = "-" if r["churn_cycles"] is None else f"{r['churn_cycles']}/{r['churn_failed']}"
    print(f"| {os.path.basename(p)[:-5]} | {r['sockets']:,} | {fmt(r['deliveries_per_s'], 0)} "
          f"| {fmt(r['latency_ms']['p50'])} | {fmt(r['latency_ms']['p99'])} | {r['drops']} "
          f"| {r['duplicates']} | {r['gaps']} | {fmt(r['gateway_cpu_pct'], 0)} "
          f"| {fmt(r['gateway_us_per_delivery'], 2)} | {fmt(r['rss_bytes_per_conn'], 0)} "
          f"| {churn} | {'yes' if r['complete'] else 'no'} |")
PY
echo "results in $out"
