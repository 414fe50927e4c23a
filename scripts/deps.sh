#!/usr/bin/env bash
# Installs what tidings needs to build and test on Debian 12, only when missing:
# Debian packages (compiler, CMake, libraries, clang-format, Node.js) and the pinned npm
# packages of package-lock.json (supabase-js for the e2e tests and the demo page).
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential cmake pkg-config libwebsockets-dev libev-dev libjansson-dev libssl-dev libhiredis-dev
      libpq-dev clang-format postgresql redis-server python3 nginx-light libnginx-mod-nchan)
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    # RUNLEVEL=1: the nginx package (a benchmark peer, loadtest/peers/) must not start a
    # system nginx on port 80; the benchmarks start their own on free ports.
    $SUDO env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# npm packages, exactly as pinned in package-lock.json.
if [ ! -d node_modules/@supabase/supabase-js ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "deps: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
fi
