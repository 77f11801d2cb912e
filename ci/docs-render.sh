#!/usr/bin/env bash
# docs/security.md#docs-ui-and-security-headers (checklist row 17), in a real browser: the docs UI
# renders under its own Content-Security-Policy, and `?url=` / `?configUrl=` cannot make it load a
# foreign spec. Starts `humbex ingest` on a fresh database and a second local origin serving a decoy
# spec, loads /docs in headless Chromium, and checks the rendered page (operations drawn, our title,
# no decoy). Saves a screenshot. Run by .ci/run, which installs Chromium when it is missing.
#   HUMBEX_BIN  the humbex binary (default: the workspace's target/debug/humbex)
#   CHROMIUM    the browser (default: chromium)
#   SHOT        where the screenshot goes (default: a temporary file, path printed)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
chromium="${CHROMIUM:-chromium}"
command -v "$chromium" >/dev/null || { echo "no $chromium: apt-get install chromium" >&2; exit 2; }
# shellcheck source=throwaway-ingest.sh
. "$root/ci/throwaway-ingest.sh" docs_render
decoy_port="$(free_port)"
work="$(mktemp -d)"
start_ingest
also_remove+=("$work")
# The decoy: another origin serving a spec (and a Swagger config) that name it.
mkdir -p "$work/decoy"
printf '{"openapi":"3.0.0","info":{"title":"DECOY-SPEC","version":"1"},"paths":{}}' >"$work/decoy/spec.json"
printf '{"url":"http://127.0.0.1:%s/spec.json"}' "$decoy_port" >"$work/decoy/config.json"
python3 -m http.server "$decoy_port" --bind 127.0.0.1 --directory "$work/decoy" >/dev/null 2>&1 &
also_kill+=($!)
wait_for "http://127.0.0.1:$decoy_port/spec.json"

decoy="http://127.0.0.1:$decoy_port"
page="http://127.0.0.1:$port/docs?url=$decoy/spec.json&configUrl=$decoy/config.json"
browser=("$chromium" --headless=new --no-sandbox --disable-gpu --no-first-run --virtual-time-budget=15000
         --window-size=1280,1600)
"${browser[@]}" --dump-dom "$page" >"$work/dom.html" 2>"$work/chromium.log"
shot="${SHOT:-$(mktemp --suffix=.png)}"
"${browser[@]}" --screenshot="$shot" "$page" >/dev/null 2>&1

fail=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAILED: $1"; fail=1; fi; }
check "Swagger UI drew the operations (its scripts ran under the CSP)" "grep -q 'opblock' '$work/dom.html'"
check "the page shows HUMBEX's own spec" "grep -q 'HUMBEX' '$work/dom.html'"
check "the decoy spec named in ?url= / ?configUrl= was not loaded" "! grep -q 'DECOY-SPEC' '$work/dom.html'"
echo "screenshot: $shot"
exit "$fail"
