#!/usr/bin/env bash
# Throwaway PostgreSQL for tests and the demo: a fresh data dir and a free loopback port.
#   pgtmp.sh start DIR   -> initdb DIR (if new), start on a free port, print the conninfo
#   pgtmp.sh stop DIR    -> stop the server of DIR (by the pid in DIR/postmaster.pid)
# Runs the server as user postgres when called as root (PostgreSQL refuses root).
# The database `tidings` is created; the superuser is `postgres`, trust auth on 127.0.0.1.
set -euo pipefail
cmd=${1:?usage: pgtmp.sh start|stop DIR}
dir=${2:?usage: pgtmp.sh start|stop DIR}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bin/pg_ctl" ] || { echo "pgtmp: PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

case "$cmd" in
start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
        as_pg "$bin/initdb" -D "$dir" -U postgres -A trust --no-sync -E UTF8 >"$dir.initdb.log" 2>&1 ||
            { cat "$dir.initdb.log" >&2; exit 1; }
    fi
    port=$(free_port)
    as_pg "$bin/pg_ctl" -D "$dir" -w -t 30 -l "$dir/server.log" \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
        start >/dev/null
    echo "$port" >"$dir/port"
    "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qAt \
        -c "SELECT 1 FROM pg_database WHERE datname='tidings'" | grep -q 1 ||
        "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres tidings
    echo "host=127.0.0.1 port=$port dbname=tidings user=postgres"
    ;;
stop)
    if [ -f "$dir/postmaster.pid" ]; then
        as_pg "$bin/pg_ctl" -D "$dir" -m fast -w -t 30 stop >/dev/null 2>&1 || {
            pid=$(head -n 1 "$dir/postmaster.pid")
            kill -TERM "$pid" 2>/dev/null || true
        }
    fi
    ;;
*)
    echo "usage: pgtmp.sh start|stop DIR" >&2
    exit 2
    ;;
esac
