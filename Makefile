# The two commands a new user types: `make run` (set up, quick comparison, report) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
OUT ?= runs/quick

.PHONY: setup run test work-check work-reference asv-smoke clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

run: setup
	$(BIN)/specbench run --preset quick --out $(OUT)

test: setup
	$(BIN)/python -m pytest -q

# The exact work gate (README, "Work measures"): iteration-budgeted runs of every system x trainer, compared with
# the committed reference; about a minute of CPU. After an intended change, `make work-reference` and commit it.
WORK_REFERENCE := results/work/reference.json
ONE_THREAD := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

work-check: setup
	$(ONE_THREAD) $(BIN)/specbench work --check $(WORK_REFERENCE)

work-reference: setup
	$(ONE_THREAD) $(BIN)/specbench work --out $(WORK_REFERENCE)

# asv's checks and a quick run of a corner of the suite against the working tree (CI runs this after the tests).
asv-smoke: setup
	$(BIN)/asv machine --yes > /dev/null
	$(BIN)/asv check -E existing
	SPECBENCH_ASV_SYSTEMS=oscillator SPECBENCH_ASV_TRAINERS=spectral,backprop-rk4 SPECBENCH_ASV_BUDGET=1 \
		$(BIN)/asv run -E existing --quick --show-stderr

clean:
	rm -rf $(VENV) .cache
