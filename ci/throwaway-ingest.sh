# Sourced by the scripts that run a throwaway `humbex ingest` (schemathesis.sh, docs-render.sh): finds
# the binary, picks free ports and sets the environment for paper mode on a fresh database named
# after the caller ($1). Sets HUMBEX_BIN, port, paper_port, db.
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
export BACKEND_HOST=127.0.0.1 BACKEND_PORT="$port" BYBIT_ENV=paper PAPER_HOST=127.0.0.1 PAPER_PORT="$paper_port" RUST_LOG=error
export TRADINGVIEW_SECRET="$1-secret-0123456789"
export ENCRYPTION_KEY_HEX="4242424242424242424242424242424242424242424242424242424242424242"
export ADMIN_TOKEN="$1-admin-token-0123456789"
