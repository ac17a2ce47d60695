# Two commands on a fresh machine: `make run` and `make test`. Both need only Python 3.11+,
# make and the package registries; everything else is installed into .venv here.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
# Test workers: pytest-xdist processes ("auto" = one per core).
TEST_WORKERS ?= auto
PYTEST_ARGS ?=

.PHONY: run test lint format install clean-var

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=...)")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check "uv>=0.5"
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

run: $(VENV)/.installed
	PORT=$(PORT) $(PY) manage.py run_platform --port $(PORT)

test: $(VENV)/.installed lint
	$(PY) -m marketplace.embedded run --if-embedded -- \
		$(PY) -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean-var:
	-$(PY) -m marketplace.embedded stop
	rm -rf var
