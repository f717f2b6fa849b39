# The two commands a new user types: `make run` (set up, quick comparison, report) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
OUT ?= runs/quick

.PHONY: setup run test asv-smoke clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

run: setup
	$(BIN)/specbench run --preset quick --workers 2 --threads 1 --out $(OUT)

test: setup
	$(BIN)/python -m pytest -q

# asv's checks and a quick run of a corner of the suite against the working tree (CI runs this after the tests).
asv-smoke: setup
	$(BIN)/asv machine --yes > /dev/null
	$(BIN)/asv check -E existing
	SPECBENCH_ASV_SYSTEMS=oscillator SPECBENCH_ASV_TRAINERS=spectral,backprop-rk4 SPECBENCH_ASV_BUDGET=1 \
		$(BIN)/asv run -E existing --quick --show-stderr

clean:
	rm -rf $(VENV) .cache
