# Two set-up commands; each creates its own virtual environment (.venv) first.
#   make demo   run the pilot on the bundled example queue with two pre-placed jobs
#   make test   ruff, mypy and the whole test suite
#   make bench-check   a quick benchmark run that fails on a regression of a ratio to its floor
#   make reliability   the reliability campaign at full size; writes docs/reliability.md
#   make dist   dist/pilot3.tar.gz, the tarball the production wrapper launches (reproducible)
#   make panda-server-test   the pilot against a real panda-server 1.0.4 on 127.0.0.1 (root + apt; else skipped)
#   make slurm-test   only the pilots under a real single-node Slurm (tests/slurm; root + Slurm; else skipped);
#                     make test runs them too
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint clean reliability dist panda-server-test slurm-test bench-check

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(PY) -m fsm_pilot.demo demo-run

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest -q

bench-check: $(VENV)/.installed
	$(PY) bench/check.py

reliability: $(VENV)/.installed
	$(PY) -m tests.reliability.report --scale full --output docs/reliability.md

dist: $(VENV)/.installed
	$(PY) deploy/build_tarball.py

panda-server-test: $(VENV)/.installed
	$(PY) -m tests.pandaserver

slurm-test: $(VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider tests/slurm

clean:
	rm -rf $(VENV) demo-run dist build .pytest_cache .mypy_cache .ruff_cache
