# Two commands set up a fresh machine (see README.md):
#   make demo   create .venv, install kerastrans, run the main job on the embedded data
#   make test   create .venv if needed, install, run the test suite
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
DEMO   ?= demo_output

.PHONY: demo test lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m kerastrans.demo --out $(DEMO)

# One pytest worker per core (up to 4), each test module on one worker so its
# fixtures are built once: most tests wait on one core for a CLI subprocess.
test: $(STAMP)
	$(PY) -m pytest -n auto --maxprocesses 4 --dist loadscope

lint: $(STAMP)
	$(VENV)/bin/ruff check kerastrans tests benchmarks datasets
	$(VENV)/bin/ruff format --check kerastrans tests benchmarks datasets

clean:
	rm -rf $(DEMO) .pytest_cache
