# Each target creates .venv on first use and installs what it needs.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install test test-slow demo lint docs bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first (the local CPU wheel 2.13.0), and only when no torch is importable; then the package.
$(STAMP): $(PY) setup.cfg pyproject.toml
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

# the slow tests include a sweep on a local Ray, so they install the distributed extra (ray[tune])
test-slow: $(STAMP)
	$(PY) -c "import ray.tune" 2>/dev/null || $(PY) -m pip install -q -e ".[distributed]"
	$(PY) -m pytest -m slow

demo: $(STAMP)
	$(VENV)/bin/mbrl demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The documentation site (guides + API reference) into site/; any warning fails the build.
docs: $(STAMP)
	$(PY) -c "import mkdocstrings_handlers.python" 2>/dev/null || $(PY) -m pip install -q -e ".[docs]"
	$(PY) -m mkdocs build --strict

clean:
	rm -rf $(VENV) runs build site *.egg-info
