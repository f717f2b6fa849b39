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
case $PART in
  tuning) exec "$PY" -m specbench tune --preset paper $EXEC --out "$ROOT/results/tuning/reference" \
            --trainers spectral,spectral-2stage,backprop-rk4,backprop-dopri5,adjoint-dopri5,torchode-dopri5,torchode-adjoint,vf-node,multiple-shooting \
            --settings "$REF/specbench/running/presets/tuned.toml" ;;  # written once, after the last tuning run
  sweep) exec "$PY" -m specbench run --preset paper $EXEC --out "$ROOT/results/reference" --no-report ;;
  studies) for s in horizon order state-size regimes; do
             "$PY" -m specbench study "$s" $EXEC --out "$ROOT/results/studies/$s" --no-report; done ;;
esac
