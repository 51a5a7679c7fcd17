# Two commands a user needs: `make run` (the pipeline on the full corpus) and `make test`.
# `make test-fast` (unit and component tests, a few minutes) and `make lint` (ruff) are for the
# inner loop; CI runs `make lint` and `make test`. Each builds the pinned environment in .venv/
# first, and skips that when pyproject.toml and constraints.txt have not changed since the last
# install.

VENV := .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
# python3.10 from PATH, else a pyenv-installed 3.10 (pyenv's shim fails when 3.10 is not the selected version).
PYTHON310 ?= $(shell for p in python3.10 $$HOME/.pyenv/versions/3.10*/bin/python3.10; do \
	$$p -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null && echo $$p && break; done)
PRESET ?= default
RUN_ARGS ?=

.PHONY: venv run test test-fast lint
venv: $(INSTALLED)

$(INSTALLED): pyproject.toml constraints.txt
	@test -n "$(PYTHON310)" || { echo "error: Python 3.10 not found: install python3.10 or set PYTHON310=/path/to/python3.10" >&2; exit 1; }
	test -x $(PYTHON) || $(PYTHON310) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	$(PYTHON) -c 'import tfx, tensorflow_transform, keras_hub'
	touch $@

run: $(INSTALLED)
	$(PYTHON) local_runner.py --preset $(PRESET) $(RUN_ARGS)

test: $(INSTALLED)
	$(PYTHON) -m pytest tests

test-fast: $(INSTALLED)
	$(PYTHON) -m pytest tests -m 'not slow'

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
