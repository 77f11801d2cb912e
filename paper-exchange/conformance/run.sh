#!/usr/bin/env bash
# Builds humbex, starts `humbex paper-exchange` on a free loopback port, runs check.py against it with ccxt and
# pybit from a venv, and stops it. Exits non-zero when anything fails.
#   CARGO_TARGET_DIR  honoured as usual by cargo
#   PAPER_VENV        venv to use or create (default: <crate>/.venv)
set -euo pipefail

crate_dir="$(cd "$(dirname "$0")/.." && pwd)"
venv="${PAPER_VENV:-$crate_dir/.venv}"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$crate_dir/conformance/requirements.txt"

workspace_dir="$(cd "$crate_dir/.." && pwd)"
cargo build --quiet --manifest-path "$workspace_dir/Cargo.toml" -p humbex --bin humbex
# The binary lands in the workspace's target directory (CARGO_TARGET_DIR may move it), so ask cargo.
target_dir="$(cargo metadata --quiet --format-version 1 --no-deps --manifest-path "$workspace_dir/Cargo.toml" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"

log="$(mktemp)"
PAPER_HOST=127.0.0.1 PAPER_PORT=0 "$target_dir/debug/humbex" paper-exchange >"$log" 2>&1 &
server_pid=$!
cleanup() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    rm -f "$log"
}
trap cleanup EXIT

base_url=""
for _ in $(seq 1 100); do
    base_url="$(sed -n 's/^paper exchange listening on \(http:[^ ]*\)$/\1/p' "$log")"
    [ -n "$base_url" ] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "paper exchange exited early:" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$base_url" ]; then
    echo "paper exchange did not report its address:" >&2
    cat "$log" >&2
    exit 1
fi

echo "paper exchange at $base_url"
timeout 300 "$venv/bin/python" "$crate_dir/conformance/check.py" "$base_url"
