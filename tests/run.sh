#!/usr/bin/env bash
# The project's test command: `bash tests/run.sh [extra cargo test args]`.
# Installs the test tools if needed, then checks formatting, lints and runs
# all tests. Builds go to cargo's usual target dir (./target, shared with
# `cargo run`), or $CARGO_TARGET_DIR when set (.ci/run sets a persistent one).
set -euo pipefail
cd "$(dirname "$0")/.."

# Runs one stage and prints how long it took.
stage() {
    local name=$1 start=$SECONDS
    shift
    echo "==> $name"
    if "$@"; then
        echo "==> $name: ok ($((SECONDS - start)) s)"
    else
        local rc=$?
        echo "==> $name: FAILED with exit code $rc ($((SECONDS - start)) s)"
        exit "$rc"
    fi
}

CALLTRAIL_SETUP_QUIET=1 stage "setup (tests/setup.sh)" bash tests/setup.sh
stage "cargo fmt --check" cargo fmt --all -- --check
stage "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
stage "cargo test" cargo test --workspace "$@"
