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

# The reference, round two (issue 39), at one commit, resumable: every part skips the runs it has, so an
# interrupted `make reference` goes on where it stopped. It is written beside the first reference (issue 26:
# results/reference, results/tuning/reference, results/studies, reports/reference), which stays as history. Machine
# time with two workers, planned 15.5 h and spent 16.1 h (docs/reference.md, "Machine time: planned and spent"):
# tuning 9.4 h, the sweep 6.0 h, the studies 0.7 h. `scripts/reference-at-commit.sh COMMIT PART` runs a part from a
# pinned worktree.
SB := $(BIN)/specbench
EXEC ?= --workers 2 --threads 1
# Every registered trainer (built-ins, entry points, SPECBENCH_PLUGINS), as the registry lists them: a new trainer is
# in the reference with no edit here. Expanded where a recipe uses it (`=`, not `:=`), so other targets never run it.
ALL_TRAINERS = $(shell $(SB) list --trainers)
TUNED := specbench/running/presets/tuned.toml
REFERENCE := results/reference-2
REFERENCE_TUNING := results/tuning/reference-2
REFERENCE_STUDIES := results/studies-2
# The measured benchmarks (preset `measured`: their known structure) with every trainer; those that cannot learn
# from hidden states and inputs are recorded n/a. Tuned at B = 120 s, swept at the preset's 300 s cap, 5 seeds.
MEASURED_TUNING := results/tuning/measured-2
MEASURED_TUNING_S := 120
STUDIES := horizon order state-size regimes

# The report says what moved since the first reference (`--since`), which stays as history.
reference: reference-tuning reference-sweep reference-studies
	$(SB) report $(REFERENCE) --studies $(REFERENCE_STUDIES) --since results/reference --since-studies results/studies \
		--out reports/reference-2 --readme README.md

reference-tuning: setup
	$(SB) tune --preset paper --trainers $(ALL_TRAINERS) $(EXEC) --out $(REFERENCE_TUNING) --settings $(TUNED)
	$(SB) tune --preset measured --trainers $(ALL_TRAINERS) --budget $(MEASURED_TUNING_S) $(EXEC) \
		--out $(MEASURED_TUNING) --settings $(TUNED)

reference-sweep: setup
	$(SB) run --preset paper $(EXEC) --out $(REFERENCE) --no-report
	$(SB) run --preset measured --trainers $(ALL_TRAINERS) --seeds 5 $(EXEC) --out $(REFERENCE) --no-report

reference-studies: setup
	for s in $(STUDIES); do $(SB) study $$s $(EXEC) --out $(REFERENCE_STUDIES)/$$s --no-report || exit 1; done

# The small comparison with the rivals behind reports/rivals (issue 25): every system, dense, seeds 0-1, 10 s, all
# nine trainers on their tuned settings (about 17 min with two workers). A small run, not a decisive one.
rivals: setup
	$(SB) run --preset quick --systems oscillator,cubic-oscillator,lotka-volterra,lorenz,network --regimes dense \
		--trainers $(ALL_TRAINERS) --seeds 2 --budget 10 $(EXEC) --out results/rivals --no-report
	$(SB) report results/rivals --out reports/rivals
