#!/usr/bin/env bash
# run-pg.sh: the postgres_changes benchmark of tidings from a built tree (docs/BENCHMARKS.md).
#
# Starts a throwaway PostgreSQL (test/support/pgtmp.sh in a mktemp dir: server defaults
# except fsync=off and max_connections=200, which pgtmp.sh sets), a gateway on a free port
# with --pg and the row rule "* all role=admin", signs an admin token, then runs
# `tidings-load db` once per rate and prints a table. When taskset exists and there are at
# least 2 CPUs, the gateway is pinned to cpu 0 and PostgreSQL plus the load processes to
# cpu 1. Everything it started is stopped by pid on exit (trap), and the temp dir removed.
#
#   run-pg.sh [--build DIR | --tidings BIN --load BIN] [--rates "1000 2500 5000 10000"]
#             [--clients 1000] [--businesses 100] [--seconds 10] [--procs N]
#             [--rows-per-tx 1] [--out DIR] [--keep] [--smoke]
#
# --smoke: 20 clients, 10 businesses, 200 rows/s for 3 s; exits non-zero unless every
# expected delivery arrived (tidings-load exit status 0). Timings are never asserted.
# --out DIR keeps the per-rate JSON and text results there (default: inside the temp dir).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build="$root/build"
tidings="" load="" out="" keep=0 smoke=0
rates="1000 2500 5000 10000" clients=1000 businesses=100 seconds=10 procs="" rows_per_tx=1

while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$2; shift 2 ;;
    --tidings) tidings=$2; shift 2 ;;
    --load) load=$2; shift 2 ;;
    --rates) rates=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --businesses) businesses=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --procs) procs=$2; shift 2 ;;
    --rows-per-tx) rows_per_tx=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --smoke) smoke=1; shift ;;
    *) echo "run-pg.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ "$smoke" = 1 ]; then
    rates=200 clients=20 businesses=10 seconds=3
fi
tidings=${tidings:-$build/gateway/tidings}
load=${load:-$build/tidings-load}
for b in "$tidings" "$load"; do
    [ -x "$b" ] || { echo "run-pg.sh: $b is missing (build the tree first)" >&2; exit 2; }
done

pin_gw="" pin_load=""
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    pin_gw="taskset -c 0" pin_load="taskset -c 1"
fi

# shellcheck source=loadtest/lib.sh
. "$here/lib.sh"
tmp=$(mktemp -d /tmp/tidings-bench.XXXXXX)
chmod 755 "$tmp" # the server runs as user postgres when we are root
out=${out:-$tmp/results}
mkdir -p "$out"
gw_pid=""

cleanup() {
    set +e
    stop_pid "$gw_pid"
    bash "$root/test/support/pgtmp.sh" stop "$tmp/pg" >/dev/null 2>&1
    if [ "$keep" = 1 ]; then
        echo "run-pg.sh: kept $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT INT TERM

# PostgreSQL (its backends inherit the affinity of pg_ctl).
conninfo=$($pin_load bash "$root/test/support/pgtmp.sh" start "$tmp/pg" | tail -n 1)
pm_pid=$(head -n 1 "$tmp/pg/postmaster.pid")

# The gateway.
secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
token=$("$tidings" token --jwt_secret "$secret" --role admin --ttl 7200)
port=$(free_port)
$pin_gw "$tidings" --port "$port" --pg "$conninfo" --jwt_secret "$secret" \
    --row_rule "* all role=admin" --log_level warn >"$tmp/gateway.log" 2>&1 &
gw_pid=$!
ready=0
for _ in $(seq 1 150); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" || true)
    [ "$code" = 200 ] && { ready=1; break; }
    kill -0 "$gw_pid" 2>/dev/null || break
    sleep 0.2
done
if [ "$ready" != 1 ]; then
    echo "run-pg.sh: the gateway did not become ready; its log:" >&2
    cat "$tmp/gateway.log" >&2
    exit 2
fi

echo "# tidings postgres_changes benchmark: K=$clients subscribers, B=$businesses businesses," \
    "${seconds} s per rate, rows/tx $rows_per_tx"
echo "# gateway pid $gw_pid (${pin_gw:-not pinned}), postmaster pid $pm_pid and load" \
    "(${pin_load:-not pinned}); PostgreSQL defaults + fsync=off"
status=0
for rate in $rates; do
    [ "$smoke" = 1 ] || echo "## rate $rate rows/s"
    rc=0
    timeout 300 $pin_load "$load" db --port "$port" --token "$token" --pg "$conninfo" \
        --clients "$clients" --businesses "$businesses" --rate "$rate" --seconds "$seconds" \
        --rows-per-tx "$rows_per_tx" ${procs:+--procs "$procs"} --payload-bytes 100 \
        --join-timeout 60 --progress off --gateway-pid "$gw_pid" \
        --pg-pid "$pm_pid" --json "$out/rate-$rate.json" --label "rate=$rate" \
        >"$out/rate-$rate.txt" 2>&1 || rc=$?
    cat "$out/rate-$rate.txt"
    [ "$rc" = 0 ] || status=$rc
    if ! kill -0 "$gw_pid" 2>/dev/null; then
        echo "run-pg.sh: the gateway died; its log:" >&2
        cat "$tmp/gateway.log" >&2
        exit 2
    fi
done

python3 - "$out" $rates <<'EOF'
import json, sys
out, rates = sys.argv[1], sys.argv[2:]
print()
print("| offered rows/s | achieved rows/s | deliveries/s | p50 ms | p99 ms | max ms | drops "
      "| gateway CPU % | PostgreSQL CPU % | complete |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rates:
    try:
        j = json.load(open(f"{out}/rate-{r}.json"))
    except (OSError, ValueError):
        print(f"| {r} | (no result) |||||||||")
        continue
    res = j["results"]
    lat = {k: (v if v is not None else float("nan")) for k, v in res["latency_ms"].items()}
    num = lambda v: float("nan") if v is None else v
    achieved = res["published"] / res["window_s"] if res["window_s"] else 0
    print(f"| {r} | {achieved:.0f} | {num(res['deliveries_per_s']):.0f} "
          f"| {lat['p50']:.1f} | {lat['p99']:.1f} | {lat['max']:.1f} "
          f"| {res['drops']} | {num(res['gateway_cpu_pct']):.0f} "
          f"| {num(res['postgresql_cpu_pct']):.0f} | {'yes' if res['complete'] else 'no'} |")
EOF
if [ "$smoke" = 1 ] && [ "$status" != 0 ]; then
    echo "run-pg.sh: smoke run incomplete (tidings-load exit $status); gateway log:" >&2
    cat "$tmp/gateway.log" >&2
fi
exit "$status"
