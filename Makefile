# zkfl: `make demo` runs a verified federation; `make test` runs the tests.
# `make setup` is idempotent and is run by both: a venv in .venv (pip install -e),
# the pinned npm tools (anvil, solc-js, OpenZeppelin) in tools/node_modules.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test bench lint clean

setup: $(VENV)/.installed tools/node_modules/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,flower]"
	touch $@

tools/node_modules/.installed: tools/package.json tools/package-lock.json
	cd tools && npm ci --no-audit --no-fund --loglevel=error
	mkdir -p dashboard/static/vendor
	cp tools/node_modules/uplot/dist/uPlot.iife.min.js tools/node_modules/uplot/dist/uPlot.min.css \
	   tools/node_modules/uplot/LICENSE dashboard/static/vendor/
	touch $@

demo: setup
	$(BIN)/zkfl demo --clients 4 --rounds 3 --malicious 1 --report report.json

test: setup
	bash scripts/ensure-rabbitmq.sh
	bash scripts/ensure-chromium.sh
	$(BIN)/pytest

bench: setup
	$(BIN)/python bench/prove.py
	$(BIN)/python bench/prove.py --aggregation
	$(BIN)/python bench/linked.py
	$(BIN)/python bench/step_rows.py --prove
	$(BIN)/python bench/accuracy.py
	$(BIN)/python bench/client.py
	$(BIN)/python bench/gas.py
	$(BIN)/python bench/broker.py
	$(BIN)/python bench/ipfs.py
	$(BIN)/python bench/flower.py
	$(BIN)/python bench/multiparty.py

# ruff, mypy, the import contracts of pyproject.toml (layers only point down), short functions.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy circuits prover contracts middleware aggregator dashboard zkfl examples
	$(BIN)/python scripts/lint_imports.py
	$(BIN)/python scripts/check_function_length.py

clean:
	rm -rf .zkfl report.json
