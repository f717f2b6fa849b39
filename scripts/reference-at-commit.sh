#!/usr/bin/env bash
# One part of `make reference` (tuning | sweep | studies) run from a git worktree pinned at COMMIT, writing its
# records into this checkout's results/. Every record carries the commit its code was at (env.git_commit); run from
# the checkout itself, committing the records that have arrived (or anything else) during a stretch of several hours
# would change that commit half-way. Resumable like the make targets: run it again and it skips the runs it has.
#
#   scripts/reference-at-commit.sh COMMIT tuning|sweep|studies [WORKTREE]     (WORKTREE default: ../specbench-ref)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
COMMIT=${1:?usage: $0 COMMIT tuning|sweep|studies [WORKTREE]}
PART=${2:?usage: $0 COMMIT tuning|sweep|studies [WORKTREE]}
REF=$(realpath -m "${3:-$ROOT/../specbench-ref}")
# The arguments are checked before any worktree is made or moved: a typo leaves everything as it was.
case $PART in
  tuning|sweep|studies) ;;
  *) echo "unknown part $PART: tuning, sweep or studies" >&2; exit 2 ;;
esac
git -C "$ROOT" rev-parse -q --verify "$COMMIT^{commit}" >/dev/null ||
  { echo "unknown commit $COMMIT in $ROOT" >&2; exit 2; }
[ -d "$REF" ] || git -C "$ROOT" worktree add --detach "$REF" "$COMMIT"
git -C "$REF" checkout -q --detach "$COMMIT"
cd "$REF"
export PYTHONPATH=$REF  # the worktree's package before the checkout's editable install
PY=$ROOT/.venv/bin/python
EXEC="--workers 2 --threads 1"
# The parts of `make reference` (round two, issue 39: the Makefile's REFERENCE* and MEASURED* directories, beside the
# first reference, which stays as history). The settings file is the worktree's: written by the tuning, read by the
# sweep and the studies that run from the same worktree.
TUNED=$REF/specbench/running/presets/tuned.toml
ALL=$("$PY" -m specbench list --trainers)
case $PART in
  tuning) "$PY" -m specbench tune --preset paper $EXEC --trainers "$ALL" --out "$ROOT/results/tuning/reference-2" \
            --settings "$TUNED"
          exec "$PY" -m specbench tune --preset measured --trainers "$ALL" --budget 120 $EXEC \
            --out "$ROOT/results/tuning/measured-2" --settings "$TUNED" ;;
  sweep) "$PY" -m specbench run --preset paper $EXEC --out "$ROOT/results/reference-2" --no-report
         exec "$PY" -m specbench run --preset measured --trainers "$ALL" --seeds 5 $EXEC \
           --out "$ROOT/results/reference-2" --no-report ;;
  studies) for s in horizon order state-size regimes; do
             "$PY" -m specbench study "$s" $EXEC --out "$ROOT/results/studies-2/$s" --no-report; done ;;
esac
