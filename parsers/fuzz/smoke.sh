#!/usr/bin/env bash
# CI smoke fuzzing: every parser fuzz target for 20 s (see run.sh; installs
# cargo-fuzz if missing). Run from anywhere: bash parsers/fuzz/smoke.sh
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/run.sh" 20 "$@"
