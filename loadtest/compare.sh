#!/usr/bin/env bash
# compare.sh: tidings next to its peers, same scenarios, same run, one table.
#
# What: runs the same load against tidings and against what users would pick instead
# (loadtest/peers/: nchan = nginx + nchan module; relay = a hand-written Node `ws` relay),
# then writes one comparison table (figures of each server and ratios tidings/peer) into
# docs/BENCHMARKS.md between the markers <!-- compare:begin --> and <!-- compare:end -->
# (appended at the end when the markers are missing), with the machine, the date and the
# exact commands. Scenarios:
#   (a) fan-out efficiency: N subscribers of one topic, R msg/s of 200 B, T s: server CPU
#       µs per delivery, p99, drops; next to the write floor (tidings-floor, same N and R,
#       measured in the same run) and the ratio tidings/floor;
#   (b) peak fan-out: rates raised step by step (to the same N subscribers) until the
#       server no longer keeps up (a loss, or under 95 % of the rate published); the
#       highest deliveries/s each server held with p99 < 50 ms, and the highest it kept up
#       with at any p99;
#   (c) idle memory: M sockets held; server RSS bytes per connection.
#
# How: every server is started fresh for each scenario on a free 127.0.0.1 port, pinned to
# cpu 0 (taskset -c 0); the load tool (tidings-load, --target tidings for tidings and
# --target simple for the peers) runs on cpu 1 and samples the server's CPU and RSS through
# --gateway-pid. tidings runs with --workers 1 and its per-socket and per-IP limits raised
# so that only capacity can drop a message. tidings-floor's writer runs on cpu 0 and its
# reader child is moved to cpu 1, like a server and its clients. Every server is stopped
# by pid (trap), the temp dir removed. Every run is bounded (tidings-load stops by itself
# and is also wrapped in `timeout`).
#
# Usage: loadtest/compare.sh [options]
#   --build DIR        build tree with tidings-load, gateway/tidings, loadtest/tidings-floor
#                      (default: build)
#   --only LIST        comma list of servers: tidings,nchan,relay (default: all three;
#                      a peer that is not installed is then skipped with a note, while one
#                      named in --only must run)
#   --quick            small N and a few seconds per run (CI smoke: proves the script
#                      works); the table goes to --out, never into docs/
#   --out FILE         write the section to FILE instead of docs/BENCHMARKS.md
#   --clients N        (a)+(b) subscribers (default 5000; quick 200)
#   --seconds T        (a) measured seconds (default 20; quick 2)
#   --peak-seconds T   (b) seconds per rate (default 10; quick 2)
#   --rates "R ..."    (b) publish rates, ascending (default "5 10 20 50 100 200 400";
#                      quick "20 100")
#   --idle-clients M   (c) sockets held (default 10000; quick 300)
#   --keep DIR         keep the raw results (JSON of every run, logs) in DIR
# Exit status: 0 all runs done and the table written; 1 a run failed (set-up error, a
# server died, or in --quick any lost message); 2 usage or missing binaries.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build="$root/build" only="" quick=0 out="" keep=""
clients="" seconds="" peak_seconds="" rates="" idle_clients=""

die() { echo "compare.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --out) out=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --peak-seconds) peak_seconds=$2; shift 2 ;;
    --rates) rates=$2; shift 2 ;;
    --idle-clients) idle_clients=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done
if [ "$quick" = 1 ]; then
    [ -n "$out" ] || die "--quick needs --out FILE (quick figures never go into docs/)"
    : "${clients:=200}" "${seconds:=2}" "${peak_seconds:=2}" "${rates:=20 100}"
    : "${idle_clients:=300}"
    drain=1 idle_seconds=1
else
    : "${clients:=5000}" "${seconds:=20}" "${peak_seconds:=10}" "${rates:=5 10 20 50 100 200 400}"
    : "${idle_clients:=10000}"
    drain=2 idle_seconds=5
