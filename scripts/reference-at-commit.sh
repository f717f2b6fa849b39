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
# The worktree's own `make reference-PART` (its Makefile's parts, directories and settings file), with this
# checkout's virtual environment, never re-installed (-o: its stamp counts as made), writing into this checkout's
# results/; the settings file is the worktree's: written by the tuning, read by the sweep and the studies.
exec make -C "$REF" -o "$ROOT/.venv/.installed" VENV="$ROOT/.venv" \
  REFERENCE="$ROOT/results/reference-2" REFERENCE_TUNING="$ROOT/results/tuning/reference-2" \
  REFERENCE_STUDIES="$ROOT/results/studies-2" MEASURED_TUNING="$ROOT/results/tuning/measured-2" "reference-$PART"
