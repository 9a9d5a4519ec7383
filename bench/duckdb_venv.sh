# Sourced by the bench scripts: the pinned DuckDB (Python) they measure
# calltrail against, in a venv (default ~/.cache/calltrail/bench-venv,
# CALLTRAIL_BENCH_VENV to override), installed on first use. Sets
# DUCKDB_VERSION and duckdb_py (the venv's python).
DUCKDB_VERSION=2.0.0
duckdb_venv=${CALLTRAIL_BENCH_VENV:-$HOME/.cache/calltrail/bench-venv}
duckdb_py=$duckdb_venv/bin/python
if ! "$duckdb_py" -c "import duckdb, sys; sys.exit(duckdb.__version__ != '$DUCKDB_VERSION')" 2>/dev/null; then
    echo "bench: installing duckdb==$DUCKDB_VERSION into $duckdb_venv"
    python3 -m venv "$duckdb_venv" || {
        echo "bench: python3 -m venv failed (apt-get install python3-venv)" >&2
        exit 2
    }
    "$duckdb_venv/bin/pip" install -q --disable-pip-version-check "duckdb==$DUCKDB_VERSION"
fi
