#!/usr/bin/env bash
# Starts the tidings demo: installs what is missing, builds, starts a throwaway PostgreSQL
# with a small KPI table and a generator (scripts/demo-pg.sh) and a throwaway Redis, and
# runs the gateway as a cluster of two worker processes on one port (broadcast, presence
# and postgres_changes shared through Redis; one worker holds the PostgreSQL lease) with
# the demo pages at /demo/: the chat demo and the live KPI dashboard. Prints the URLs and
# development tokens. Ctrl-C stops everything this script started.
# Environment: PORT (default 4000), BIND (default 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PORT:-4000}
bind=${BIND:-127.0.0.1}

scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target tidings >/dev/null

state=.state/demo
rm -rf "$state/www"
mkdir -p "$state/www"
cp demo/www/* "$state/www/"
cp node_modules/@supabase/supabase-js/dist/umd/supabase.js "$state/www/"
[ -f "$state/secret" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$state/secret"
export TIDINGS_JWT_SECRET
TIDINGS_JWT_SECRET=$(cat "$state/secret")

bin=build/gateway/tidings
admin=$($bin token --role admin --sub demo-admin --ttl 86400)
user=$($bin token --role user --sub demo-user --ttl 86400)
partner=$($bin token --role user --sub demo-partner --claim business_id=1 --ttl 86400)
conninfo=$(DEMO_PG_OWNER=$$ scripts/demo-pg.sh start "$state" "$bin")
redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$state" >"$state/redis.log" 2>&1 &
redis_pid=$!
trap 'kill "$redis_pid" 2>/dev/null; scripts/demo-pg.sh stop "$state"' EXIT

cat <<MSG

  tidings demo (2 worker processes on one port, sharing Redis 127.0.0.1:$redis_port; PostgreSQL for changes)
  gateway:    http://$bind:$port   (WebSocket ws://$bind:$port/realtime/v1/websocket)
  chat demo:  http://$bind:$port/demo/#key=$user
              open it in two browser tabs: each sees the other's broadcasts and presence
  KPI page:   http://$bind:$port/demo/kpis#admin=$admin&partner=$partner&business=1
              live postgres_changes: the admin sees every business, partner 1 only its own rows
  postgres:   $conninfo   (throwaway, in $state/pg; a generator updates the KPIs every 300 ms)
  admin token (24 h): $admin
  user token  (24 h): $user
  supabase-js:  createClient('http://$bind:$port', '<token>')
  metrics:    http://$bind:$port/metrics     health: /healthz  /readyz
  Ctrl-C stops the gateway.

MSG
"$bin" --bind "$bind" --port "$port" --demo_dir "$state/www" \
    --workers 2 --redis "redis://127.0.0.1:$redis_port" \
    --rule "allow any all * role=admin|super_admin" \
    --pg "$conninfo" --notify_channel cache_invalidation \
    --row_rule "* all role=admin|super_admin" \
    --row_rule "public.daily_kpis business_id={business_id}"
