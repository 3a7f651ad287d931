# Set-up and the two jobs of the README's Quick start. Each target creates .venv/ (once) with the pinned
# dependencies of pyproject.toml, so nothing depends on what happens to be installed on the machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-slow test-all lint benchmark label label-test clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: install
	$(BIN)/python scripts/demo.py

# the fast tier (pyproject.toml: -m 'not slow'), a few minutes, for daily work
test: install
	$(BIN)/python -m pytest -q

# the slow end-to-end tier alone: the bundle's commands as subprocesses, trainings, release builds
test-slow: install
	$(BIN)/python -m pytest -q -m slow

test-all: install
	$(BIN)/python -m pytest -q -m "slow or not slow"

# the MONAI model zoo's code-format and type checks (its runtests.sh --codeformat: isort, black, flake8, pytype;
# settings in pyproject.toml and .flake8)
lint: install
	$(BIN)/python -m isort --check --diff .
	$(BIN)/python -m black --check .
	$(BIN)/python -m flake8 --count .
	$(BIN)/python -m pytype

benchmark: install
	$(BIN)/python scripts/benchmark.py --epoch --repeats 7 --train-steps 15 --rounds 3
	$(BIN)/python scripts/benchmark_components.py

# MONAI Label needs torchvision, which does not import beside the main environment's CPU torch build: it gets its
# own environment, .venv-label/ (see docs/monailabel.md).
label:
	bash monailabel/setup.sh

label-test:
	bash monailabel/run_tests.sh

clean:
	rm -rf $(VENV) .venv-label demo_output
