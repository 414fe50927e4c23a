#!/usr/bin/env bash
# Enforces the dependency rules of DESIGN.md section 1 on #include lines:
#   base/ includes nothing from the project;
#   conf/, auth/, fanout/ (and later listen/) include only base/ from the project, never each
#   other and never libwebsockets;
#   libwebsockets.h only in gateway/ and loadtest/; libpq only in listen/ and loadtest/;
#   hiredis only in fanout/ and loadtest/; libjwt only in auth/.
# Prints every violation as file:line and exits 1 when there is any.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0

violation() {
    echo "include rule: $1: $2"
    status=1
}

check_file() {
    local f=$1 mod=${1%%/*}
    while IFS=: read -r line text; do
        inc=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^>"]+)[>"].*/\1/' <<<"$text")
        case "$inc" in
        libwebsockets.h | libwebsockets/*)
            [[ $mod == gateway || $mod == loadtest || $mod == test ]] || violation "$f:$line" "$inc only in gateway/ and loadtest/" ;;
        libpq-fe.h | libpq/*)
            [[ $mod == listen || $mod == loadtest || $mod == test ]] || violation "$f:$line" "$inc only in listen/ and loadtest/" ;;
        hiredis/*)
            [[ $mod == fanout || $mod == loadtest || $mod == test ]] || violation "$f:$line" "$inc only in fanout/ and loadtest/" ;;
        jwt.h)
            [[ $mod == auth || $mod == test ]] || violation "$f:$line" "$inc only in auth/" ;;
        esac
        proj=${inc%%/*}
        if [[ $inc == */* && -d $proj && -f $inc ]]; then
            case "$mod" in
            base) [[ $proj == base ]] || violation "$f:$line" "base/ must not include $inc" ;;
            conf | auth | fanout | listen | filter)
                [[ $proj == base || $proj == "$mod" ]] || violation "$f:$line" "$mod/ may include only base/ and itself, not $inc" ;;
            esac
        fi
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include' "$f")
}

while IFS= read -r f; do
    case "$f" in
    build*/* | node_modules/*) continue ;;
    esac
    check_file "$f"
done < <(git ls-files --cached --others --exclude-standard -- '*.c' '*.h')

[ $status -eq 0 ] && echo "include rules: ok"
exit $status
