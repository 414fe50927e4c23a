# shellcheck shell=bash
# lib.sh: helpers the load scripts share (sourced, not run): a free TCP port on 127.0.0.1
# and stopping a process by pid (TERM, wait, then KILL). Every server a script starts is
# stopped by its pid, never by name.

free_port() { # prints a port that was free a moment ago
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

stop_pid() { # pid [tenths of a second to wait before KILL, default 100]
    [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 0
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 1 "${2:-100}"); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$1" 2>/dev/null && kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null || true
}
