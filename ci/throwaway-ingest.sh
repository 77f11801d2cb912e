# Sourced by the scripts that run a throwaway `humbex ingest` (schemathesis.sh, docs-render.sh): finds
# the binary, picks free ports and sets the environment for paper mode on a fresh database named
# after the caller ($1). Sets HUMBEX_BIN, port, paper_port, db; `start_ingest` starts the services and
# cleans up on exit (with whatever the caller adds to also_kill / also_remove).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${HUMBEX_BIN:-}" ]; then
    target_dir="$(cargo metadata --quiet --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
    HUMBEX_BIN="$target_dir/debug/humbex"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port="$(free_port)"
paper_port="$(free_port)"
db="humbex_$1_$$"
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
export BACKEND_HOST=127.0.0.1 BACKEND_PORT="$port" BYBIT_ENV=paper PAPER_HOST=127.0.0.1 PAPER_PORT="$paper_port" METRICS_PORT=0 RUST_LOG=error
export TRADINGVIEW_SECRET="$1-secret-0123456789"
export ENCRYPTION_KEY_HEX="4242424242424242424242424242424242424242424242424242424242424242"
export ADMIN_TOKEN="$1-admin-token-0123456789"
# CI runs as root; a throwaway ingest may (a real one refuses root).
export ALLOW_RUN_AS_ROOT=true

# Processes and paths removed on exit, with the database; callers may add their own.
also_kill=()
also_remove=()
cleanup() {
    kill "${also_kill[@]}" 2>/dev/null || true
    wait "${also_kill[@]}" 2>/dev/null || true
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "${also_remove[@]}"
}

# Until every URL answers 2xx (10 s at most).
wait_for() {
    for _ in $(seq 1 100); do
        local all=1 url
        for url in "$@"; do curl -sf "$url" >/dev/null || all=0; done
        [ "$all" = 1 ] && return 0
        sleep 0.1
    done
    return 1
}

# Migrate, start a paper exchange and ingest (their output in $ingest_log), clean up on exit, and
# wait until both answer.
start_ingest() {
    "$HUMBEX_BIN" migrate >/dev/null
    ingest_log="$(mktemp)"
    also_remove+=("$ingest_log")
    trap cleanup EXIT
    "$HUMBEX_BIN" paper-exchange >"$ingest_log" 2>&1 &
    also_kill+=($!)
    "$HUMBEX_BIN" ingest >>"$ingest_log" 2>&1 &
    also_kill+=($!)
    wait_for "http://127.0.0.1:$port/health" "http://127.0.0.1:$paper_port/v5/market/time"
}