fi
for v in "$clients" "$seconds" "$peak_seconds" "$idle_clients" $rates; do
    [[ "$v" =~ ^[1-9][0-9]{0,6}$ ]] || die "not a positive number: $v"
done
[ -d "$build" ] || die "no build directory $build"
build=$(cd "$build" && pwd)
load=$build/tidings-load tidings=$build/gateway/tidings floor=$build/loadtest/tidings-floor
for b in "$load" "$tidings" "$floor"; do
    [ -x "$b" ] || die "$b is missing (build the targets tidings-load tidings tidings-floor)"
done
command -v node >/dev/null || die "node is missing (it parses the results)"
command -v curl >/dev/null || die "curl is missing"

# ------------------------------------------------------------------ which servers run

nchan_run=$here/peers/nchan/run.sh relay_dir=$here/peers/ws-relay
skipped="" # "server: reason" lines for the report
peer_missing() { # server: prints why it cannot run, or nothing
    case "$1" in
    tidings) ;;
    nchan)
        { command -v nginx || [ -x /usr/sbin/nginx ]; } >/dev/null ||
            echo "nginx is not installed (apt-get install nginx-light libnginx-mod-nchan)"
        [ -f "${NCHAN_MODULE:-/usr/lib/nginx/modules/ngx_nchan_module.so}" ] ||
            echo "the nchan module is not installed (apt-get install libnginx-mod-nchan)"
        ;;
    relay)
        (cd "$relay_dir" && node -e "import('ws')" 2>/dev/null) ||
            (cd "$relay_dir" && timeout 60 npm ci --no-audit --no-fund >/dev/null 2>&1) ||
            echo "the ws package is missing (npm ci in loadtest/peers/ws-relay)"
        ;;
    *) echo "unknown server" ;;
    esac
}
servers=""
for s in $(echo "${only:-tidings,nchan,relay}" | tr ',' ' '); do
    why=$(peer_missing "$s")
    if [ -z "$why" ]; then
        servers="$servers $s"
    elif [ -n "$only" ]; then
        die "$s cannot run: $why"
    else
        echo "compare.sh: skipping $s: $why" >&2
        skipped="$skipped$s: $why"$'\n'
    fi
done
[ -n "$servers" ] || die "no server to run"

if [ "$(nproc)" -ge 2 ]; then
    pin_srv=(taskset -c 0) pin_load=(taskset -c 1) pinned=yes
else
    pin_srv=() pin_load=() pinned=no
    echo "compare.sh: fewer than 2 CPUs: nothing is pinned" >&2
fi

# ------------------------------------------------------------------ temp dir, cleanup

