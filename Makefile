# The two commands a new user types: `make run` (set up, quick comparison, report) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
OUT ?= runs/quick

.PHONY: setup run test clean

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

clean:
	rm -rf $(VENV) .cache
