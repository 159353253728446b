# The two commands of the README: `make run` and `make test`. Both install what they need
# into a local virtualenv (.venv) first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test protos check-protos bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-run

## run: the whole service (core, edge, account) on SQLite under .onekey/
run: $(VENV)/.installed-run
	$(BIN)/onekey up $(if $(CONFIG),--config $(CONFIG),)

## test: the whole test suite in both deployment shapes (scripts/run_tests.py; PostgreSQL and
##       Redis tests skip when no server answers)
test: $(VENV)/.installed-test
	$(BIN)/python scripts/gen_protos.py --check
	bash scripts/ensure_chromium.sh || echo "make test: chromium not installed; the browser test skips (fails under CI=true)" >&2
	$(BIN)/python scripts/run_tests.py $(PYTEST_ARGS)

## protos: regenerate onekey/v1/ from protos/ (never edit the stubs by hand)
protos: $(VENV)/.installed-test
	$(BIN)/python scripts/gen_protos.py

bench: $(VENV)/.installed-test
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .onekey .pytest_cache bench/.peers
