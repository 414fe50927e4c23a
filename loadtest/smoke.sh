#!/usr/bin/env bash
# smoke.sh: the CI smoke test of tidings-load (one CTest per scenario, label loadtest).
#
# Starts a gateway (--workers 1) on a free 127.0.0.1 port with a random --jwt_secret and
# the per-IP, per-socket and cluster limits raised so that only a bug can drop a message,
# signs an admin token with `tidings token`, runs each asked scenario small (100-200
# sockets, 2-4 s) with --json, and checks the exit status 0 and the key results with
# `node -e` (complete, every socket connected, nothing lost, duplicated or misrouted,
# latencies and the scenario's own figures present and sane). After fanout it also runs
# `tidings-load plot` and checks the SVG. db runs through run-pg.sh --smoke when the
# PostgreSQL server binaries exist (skipped otherwise). Everything it started is stopped by
# pid (trap) and the temp dir removed. Timings are never asserted.
#
#   smoke.sh [--build DIR | --tidings BIN --load BIN] [--scenario S]  (S: a scenario or all)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build="$root/build" tidings="" load="" scenario=all

while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$2; shift 2 ;;
    --tidings) tidings=$2; shift 2 ;;
    --load) load=$2; shift 2 ;;
    --scenario) scenario=$2; shift 2 ;;
    *) echo "smoke.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
tidings=${tidings:-$build/gateway/tidings}
load=${load:-$build/tidings-load}
for b in "$tidings" "$load"; do
    [ -x "$b" ] || { echo "smoke.sh: $b is missing (build the tree first)" >&2; exit 2; }
done
command -v node >/dev/null || { echo "smoke.sh: node is required" >&2; exit 2; }

if [ "$scenario" = db ]; then
    exec "$here/run-pg.sh" --smoke --tidings "$tidings" --load "$load"
fi

