# The two commands a newcomer runs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make demo PORT=5001` when 5000 is taken.
PORT ?= 5000

.PHONY: demo test lint install bench clean screenshots

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/notifier demo --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Two processes, a test file each at a time: the suite waits on workers, servers and the
# browser more than it computes, so two share this 2-core machine's cores well.
test: $(STAMP) lint
	$(BIN)/pytest -n 2 --dist loadfile

bench: $(STAMP)
	$(BIN)/python bench/bench_store.py

screenshots: $(STAMP)
	$(BIN)/pytest -q tests/web/browser/test_pages.py
	mkdir -p docs/screenshots
	cp test-results/screenshots/*.png docs/screenshots/

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