# shellcheck source=loadtest/lib.sh
. "$here/lib.sh"
tmp=$(mktemp -d /tmp/tidings-compare.XXXXXX)
mkdir -p "$tmp/results" "$tmp/logs"
srv_pid="" srv_name="" srv_dir="" load_pid="" failed=0 retried=""
stop_server() {
    if [ "$srv_name" = nchan ] && [ -n "$srv_dir" ]; then
        "$nchan_run" stop "$srv_dir" || true
    else
        stop_pid "$srv_pid"
    fi
    srv_pid="" srv_name="" srv_dir=""
}
cleanup() {
    set +e
    stop_pid "$load_pid"
    stop_server
    if [ -n "$keep" ]; then
        mkdir -p "$keep" &&
            cp -r "$tmp/results" "$tmp/logs" "$tmp/commands.txt" "$tmp/runs.tsv" "$keep/"
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
token=$("$tidings" token --jwt_secret "$secret" --role admin --ttl 86400)

# Every command that produces a figure is logged (secret, token, ports, pids and the temp
# dir replaced by names) into commands.txt, which the report prints.
log_cmd() {
    local line="$*"
    line=${line//$secret/\$SECRET}
    line=${line//$token/\$TOKEN}
    line=${line//$tmp/\$TMP}
    line=${line//$build/build}
    line=${line//$root\//}
    [ -n "${port:-}" ] && line=${line//--port $port/--port \$PORT}
    [ -n "$srv_pid" ] && line=${line//--gateway-pid $srv_pid/--gateway-pid \$SERVER_PID}
    echo "$line" >>"$tmp/commands.txt"
}

wait_http() { # url pid: up to 15 s for a 200 while pid lives
    for _ in $(seq 1 150); do
        curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

start_server() { # name: sets srv_pid, port
    srv_name=$1
    port=$(free_port)
    local log=$tmp/logs/$1-$port.log
    case "$1" in
    tidings)
        local cmd=("${pin_srv[@]}" "$tidings" --port "$port" --jwt_secret "$secret" --workers 1
            --log_level warn --max_connections_per_ip 0 --max_joins_per_second 100000
            --max_events_per_second 1000000 --cluster_messages_per_second 0
            --cluster_joins_per_second 0 --cluster_connections_per_second 0
            --max_queue_messages 100000 --max_queue_bytes 67108864)
        "${cmd[@]}" >"$log" 2>&1 &
        srv_pid=$!
        log_cmd "${cmd[@]}"
        wait_http "http://127.0.0.1:$port/readyz" "$srv_pid" || { cat "$log" >&2; return 1; }
        ;;
    nchan)
        srv_dir=$tmp/nchan-$port
        mkdir -p "$srv_dir"
        if ! "${pin_srv[@]}" "$nchan_run" start "$srv_dir" "$port" >"$log" 2>&1; then
            cat "$log" >&2
            return 1
        fi
        srv_pid=$("$nchan_run" pid "$srv_dir")
        log_cmd "${pin_srv[@]}" "$nchan_run" start "\$DIR" "\$PORT"
        ;;
    relay)
        local cmd=("${pin_srv[@]}" node "$relay_dir/relay.mjs" --port "$port")
        (ulimit -n 20000 2>/dev/null || true; exec "${cmd[@]}") >"$log" 2>&1 &
        srv_pid=$!
        log_cmd "${cmd[@]}"
        wait_http "http://127.0.0.1:$port/healthz" "$srv_pid" || { cat "$log" >&2; return 1; }
        ;;
    esac
}

# ------------------------------------------------------------------ one load run

cpu_busy_max() { # busiest CPU's busy % over the next second (from /proc/stat)
    local a b
    a=$(grep '^cpu[0-9]' /proc/stat)
    sleep 1
    b=$(grep '^cpu[0-9]' /proc/stat)
    printf '%s\n%s\n' "$a" "$b" | awk '
        { idle = $5 + $6; tot = 0; for (i = 2; i <= NF; i++) tot += $i }
        $1 in t && tot > t[$1] {
            x = 100 * (1 - (idle - id[$1]) / (tot - t[$1]))
            if (x > m) m = x
        }
        { t[$1] = tot; id[$1] = idle }
        END { printf "%d\n", m }'
}

# The machine may be shared: before a measured run, wait (up to 30 s, not in --quick)
# until no CPU is more than 25 % busy.
wait_quiet() {
    [ "$quick" = 1 ] && return 0
    local b
    for _ in $(seq 1 30); do
        b=$(cpu_busy_max)
        [ "$b" -le 25 ] && return 0
    done
    echo "compare.sh: the machine stayed busy (a CPU at $b %): measuring anyway" >&2
}

# run_load SCENARIO NAME KEY [tidings-load options...]: runs the load tool against the
# current server, result in results/NAME-KEY.json, one line in runs.tsv; returns the exit
# status of tidings-load (0 complete, 1 lost something, 2+ failed).
run_load() {
    local scenario=$1 key=$2-$3 target=simple
    shift 3
    local targs=()
    if [ "$srv_name" = tidings ]; then target=tidings targs=(--token "$token"); fi
    local json=$tmp/results/$key.json
    local cmd=("${pin_load[@]}" "$load" "$scenario" --target "$target" --port "$port" "${targs[@]}"
        --gateway-pid "$srv_pid" --join-timeout 60 --drain "$drain" --progress off
        --label "$srv_name" --json "$json" "$@")
    log_cmd "${cmd[@]}"
    wait_quiet
    local rc=0
    timeout 600 "${cmd[@]}" >"$tmp/logs/$key.out" 2>&1 &
    load_pid=$! # in the background so that a signal stops the wait at once
    wait "$load_pid" || rc=$?
    load_pid=""
    printf '%s\t%s\t%s\t%s\n' "$scenario" "$srv_name" "$key" "$rc" >>"$tmp/runs.tsv"
    if [ "$rc" -ge 2 ] || [ ! -s "$json" ]; then
        echo "compare.sh: $key: tidings-load failed (exit $rc):" >&2
        tail -20 "$tmp/logs/$key.out" >&2
        return 2
    fi
    if ! kill -0 "$srv_pid" 2>/dev/null; then
        echo "compare.sh: $key: the $srv_name server died" >&2
        return 2
    fi
    echo "  $key: exit $rc; $(jfields "$json" deliveries_per_s latency_ms.p99 drops \
        gateway_us_per_delivery rss_bytes_per_conn)" >&2
    return "$rc"
}

jfields() { # file key...: "key=value ..." from results (null when absent)
    node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1])).results;
        console.log(process.argv.slice(2).map((k)=>{let v=r;
            for(const p of k.split("."))v=v==null?null:v[p];
            return k+"="+(typeof v==="number"?+v.toFixed(3):v)}).join(" "))' "$@"
}

keeps_up() { # json rate: complete, no drop, >= 95 % of the rate published (any p99)
    node "$here/peers/report.mjs" keeps-up "$1" "$2"
}
disturbed() { # json: a CPU was much busier than what runs on it (other jobs)
    node "$here/peers/report.mjs" disturbed "$1"
}

# A run that lost something (exit 1) is a figure in a benchmark, but a failure in --quick.
check() { # rc
    [ "$1" -ge 2 ] && failed=1
    [ "$1" = 1 ] && [ "$quick" = 1 ] && failed=1
    return 0
}

# ------------------------------------------------------------------ the floor

run_floor() {
    local json=$tmp/results/floor.json n=$clients
    [ "$n" -gt 9500 ] && n=9500
    local cmd=("${pin_srv[@]}" "$floor" --sockets "$n" --rate 20 --seconds "$seconds"
        --json "$json")
    log_cmd "${cmd[@]}"
    wait_quiet
    "${cmd[@]}" >"$tmp/logs/floor.out" 2>&1 &
    load_pid=$!
    local pid=$load_pid child=""
    if [ ${#pin_load[@]} -gt 0 ]; then # move the reader child to cpu 1, like a server's clients
        for _ in $(seq 1 200); do
            child=$(pgrep -P "$pid" | head -1 || true)
            [ -n "$child" ] && { taskset -a -p -c 1 "$child" >/dev/null 2>&1 || true; break; }
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
    fi
    local rc=0
    wait "$pid" || rc=$?
    load_pid=""
    echo "floor_reader_cpu1=$([ -n "$child" ] && echo yes || echo no)" >"$tmp/results/floor.meta"
    printf 'floor\tfloor\tfloor\t%s\n' "$rc" >>"$tmp/runs.tsv"
    if [ "$rc" != 0 ] || [ ! -s "$json" ]; then
        echo "compare.sh: tidings-floor failed (exit $rc):" >&2
        tail -20 "$tmp/logs/floor.out" >&2
        failed=1
    fi
}

# ------------------------------------------------------------------ the scenarios

loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
t0=$(date +%s)
: >"$tmp/runs.tsv"
: >"$tmp/commands.txt"

echo "compare.sh: servers:$servers; (a) $clients subscribers at 20 msg/s for $seconds s," \
    "(b) rates $rates for $peak_seconds s each, (c) $idle_clients idle sockets" >&2
echo "# (a) fan-out efficiency" >>"$tmp/commands.txt"
run_floor
for s in $servers; do
    start_server "$s" || { failed=1; stop_server; continue; }
    rc=0
    run_load fanout "$s" a --clients "$clients" --rate 20 --payload-bytes 200 \
        --seconds "$seconds" || rc=$?
    check "$rc"
    stop_server
done

echo "# (b) peak fan-out" >>"$tmp/commands.txt"
for s in $servers; do
    start_server "$s" || { failed=1; stop_server; continue; }
    for r in $rates; do
        for try in 1 2; do
            rc=0
            run_load fanout "$s" "b$r" --clients "$clients" --rate "$r" --payload-bytes 200 \
                --seconds "$peak_seconds" || rc=$?
            [ "$rc" -ge 2 ] && break
            keeps_up "$tmp/results/$s-b$r.json" "$r" && break
            # Not kept up: measure once more when other jobs disturbed the run.
            if [ "$try" = 2 ] || ! disturbed "$tmp/results/$s-b$r.json"; then break; fi
            echo "compare.sh: $s-b$r: disturbed by other jobs: once more" >&2
            sed -i '$d' "$tmp/runs.tsv" # the second run replaces the first
            retried="$retried$s $r msg/s"$'\n'
        done
        [ "$rc" -ge 2 ] && { failed=1; break; }
        keeps_up "$tmp/results/$s-b$r.json" "$r" || break # saturated: stop raising the rate
    done
    stop_server
done

echo "# (c) idle memory" >>"$tmp/commands.txt"
for s in $servers; do
    start_server "$s" || { failed=1; stop_server; continue; }
    rc=0
    run_load idle "$s" c --clients "$idle_clients" --seconds "$idle_seconds" || rc=$?
    check "$rc"
    stop_server
done
elapsed=$(($(date +%s) - t0))

# ------------------------------------------------------------------ the report

target_file=${out:-$root/docs/BENCHMARKS.md}
if [ "$failed" != 0 ] && [ -z "$out" ]; then
    echo "compare.sh: a run failed: docs/BENCHMARKS.md left unchanged" >&2
    exit 1
fi
versions() { # the software compared, one line
    local v ws_pkg
    v="tidings $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
    if [ -n "$(git -C "$root" status --porcelain 2>/dev/null | head -1)" ]; then
        v="$v (+ working tree changes)"
    fi
    if [[ " $servers " == *" nchan "* ]]; then
        v="$v, nginx $(dpkg-query -W -f '${Version}' nginx-common 2>/dev/null || echo '?')"
        v="$v + nchan $(dpkg-query -W -f '${Version}' libnginx-mod-nchan 2>/dev/null || echo '?')"
    fi
    if [[ " $servers " == *" relay "* ]]; then
        ws_pkg=$(cd "$relay_dir" && node -p 'require.resolve("ws/package.json")')
        v="$v, node $(node --version) + ws $(node -p "require('$ws_pkg').version")"
    fi
    echo "$v"
}

export CMP_DIR=$tmp CMP_TARGET=$target_file CMP_REPLACE=1
[ -n "$out" ] && CMP_REPLACE=0
export CMP_NPROC CMP_CPU CMP_KERNEL CMP_VERSIONS
CMP_NPROC=$(nproc)
CMP_CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
CMP_KERNEL=$(uname -r)
CMP_VERSIONS=$(versions)
export CMP_STARTED=$started CMP_ELAPSED=$elapsed CMP_LOADAVG=$loadavg_before CMP_QUICK=$quick
export CMP_SKIPPED=$skipped CMP_RETRIED=$retried CMP_PINNED=$pinned
export CMP_ARGS="clients=$clients seconds=$seconds peak_seconds=$peak_seconds rates=$rates \
idle=$idle_clients"
node "$here/peers/report.mjs" || { echo "compare.sh: the report failed" >&2; exit 1; }
echo "compare.sh: table written to $target_file (${elapsed} s of runs)" >&2
[ "$failed" = 0 ] || { echo "compare.sh: some runs failed (see the table)" >&2; exit 1; }
