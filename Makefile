# Two commands on a fresh machine: `make demo`, then `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint clean

$(BIN)/python:
	$(shell command -v $(PYTHON) || echo python3) -m venv $(VENV)

# torch first and alone: pip takes the CPU build from the machine's wheel folder.
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test,warehouses]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/synthgate demo

test: install
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .synthgate .pytest_cache
