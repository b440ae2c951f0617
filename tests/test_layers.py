"""Layers point one way: the library never imports data preparation; evaluation and
inference never import training; data preparation has no import circle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Only the command line and the orchestrators above the library may use data_prep.
MAY_IMPORT_DATA_PREP = ("avsep/commands/", "avsep/workflows/", "avsep/cli.py")


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file, inside functions too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def offenders(folder: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list:
    bad = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(allowed):
            continue
        bad += [f"{relative}:{line} imports {module}" for line, module in imports_of(path)
                if module.startswith(forbidden)]
    return bad


def test_the_library_does_not_import_data_prep():
    assert offenders("avsep", ("data_prep",), MAY_IMPORT_DATA_PREP) == []


def test_evaluation_and_inference_do_not_import_training():
    forbidden = ("avsep.training", "avsep.data", "avsep.workflows", "avsep.commands")
    assert offenders("avsep/evaluation", forbidden) == []
    assert offenders("avsep/inference", forbidden) == []


def test_the_checker_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from data_prep.prepare import solos\n")
    assert (4, "data_prep.prepare") in imports_of(module)


def test_data_preparation_has_no_import_circle():
    graph = {}
    for path in sorted((ROOT / "data_prep").rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        graph[name] = {m for _, m in imports_of(path) if m.startswith("data_prep.")} - {name}

    def reaches(start: str, goal: str, seen: set) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    assert sorted(n for n in graph if reaches(n, n, {n})) == []
