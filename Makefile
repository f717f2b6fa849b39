# The two commands a new user types: `make run` (set up, quick comparison, report) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
OUT ?= runs/quick

.PHONY: setup run test test-fast work-check work-reference asv-smoke clean reference reference-tuning reference-sweep \
	reference-studies rivals

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

run: setup
	$(BIN)/specbench run --preset quick --workers 2 --threads 1 --out $(OUT)

test: setup  # on every core (pytest-xdist); the slowest tests are listed at the end, to keep CI's time in sight
	$(BIN)/python -m pytest -q -n auto --durations=15

# The edit loop: every test but those marked slow (whole sweeps in fresh processes, Dask clusters, long training).
# `make test`, which CI runs, runs them all.
test-fast: setup
	$(BIN)/python -m pytest -q -n auto -m "not slow" --durations=5

# The exact work gate (docs/asv-and-gate.md): iteration-budgeted runs of every system x trainer, compared with
# the committed reference; about 5 minutes of CPU (3.3 min with the two workers used here). After an intended
# change, `make work-reference` and commit it.
WORK_REFERENCE := results/work/reference.json
ONE_THREAD := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

work-check: setup
	$(ONE_THREAD) $(BIN)/specbench work --check $(WORK_REFERENCE) --workers 2

work-reference: setup
	$(ONE_THREAD) $(BIN)/specbench work --out $(WORK_REFERENCE) --workers 2

# asv's checks and a quick run of a corner of the suite against the working tree (CI runs this after the tests).
asv-smoke: setup
	$(BIN)/asv machine --yes > /dev/null
	$(BIN)/asv check -E existing
	SPECBENCH_ASV_SYSTEMS=oscillator SPECBENCH_ASV_TRAINERS=spectral,backprop-rk4 \
		$(BIN)/asv run -E existing --quick --show-stderr

clean:
	rm -rf $(VENV) .cache

# The reference behind reports/reference (issue 26), at one commit, resumable: every part skips the runs it has,
# so an interrupted `make reference` goes on where it stopped. Machine time with two workers, as measured for the
# committed one (docs/reference.md, "Machine time"): tuning about 6.3 h (9 trainers x 10 cells, 12 points each by
# successive halving on each cell's budget), the sweep 3.4 h (9 trainers x 10 cells x 5 seeds, the paper preset's
# budgets), the studies 51 min.
SB := $(BIN)/specbench
EXEC ?= --workers 2 --threads 1
# Every registered trainer (built-ins, entry points, SPECBENCH_PLUGINS), as the registry lists them: a new trainer is
# in the reference with no edit here. Expanded where a recipe uses it (`=`, not `:=`), so other targets never run it.
ALL_TRAINERS = $(shell $(SB) list --trainers)
TUNED := specbench/running/presets/tuned.toml

reference: reference-tuning reference-sweep reference-studies
	$(SB) report results/reference --studies results/studies --out reports/reference --readme README.md

reference-tuning: setup
	$(SB) tune --preset paper --trainers $(ALL_TRAINERS) $(EXEC) --out results/tuning/reference --settings $(TUNED)

reference-sweep: setup
	$(SB) run --preset paper $(EXEC) --out results/reference --no-report

STUDIES := horizon order state-size regimes
reference-studies: setup
	for s in $(STUDIES); do $(SB) study $$s $(EXEC) --out results/studies/$$s --no-report || exit 1; done

# The small comparison with the rivals behind reports/rivals (issue 25): every system, dense, seeds 0-1, 10 s, all
# nine trainers on their tuned settings (about 17 min with two workers). A small run, not a decisive one.
rivals: setup
	$(SB) run --preset quick --systems oscillator,cubic-oscillator,lotka-volterra,lorenz,network --regimes dense \
		--trainers $(ALL_TRAINERS) --seeds 2 --budget 10 $(EXEC) --out results/rivals --no-report
	$(SB) report results/rivals --out reports/rivals
