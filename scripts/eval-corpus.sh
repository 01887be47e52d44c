#!/usr/bin/env bash
# Ingests ../shared/corpus/dev into a fresh database with the real binary and
# prints score.py's report. Usage: scripts/eval-corpus.sh [sqlite|postgres]
#   FEEDFOLD_BIN    binary to use (default: builds target/debug/feedfold)
#   CORPUS          corpus directory (default: ../shared/corpus beside the repo)
#   EVAL_PG_ADMIN   admin URL for creating the PostgreSQL database
#                   (default postgres://postgres@127.0.0.1:5432/postgres)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
backend=${1:-sqlite}
corpus=${CORPUS:-$root/../shared/corpus}
if [ ! -f "$corpus/dev/truth.tsv" ]; then
  echo "corpus not found at $corpus (set CORPUS)" >&2
  exit 2
fi
if [ -z "${FEEDFOLD_BIN:-}" ]; then
  (cd "$root" && cargo build --quiet)
  FEEDFOLD_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/feedfold"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# No config file from the working directory leaks in.
cd "$work"

case "$backend" in
  sqlite)
    db="sqlite:$work/feedfold.db"
    export_rows() { sqlite3 -separator $'\t' "$work/feedfold.db" "$1"; }
    ;;
  postgres)
    admin=${EVAL_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
    name="feedfold_eval_$$"
    psql -q "$admin" -c "DROP DATABASE IF EXISTS $name" >/dev/null
    psql -q "$admin" -c "CREATE DATABASE $name" >/dev/null
    trap 'psql -q "$admin" -c "DROP DATABASE IF EXISTS $name" >/dev/null; rm -rf "$work"' EXIT
    db="${admin%/*}/$name"
    export_rows() { psql -At -F $'\t' "$db" -c "$1"; }
    ;;
  *) echo "usage: $0 [sqlite|postgres]" >&2; exit 2 ;;
esac

ff() { "$FEEDFOLD_BIN" --database "$db" "$@"; }
for f in "$corpus"/dev/feeds/*; do ff feeds add "$f" >/dev/null; done
expected=$(tail -n +2 "$corpus/dev/truth.tsv" | grep -c .)
echo "== $backend: first pass"
first=$(ff poll --once | tail -n 1); echo "$first"
echo "== $backend: second pass (must add nothing)"
second=$(ff poll --once | tail -n 1); echo "$second"
case "$first" in *"items: $expected new"*) ;; *) echo "FAIL: expected $expected new items" >&2; exit 1 ;; esac
case "$second" in *"items: 0 new, $expected already seen"*) ;; *) echo "FAIL: the second pass stored something" >&2; exit 1 ;; esac
export_rows "SELECT coalesce(nullif(i.guid, ''), i.url) AS key, i.story_id AS assigned_story,
       CASE WHEN s.canonical_item_id = i.id THEN 1 ELSE 0 END AS is_canonical
FROM items i JOIN stories s ON s.id = i.story_id" > "$work/assignment.tsv"
echo "== $backend: items stored: $(wc -l < "$work/assignment.tsv")"
if [ "$backend" = sqlite ]; then
  echo "== sqlite: database size $(du -k "$work/feedfold.db" | cut -f1) KiB"
fi
python3 "$corpus/score.py" "$corpus/dev/truth.tsv" "$work/assignment.tsv"
