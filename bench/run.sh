#!/usr/bin/env bash
# feedfold benchmark suite (issue 7). Usage: bench/run.sh [--quick]
#
# Builds the bench binary and feedfold (release), sets up the Python peers in
# bench/.venv (skipped with a note when PyPI is unreachable), runs every
# benchmark and prints ONE table (markdown) at the end. Needs PostgreSQL:
# BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres)
# must be able to CREATE DATABASE; each benchmark makes its own ffbench_*
# database and drops it (BENCH_KEEP_DB=1 keeps the ingest store, and
# BENCH_REUSE_DB=NAME measures a kept one again without refilling). In --quick mode an unreachable PostgreSQL turns the
# PostgreSQL rows into "skipped"; in full mode it fails.
# Exit status: 0 unless a benchmark crashed. Numbers are never judged here.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
QUICK=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export BENCH_DATABASE_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
OUT="$ROOT/bench/out"
mkdir -p "$OUT"
LOG="$OUT/run-$(date -u +%Y%m%dT%H%M%SZ).log"
ROWS="$OUT/rows.tsv"
: > "$ROWS"

log() { echo "== $*" | tee -a "$LOG" >&2; }

log "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
log "building (release)"
if ! cargo build --release -q -p feedfold -p feedfold-bench 2>&1 | tee -a "$LOG" >&2; then
    echo "build failed" >&2
    exit 1
fi
BENCH="$CARGO_TARGET_DIR/release/feedfold-bench"
FEEDFOLD="$CARGO_TARGET_DIR/release/feedfold"

# Python peers: simhash (1e0ng), datasketch, feedparser.
PY=""
VENV="$ROOT/bench/.venv"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" >>"$LOG" 2>&1 || true
fi
if [ -x "$VENV/bin/python" ]; then
    if "$VENV/bin/python" -c 'import simhash, datasketch, feedparser' 2>/dev/null \
        || timeout 600 "$VENV/bin/pip" install -q --disable-pip-version-check simhash datasketch feedparser >>"$LOG" 2>&1; then
        PY="$VENV/bin/python"
        log "python peers: $("$PY" -c 'import importlib.metadata as m; print(", ".join(f"{p} {m.version(p)}" for p in ["simhash", "datasketch", "feedparser"]))')"
    fi
fi
if [ -z "$PY" ]; then
    log "Python peers skipped: could not set up bench/.venv (is PyPI reachable?)"
fi
PYARG=()
[ -n "$PY" ] && PYARG=(--python "$PY")

CRASHED=0
PG_OK=1
PG_REASON=""
if ! PG_REASON=$("$BENCH" pg-check 2>&1); then
    PG_OK=0
    if [ "$QUICK" = 0 ]; then
        echo "PostgreSQL is required for the full run: $PG_REASON" >&2
        exit 1
    fi
    log "PostgreSQL unreachable, its rows are skipped: $PG_REASON"
fi

# run NAME ARGS...: runs one benchmark, keeps its ROW lines.
run() {
    local name=$1
    shift
    log "$name: $BENCH $*"
    local start=$SECONDS
    "$BENCH" "$@" 2>&1 | tee -a "$LOG" | tee "$OUT/$name.out" | grep --line-buffered -v '^ROW' >&2
    local rc=${PIPESTATUS[0]}
    grep '^ROW' "$OUT/$name.out" | cut -f2- >> "$ROWS"
    if [ "$rc" != 0 ]; then
        CRASHED=1
        printf '%s\tFAILED (exit %s, see %s)\t-\t-\t-\n' "$name" "$rc" "$LOG" >> "$ROWS"
    fi
    log "$name took $((SECONDS - start)) s"
}

pg_skip() {
    printf '%s\tskipped: PostgreSQL unreachable (%s)\t-\t-\t-\n' "$1" "$(echo "$PG_REASON" | head -1 | cut -c1-80)" >> "$ROWS"
}

# Sizes can be overridden (the timed batch is small because ingest runs at
# about a hundred items/s today; see BENCHMARKS.md).
if [ "$QUICK" = 1 ]; then
    run ingest-sqlite ingest --backend sqlite --sizes 5000 --batch 500
    if [ "$PG_OK" = 1 ]; then
        run ingest-pg ingest --backend postgres --sizes 5000 --batch 500
        run fold-latency fold-latency --sizes 50000 --samples 200
    else
        pg_skip "ingest items/s into PostgreSQL"
        pg_skip "fold decision p50 / p99"
    fi
    run fingerprint fingerprint --docs 600 "${PYARG[@]}"
    run parse parse --sizes 10000,100000,1000000 --seconds 0.5 "${PYARG[@]}"
    run fanout fanout --feeds 1000 --hosts 100 --feedfold "$FEEDFOLD"
    run memory memory --feeds 1000 --hosts 100 --feedfold "$FEEDFOLD" --interval 30 --seconds 10
else
    # The defaults fit the 30-minute budget on 2 cores. The issue's full
    # matrix (ingest at 1M stored, fold latency at 10M stories) takes about
    # an hour more, bound by the database's bulk-load rate (BENCHMARKS.md):
    # BENCH_INGEST_SIZES=10000,100000,1000000 BENCH_FOLD_SIZES=1000000,10000000
    INGEST_SIZES=${BENCH_INGEST_SIZES:-10000,100000}
    INGEST_BATCH=${BENCH_INGEST_BATCH:-2000}
    FOLD_SIZES=${BENCH_FOLD_SIZES:-1000000}
    run ingest-sqlite ingest --backend sqlite --sizes "$INGEST_SIZES" --batch "$INGEST_BATCH"
    run ingest-pg ingest --backend postgres --sizes "$INGEST_SIZES" --batch "$INGEST_BATCH"
    run fold-latency fold-latency --sizes "$FOLD_SIZES" --samples 1000
    run fingerprint fingerprint --docs 3000 "${PYARG[@]}"
    run parse parse --sizes 10000,100000,1000000,5000000 --seconds 2 "${PYARG[@]}"
    run fanout fanout --feeds 10000 --hosts 1000 --feedfold "$FEEDFOLD"
    run memory memory --feeds 1000 --hosts 100 --feedfold "$FEEDFOLD" --interval 60 --seconds 60
fi

log "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
{
    echo
    echo "feedfold benchmarks ($([ "$QUICK" = 1 ] && echo quick || echo full)), $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo
    echo "| benchmark | feedfold | peer / floor | ratio | target |"
    echo "|---|---|---|---|---|"
    awk -F'\t' '{ printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5 }' "$ROWS"
} | tee -a "$LOG"
echo "(log: $LOG)"
exit "$CRASHED"
