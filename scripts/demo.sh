#!/usr/bin/env bash
# Starts the tidings demo: installs what is missing, builds, and runs the gateway in its
# embedded default (one process, all state in memory) with the demo page at /demo/.
# Prints the URL and development tokens. Ctrl-C stops everything this script started.
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

cat <<MSG

  tidings demo (embedded mode: one process, state in memory)
  gateway:    http://$bind:$port   (WebSocket ws://$bind:$port/realtime/v1/websocket)
  demo page:  http://$bind:$port/demo/#key=$user
              open it in two browser tabs: each sees the other's broadcasts and presence
  admin token (24 h): $admin
  user token  (24 h): $user
  supabase-js:  createClient('http://$bind:$port', '<token>')
  metrics:    http://$bind:$port/metrics     health: /healthz  /readyz
  Ctrl-C stops the gateway.

MSG
exec "$bin" --bind "$bind" --port "$port" --demo_dir "$state/www" \
    --rule "allow any all * role=admin|super_admin"
