# Two commands on a fresh machine: `make demo`, then `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint clean audit

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

# pip-audit over the locked dependencies (constraints.txt): fails only on known vulnerabilities that have a fix;
# says NOT AUDITED (and passes) when the vulnerability service cannot be reached. SYNTHGATE_AUDIT_STRICT=1: fail then.
audit: install
	$(BIN)/pip install --quiet -c constraints.txt -e ".[audit]"
	$(BIN)/python -m tools.dependency_audit --requirements constraints.txt

clean:
	rm -rf $(VENV) .synthgate .pytest_cache