# shellcheck source=loadtest/lib.sh
. "$here/lib.sh"
tmp=$(mktemp -d /tmp/tidings-smoke.XXXXXX)
gw_pid=""
cleanup() {
    set +e
    stop_pid "$gw_pid" 50
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

port=$(free_port)
secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
token=$("$tidings" token --jwt_secret "$secret" --role admin --ttl 3600)
"$tidings" --port "$port" --jwt_secret "$secret" --workers 1 --max_connections_per_ip 0 \
    --max_joins_per_second 100000 --max_events_per_second 1000000 \
    --cluster_messages_per_second 0 --cluster_joins_per_second 0 \
    --cluster_connections_per_second 0 --rule 'allow private all bench* role=admin' \
    --log_level warn >"$tmp/gateway.log" 2>&1 &
gw_pid=$!
up=0
for _ in $(seq 1 100); do
    if node -e 'require("net").connect(+process.argv[1],"127.0.0.1").on("connect",()=>process.exit(0)).on("error",()=>process.exit(1))' "$port"; then
        up=1
        break
    fi
    kill -0 "$gw_pid" 2>/dev/null || break
    sleep 0.1
done
if [ "$up" != 1 ]; then
    echo "smoke.sh: the gateway did not start; its log:" >&2
    cat "$tmp/gateway.log" >&2
    exit 2
fi

# The checks every scenario shares, then the scenario's own (node, on the JSON result).
check() { # scenario json
    node - "$1" "$2" <<'JS'
const [sc, file] = process.argv.slice(2);
const j = JSON.parse(require("fs").readFileSync(file, "utf8"));
const r = j.results, fail = [];
const need = (ok, what) => { if (!ok) fail.push(what); };
const isNum = (v) => typeof v === "number" && Number.isFinite(v);
need(j.tool === "tidings-load" && j.format === 1 && j.scenario === sc, "header");
need(j.params && j.params.clients === r.sockets && j.params.target === "tidings", "params");
need(r.complete === true, "complete");
need(r.sockets > 0 && r.connected === r.sockets, "every socket connected");
for (const k of ["connect_failed", "disconnects", "drops", "duplicates", "gaps"])
    need(r[k] === 0, k + " = 0");
need(isNum(r.join_ms.p99) && r.join_ms.p99 > 0 && r.join_ms.max >= r.join_ms.p50, "join_ms");
need(isNum(r.connect_rate_per_s) && r.connect_rate_per_s > 0, "connect rate");
need(isNum(r.gateway_cpu_pct) && r.gateway_rss_kb_held > 0, "gateway sampled");
need(Array.isArray(j.timeline) && j.timeline.length >= 2 &&
     j.timeline.every((s) => isNum(s.t_s) && isNum(s.deliveries_per_s)), "timeline");
if (sc === "idle") {
    need(r.published === 0 && r.deliveries_per_s === null, "idle publishes nothing");
    need(isNum(r.rss_bytes_per_conn) && r.sockstat_tcp_mem_pages_held >= 0, "idle memory");
    need(r.subscriber_counters.hb_ok > 0, "heartbeats answered");
} else {
    need(r.published > 0 && r.expected > 0 && r.received === r.expected, "received = expected");
    need(isNum(r.latency_ms.p99) && r.latency_ms.p50 <= r.latency_ms.p99 &&
         r.latency_ms.p99 <= r.latency_ms.max, "latency_ms");
    need(isNum(r.deliveries_per_s) && r.deliveries_per_s > 0, "deliveries/s");
    need(j.timeline.some((s) => s.deliveries_per_s > 0 && s.p99_ms > 0), "timeline traffic");
}
if (sc === "churn" || sc === "soak")
    need(r.churn_cycles > 0 && r.churn_failed === 0, "churn cycles");
else
    need(r.churn_cycles === null, "no churn");
if (sc === "soak")
    need(isNum(r.rss_slope_kb_per_min), "rss slope");
if (sc === "many-topics") { // private channels with presence on the own topics
    const c = r.subscriber_counters;
    need(j.params.private === 1 && j.params.presence === 1, "private + presence params");
    need(c.tracks_sent === r.sockets && c.tracks_ok === r.sockets, "every own channel tracked");
    need(c.presence_in >= 2 * r.sockets, "presence_state and diff received");
}
if (fail.length) {
    console.error(`smoke ${sc}: failed checks: ${fail.join(", ")}`);
    console.error(JSON.stringify(r, null, 1));
    process.exit(1);
}
JS
}

run() { # scenario args...
    local sc=$1 rc=0
    shift
    echo "## $sc"
    timeout 50 "$load" "$sc" --port "$port" --token "$token" --gateway-pid "$gw_pid" \
        --json "$tmp/$sc.json" --progress off "$@" >"$tmp/$sc.txt" 2>&1 || rc=$?
    cat "$tmp/$sc.txt"
    if [ "$rc" != 0 ]; then
        echo "smoke.sh: tidings-load $sc exited $rc; gateway log:" >&2
        cat "$tmp/gateway.log" >&2
        exit 1
    fi
    check "$sc" "$tmp/$sc.json"
}

plot() {
    "$load" plot "$tmp/fanout.json" "$tmp/fanout.svg"
    head -c 400 "$tmp/fanout.svg" | grep -q "<svg" || { echo "smoke.sh: no <svg> in the plot" >&2; exit 1; }
    tail -c 100 "$tmp/fanout.svg" | grep -q "</svg>" || { echo "smoke.sh: the plot is cut" >&2; exit 1; }
    grep -q "<polyline\|<path" "$tmp/fanout.svg" || { echo "smoke.sh: the plot has no line" >&2; exit 1; }
    if "$load" plot "$tmp/missing.json" "$tmp/x.svg" 2>/dev/null; then
        echo "smoke.sh: plot of a missing file succeeded" >&2
        exit 1
    fi
}

case "$scenario" in
idle | all) run idle --clients 200 --seconds 2.5 --heartbeat-s 1 ;;&
fanout | all) run fanout --clients 200 --seconds 3 --rate 20 && plot ;;&
many-topics | all) run many-topics --clients 100 --seconds 3 --rate 10 --own-rate 100 \
    --private 1 --presence 1 ;;&
churn | all) run churn --clients 100 --seconds 3 --rate 10 --churn-rate 50 ;;&
soak | all)
    run soak --clients 100 --seconds 4 --rate 10 --own-rate 100 --churn-rate 20 \
        --publishers 2 --per-post 2 --heartbeat-s 1
    ;;&
idle | fanout | many-topics | churn | soak | all) ;;
*) echo "smoke.sh: unknown scenario $scenario" >&2; exit 2 ;;
esac
if [ "$scenario" = all ] && ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    "$here/run-pg.sh" --smoke --tidings "$tidings" --load "$load"
fi
echo "smoke.sh: ok"
