# The two commands a newcomer runs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make demo PORT=5001` when 5000 is taken.
PORT ?= 5000

.PHONY: demo test lint install bench clean screenshots lock lock-check upgrade

# Every package of the development and test environment comes from the lock at its exact
# version; the project itself is installed on top without resolving anything again.
LOCK := requirements/dev.txt
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --extra dev --extra postgres \
	--python-version 3.11 --quiet -o $(LOCK)

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --requirement $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --editable .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/notifier demo --port $(PORT)

lint: $(STAMP) lock-check
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

# After editing pyproject.toml's dependencies: pin what they now need, keeping other pins.
lock: $(STAMP)
	$(UV_COMPILE)

# Move every pin to the newest release that pyproject.toml allows, then run `make test`.
upgrade: $(STAMP)
	$(UV_COMPILE) --upgrade

# Fails when pyproject.toml asks for something the lock does not pin (run `make lock`).
lock-check: $(STAMP)
	@tmp=$$(mktemp) && cp $(LOCK) $$tmp && \
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra postgres --python-version 3.11 \
		--quiet -o $$tmp && \
	if ! diff -q -I '^ *#' $(LOCK) $$tmp >/dev/null; then \
		diff -I '^ *#' $(LOCK) $$tmp; rm -f $$tmp; \
		echo "$(LOCK) is out of date with pyproject.toml: run make lock" >&2; exit 1; \
	fi; rm -f $$tmp
