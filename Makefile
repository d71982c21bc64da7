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

# ruff (rules and format) over the whole tree, mypy over synthgate/ (configs in pyproject.toml): all three run, and
# the rule fails if any of them found something.
lint: install
	$(BIN)/pip install --quiet -c constraints.txt -e ".[lint]"
	status=0; \
	$(BIN)/ruff check . || status=1; \
	$(BIN)/ruff format --check . || status=1; \
	$(BIN)/mypy synthgate || status=1; \
	exit $$status

# pip-audit over the locked dependencies (constraints.txt): fails only on known vulnerabilities that have a fix;
# says NOT AUDITED (and passes) when the vulnerability service cannot be reached. SYNTHGATE_AUDIT_STRICT=1: fail then.
audit: install
	$(BIN)/pip install --quiet -c constraints.txt -e ".[audit]"
	$(BIN)/python -m tools.dependency_audit --requirements constraints.txt

clean:
	rm -rf $(VENV) .synthgate .pytest_cache .mypy_cache .ruff_cache
