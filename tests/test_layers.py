"""Dependencies point one way: the core (``synthgate/``) imports no orchestrator; ``flows/`` and ``tasks/`` do."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

#: The application entry point, above both layers: it starts flows and deploys them.
ENTRY_POINT = "synthgate/cli.py"
#: Reads a secret from a Prefect Secret block (a secret store, not orchestration): ``prefect.blocks`` only.
SECRET_STORE = "synthgate/secret_blocks.py"
ORCHESTRATION = ("prefect", "flows", "tasks")


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (lazy imports inside functions included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def orchestration_imports(path: Path) -> list[str]:
    return sorted(m for m in imported_modules(path) if m.split(".")[0] in ORCHESTRATION)


def test_the_core_imports_no_orchestrator():
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in sorted((ROOT / "synthgate").rglob("*.py"))
        if str(path.relative_to(ROOT)) not in (ENTRY_POINT, SECRET_STORE) and (found := orchestration_imports(path))
    }
    assert offenders == {}, (
        f"core modules importing prefect, flows or tasks (move that code to flows/ or tasks/): {offenders}"
    )


def test_the_secret_store_reads_secret_blocks_only():
    assert all(m.startswith("prefect.blocks") for m in orchestration_imports(ROOT / SECRET_STORE))


def test_the_checker_sees_lazy_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from flows.refresh import refresh_table\n    import prefect\n")
    assert orchestration_imports(module) == ["flows.refresh", "flows.refresh.refresh_table", "prefect"]


def test_flows_call_tasks_not_the_warehouse():
    offenders = {
        path.name: found
        for path in sorted((ROOT / "flows").glob("*.py"))
        if (found := sorted(m for m in imported_modules(path) if m.startswith("synthgate.warehouse")))
    }
    assert offenders == {}, f"flows importing synthgate.warehouse (call a task instead): {offenders}"
