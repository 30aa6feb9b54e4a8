# The two commands a newcomer runs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make demo PORT=5001` when 5000 is taken.
PORT ?= 5000

.PHONY: demo test lint install bench clean screenshots lock lock-check upgrade dist wheel-test docs

# Every package of the development and test environment, the project itself included
# (editable), comes from uv.lock at its exact version: `uv sync --frozen` installs what the
# lock says and nothing else, and removes what it does not list. uv itself is pinned here
# and in the lock; it never downloads a Python (the venv's is used).
UV_VERSION := 0.13.9
UV := $(BIN)/uv
EXTRAS := --extra dev --extra postgres
export UV_PYTHON_DOWNLOADS := never

$(STAMP): pyproject.toml uv.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(UV) || $(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(UV) sync --quiet --frozen $(EXTRAS) --python $(BIN)/python
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

# The sdist, then the wheel built from it (so a file the sdist misses fails here), and
# the metadata checked the way PyPI renders it.
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

# The wheel as a host installs it: a clean virtualenv, the wheel (not editable) with the
# extras examples/shop uses, the few test tools the shop's tests need (all at the lock's
# versions), then tests/examples run from a copy where no source folder can shadow it.
WHEEL_VENV := .venv-wheel
WHEEL_TOOLS := flask-login pytest pytest-timeout playwright aiosmtpd
wheel-test: dist
	rm -rf $(WHEEL_VENV)
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(UV) export --quiet --frozen --no-hashes --no-emit-project $(EXTRAS) \
		-o $(WHEEL_VENV)/constraints.txt
	$(WHEEL_VENV)/bin/python -m pip install --quiet --constraint $(WHEEL_VENV)/constraints.txt \
		"$$(ls dist/*.whl)[flask-sqlalchemy,postgres]" $(WHEEL_TOOLS)
	@set -e; here=$$PWD; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	cp -r tests pyproject.toml "$$tmp"/; mkdir "$$tmp/examples"; cp -r examples/shop "$$tmp/examples/"; \
	cd "$$tmp"; \
	"$$here/$(WHEEL_VENV)/bin/python" -c 'import notifier.web, notifier.worker, sys; \
		p = notifier.web.__file__; print("testing", p); \
		sys.exit(0 if "/$(WHEEL_VENV)/" in p and "/site-packages/" in p else "not the wheel")'; \
	"$$here/$(WHEEL_VENV)/bin/pytest" -q -p no:cacheprovider tests/examples

# The manual (docs/, mkdocs.yml) as a site in site/; any warning (a dead link or anchor, an
# object the API reference cannot find) fails the build. The notice silenced is Material's
# advertisement for its successor, printed on every build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: $(STAMP)
	$(BIN)/python bench/bench_store.py

screenshots: $(STAMP)
	$(BIN)/pytest -q tests/web/browser/test_pages.py
	mkdir -p docs/screenshots
	cp test-results/screenshots/*.png docs/screenshots/

clean:
	rm -rf $(VENV) $(WHEEL_VENV) instance .pytest_cache .mypy_cache .ruff_cache dist build site

# After editing pyproject.toml's dependencies: pin what they now need, keeping other pins.
lock: $(STAMP)
	$(UV) lock

# Move every pin to the newest release that pyproject.toml allows, then run `make test`.
upgrade: $(STAMP)
	$(UV) lock --upgrade

# Fails when pyproject.toml asks for something uv.lock does not pin (run `make lock`).
lock-check: $(STAMP)
	$(UV) lock --check --quiet
