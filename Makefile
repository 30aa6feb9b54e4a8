# The two commands a newcomer runs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make demo PORT=5001` when 5000 is taken.
PORT ?= 5000

.PHONY: demo test lint install bench clean screenshots lock lock-check upgrade dist wheel-test docs

# Every package of the development and test environment comes from the lock at its exact
# version; the project itself is installed on top without resolving anything again.
LOCK := requirements/dev.txt
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --extra dev --extra postgres \
	--python-version 3.11 --quiet -o $(LOCK)

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --requirement $(LOCK)
	@# 0.1 was installed as "notifier": its metadata would register every entry point twice.
	$(BIN)/python -m pip uninstall --quiet --yes notifier 2>/dev/null || true
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
	$(WHEEL_VENV)/bin/python -m pip install --quiet --constraint $(LOCK) \
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
