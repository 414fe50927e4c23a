#!/usr/bin/env bash
# run-fanout.sh: the broadcast fan-out benchmark of tidings (docs/BENCHMARKS.md 2):
# one gateway process vs two processes joined by a Redis bus, same load.
#
# Starts a throwaway redis-server (free port, --save '', no persistence) and, per
# scenario, a gateway on a free port: (a) --workers 1 without Redis, (b) --workers 2
# --redis. The cluster-wide rate limits are switched off and the per-socket event limit
# raised, so nothing but capacity can drop a message. For each rate it runs
# `tidings-load fanout` (K subscribers of realtime:bench, REST publisher) and
# prints one table (load CPU = the subscriber and publisher processes, % of one core over
# the sampling window). Nothing is pinned: gateway, Redis and load processes share all CPUs.
# Everything it started is stopped by pid (trap), the temp dir removed.
#
#   run-fanout.sh [--build DIR] [--clients 2000] [--rates "20 50 100"] [--seconds 8]
#                 [--procs 1] [--per-post 1] [--out DIR]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build="$root/build" out="" clients=2000 rates="20 50 100" seconds=8 procs=1 per_post=1

while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --rates) rates=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --procs) procs=$2; shift 2 ;;
    --per-post) per_post=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "run-fanout.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
tidings=$build/gateway/tidings load=$build/tidings-load
for b in "$tidings" "$load"; do
    [ -x "$b" ] || { echo "run-fanout.sh: $b is missing (build the tree first)" >&2; exit 2; }
done
command -v redis-server >/dev/null || { echo "run-fanout.sh: redis-server missing" >&2; exit 2; }

# shellcheck source=loadtest/lib.sh
. "$here/lib.sh"
tmp=$(mktemp -d /tmp/tidings-fanout.XXXXXX)
out=${out:-$tmp/results}
mkdir -p "$out"
gw_pid="" redis_pid=""

cleanup() {
    set +e
    stop_pid "$gw_pid"
    stop_pid "$redis_pid"
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
    >"$tmp/redis.log" 2>&1 &
redis_pid=$!

secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
token=$("$tidings" token --jwt_secret "$secret" --role admin --ttl 7200)

start_gw() { # workers [redis args...]
    local workers=$1
    shift
    port=$(free_port)
    "$tidings" --port "$port" --jwt_secret "$secret" --workers "$workers" "$@" \
        --cluster_messages_per_second 0 --cluster_joins_per_second 0 \
        --cluster_connections_per_second 0 --max_events_per_second 1000000 \
        --max_joins_per_second 100000 --log_level warn >"$tmp/gateway-$workers.log" 2>&1 &
    gw_pid=$!
    for _ in $(seq 1 100); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz" || true)" = 200 ] &&
            return 0
        kill -0 "$gw_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "run-fanout.sh: the gateway did not start; its log:" >&2
    cat "$tmp/gateway-$workers.log" >&2
    exit 2
}

echo "# tidings broadcast fan-out: K=$clients subscribers of realtime:bench, ${seconds} s per" \
    "rate, $per_post message(s) per POST, $(nproc) CPUs, nothing pinned"
for sc in 1 2; do
    if [ "$sc" = 1 ]; then start_gw 1; else start_gw 2 --redis "redis://127.0.0.1:$rport"; fi
    for rate in $rates; do
        echo "## workers $sc, rate $rate msgs/s"
        timeout 120 "$load" fanout --port "$port" --token "$token" --progress off \
            --clients "$clients" --procs "$procs" --rate "$rate" --seconds "$seconds" \
            --per-post "$per_post" --payload-bytes 200 --drain 5 --join-timeout 40 \
            --gateway-pid "$gw_pid" --json "$out/w$sc-r$rate.json" --label "workers=$sc" \
            >"$out/w$sc-r$rate.txt" 2>&1 || true
        grep -E "^(deliveries|latency|gateway|result)" "$out/w$sc-r$rate.txt" || cat "$out/w$sc-r$rate.txt"
        kill -0 "$gw_pid" 2>/dev/null || { cat "$tmp/gateway-$sc.log" >&2; exit 2; }
    done
    stop_pid "$gw_pid"
    gw_pid=""
done

python3 - "$out" "$clients" $rates <<'PY'
import json, sys
out, k, rates = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
print()
print("| processes | offered msgs/s | sent msgs/s | expected | received | drops | deliveries/s "
      "| p50 ms | p99 ms | max ms | POST p99 ms | gateway CPU % | load CPU % (whole run) | complete |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for w in (1, 2):
    for r in rates:
        try:
            j = json.load(open(f"{out}/w{w}-r{r}.json"))
        except (OSError, ValueError):
            print(f"| {w} | {r} | (no result) |||||||||||")
            continue
        res = j["results"]
        num = lambda v: float("nan") if v is None else v
        lat = {k: num(v) for k, v in res["latency_ms"].items()}
        sent = res["published"] / res["window_s"] if res["window_s"] else 0
        print(f"| {w} | {r} | {sent:.1f} | {res['expected']} | {res['received']} "
              f"| {res['drops']} | {num(res['deliveries_per_s']):.0f} | {lat['p50']:.1f} "
              f"| {lat['p99']:.1f} | {lat['max']:.1f} | {num(res['post_ms']['p99']):.1f} "
              f"| {num(res['gateway_cpu_pct']):.0f} | {res['load_cpu_pct']:.0f} "
              f"| {'yes' if res['complete'] else 'no'} |")
PY
