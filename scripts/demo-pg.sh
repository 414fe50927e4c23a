#!/usr/bin/env bash
# PostgreSQL side of the tidings demo (called by scripts/demo.sh):
#   demo-pg.sh start STATE_DIR TIDINGS_BIN
#       stops what a previous run may have left, starts a fresh throwaway PostgreSQL in
#       STATE_DIR/pg (test/support/pgtmp.sh), installs schema tidings with
#       `TIDINGS_BIN sql install --pg CONNINFO`, loads demo/kpis.sql, starts the KPI
#       generator (one psql fed `SELECT public.demo_tick();` every 300 ms; its process group
#       id in STATE_DIR/generator.pid, its output in STATE_DIR/generator.log) and prints the
#       conninfo on stdout (nothing else goes to stdout).
#   demo-pg.sh stop STATE_DIR
#       stops the generator (its whole process group) and PostgreSQL. Safe to repeat.
# The generator watches the process that called `start` (env DEMO_PG_OWNER overrides it):
# when that process is gone it stops itself and PostgreSQL, so nothing outlives the demo
# even if the caller is killed. Every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
cmd=${1:-}
state=${2:-}
usage() {
    echo "usage: demo-pg.sh start STATE_DIR TIDINGS_BIN | stop STATE_DIR" >&2
    exit 2
}
if [ -z "$cmd" ] || [ -z "$state" ]; then usage; fi

psql_bin() {
    local b
    # shellcheck disable=SC2012 # version directories: plain names
    b=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$b" ] && [ -x "$b/psql" ]; then
        echo "$b/psql"
    elif command -v psql >/dev/null 2>&1; then
        command -v psql
    else
        echo "demo-pg: psql not found (apt-get install postgresql)" >&2
        exit 1
    fi
}

# Stops the generator's process group (TERM, then KILL after 3 s).
stop_generator() {
    local pidfile=$state/generator.pid pid _
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    rm -f "$pidfile"
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    kill -TERM -- "-$pid" 2>/dev/null || return 0
    for _ in $(seq 30); do
        kill -0 -- "-$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
}

stop_all() {
    stop_generator
    [ -d "$state/pg" ] && bash "$root/test/support/pgtmp.sh" stop "$state/pg"
    return 0
}

# The generator: runs in its own session (process group = its pid), so `stop` can end it
# and its psql and sleep children at once, and Ctrl-C in the demo's terminal does not.
start_generator() {
    local conninfo=$1 owner=$2 psql=$3
    # shellcheck disable=SC2016 # expanded by the inner bash
    setsid bash -c '
        state=$1 conninfo=$2 owner=$3 psql=$4 root=$5
        echo $$ >"$state/generator.pid"
        trap "exit 0" TERM INT
        while kill -0 "$owner" 2>/dev/null; do
            echo "SELECT public.demo_tick();"
            sleep 0.3
        done | "$psql" -X -q -v ON_ERROR_STOP=1 -d "$conninfo" >/dev/null
        # Owner gone (or psql failed): take PostgreSQL down too, unless `stop` is doing it.
        if ! kill -0 "$owner" 2>/dev/null && [ -f "$state/generator.pid" ]; then
            rm -f "$state/generator.pid"
            bash "$root/test/support/pgtmp.sh" stop "$state/pg"
        fi
    ' demo-pg-generator "$state" "$conninfo" "$owner" "$psql" "$root" \
        </dev/null >>"$state/generator.log" 2>&1 &
    local _
    for _ in $(seq 50); do
        [ -s "$state/generator.pid" ] && return 0
        sleep 0.1
    done
    echo "demo-pg: the generator did not start (see $state/generator.log)" >&2
    return 1
}

case "$cmd" in
start)
    bin=${3:-}
    [ -n "$bin" ] || usage
    [ -x "$bin" ] || { echo "demo-pg: $bin is not executable" >&2; exit 1; }
    owner=${DEMO_PG_OWNER:-$PPID}
    mkdir -p "$state"
    state=$(cd "$state" && pwd)
    stop_all
    rm -rf "$state/pg" "$state/pg.initdb.log"
    psql=$(psql_bin)
    conninfo=$(bash "$root/test/support/pgtmp.sh" start "$state/pg")
    {
        "$bin" sql install --pg "$conninfo" >&2 &&
            "$psql" -X -q -v ON_ERROR_STOP=1 -d "$conninfo" -f "$root/demo/kpis.sql" >/dev/null &&
            start_generator "$conninfo" "$owner" "$psql"
    } || {
        echo "demo-pg: setup failed; stopping PostgreSQL" >&2
        stop_all
        exit 1
    }
    echo "$conninfo"
    ;;
stop)
    [ -d "$state" ] || exit 0
    state=$(cd "$state" && pwd)
    stop_all
    ;;
*)
    usage
    ;;
esac
