# Set-up and the two jobs of the README's Quick start. Each target creates .venv/ (once) with the pinned
# dependencies of pyproject.toml, so nothing depends on what happens to be installed on the machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test benchmark clean

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

clean:
	rm -rf $(VENV) demo_output
