"""Dependencies point one way: the core (``synthgate/``) imports no orchestrator; its orchestration layer
(``synthgate/flows/``, ``synthgate/tasks/``, which the project's ``flows/`` and ``tasks/`` link to) does."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

CORE = ROOT / "synthgate"
#: The orchestration layer, inside the installed package.
LAYER = (CORE / "flows", CORE / "tasks")
#: The application entry point, above both layers: it starts flows and deploys them.
ENTRY_POINT = CORE / "cli.py"
#: Reads a secret from a Prefect Secret block (a secret store, not orchestration): ``prefect.blocks`` only.
SECRET_STORE = CORE / "secret_blocks.py"
ORCHESTRATION = ("prefect", "synthgate.flows", "synthgate.tasks")


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Every module ``path`` imports, at any depth (lazy imports inside functions included); relative imports are
    resolved against the module's package (``from .flows import x`` in ``synthgate/cli.py``: ``synthgate.flows``)."""
    package = list(path.relative_to(root).parent.parts) if path.is_relative_to(root) else []
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - (node.level - 1)] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found |= {module} | {f"{module}.{alias.name}" for alias in node.names}
    return found


def orchestration_imports_under(path: Path, root: Path) -> list[str]:
    modules = imported_modules(path, root)
    return sorted(m for m in modules if any(m == o or m.startswith(f"{o}.") for o in ORCHESTRATION))


def orchestration_imports(path: Path) -> list[str]:
    return orchestration_imports_under(path, ROOT)


def core_modules() -> list[Path]:
    return [
        path
        for path in sorted(CORE.rglob("*.py"))
        if path not in (ENTRY_POINT, SECRET_STORE) and not any(path.is_relative_to(layer) for layer in LAYER)
    ]


def test_the_core_imports_no_orchestrator():
    offenders = {
        str(path.relative_to(ROOT)): found for path in core_modules() if (found := orchestration_imports(path))
    }
    assert offenders == {}, (
        "core modules importing prefect, synthgate.flows or synthgate.tasks (move that code to synthgate/flows/ or "
        f"synthgate/tasks/): {offenders}"
    )
    assert len(core_modules()) > 30  # the walk found the core (generator/, evaluation/, warehouse/ included)


def test_the_project_folders_are_the_packages_layer():
    for layer in LAYER:
        linked = ROOT / layer.name
        assert linked.is_symlink() and linked.resolve() == layer.resolve(), f"{layer.name}/ must link to {layer}"


def test_the_secret_store_reads_secret_blocks_only():
    assert all(m.startswith("prefect.blocks") for m in orchestration_imports(SECRET_STORE))


def test_the_checker_sees_lazy_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "def f():\n    from synthgate.flows.refresh import refresh_table\n    import prefect\n"
        "    import synthgate.taskset\n"
    )
    assert orchestration_imports(module) == [
        "prefect",
        "synthgate.flows.refresh",
        "synthgate.flows.refresh.refresh_table",
    ]
    inside = tmp_path / "synthgate" / "generator" / "m.py"
    inside.parent.mkdir(parents=True)
    inside.write_text("from ..tasks import train\nfrom . import codecs\n")
    assert imported_modules(inside, tmp_path) == {
        "synthgate.tasks",
        "synthgate.tasks.train",
        "synthgate.generator",
        "synthgate.generator.codecs",
    }
    assert orchestration_imports_under(inside, tmp_path) == ["synthgate.tasks", "synthgate.tasks.train"]


def test_flows_call_tasks_not_the_warehouse():
    offenders = {
        path.name: found
        for path in sorted((CORE / "flows").glob("*.py"))
        if (found := sorted(m for m in imported_modules(path) if m.startswith("synthgate.warehouse")))
    }
    assert offenders == {}, f"flows importing synthgate.warehouse (call a task instead): {offenders}"
