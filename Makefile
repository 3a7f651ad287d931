# Set-up and the two jobs of the README's Quick start. Each target creates .venv/ (once) with the pinned
# dependencies of pyproject.toml, so nothing depends on what happens to be installed on the machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test benchmark label label-test clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: install
	$(BIN)/python scripts/demo.py

test: install
	$(BIN)/python -m pytest -q

benchmark: install
	$(BIN)/python scripts/benchmark.py

# MONAI Label needs torchvision, which does not import beside the main environment's CPU torch build: it gets its
# own environment, .venv-label/ (see docs/monailabel.md).
label:
	bash monailabel/setup.sh

label-test:
	bash monailabel/run_tests.sh

clean:
	rm -rf $(VENV) .venv-label demo_output
