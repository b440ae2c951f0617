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


def test_models_import_no_training_data_or_stage_above_them():
    forbidden = ("avsep.mixing", "avsep.data", "avsep.training", "avsep.evaluation",
                 "avsep.inference", "avsep.workflows", "avsep.commands")
    assert offenders("avsep/models", forbidden) == []


def code_lines(source: str, node: ast.AST) -> int:
    """Lines of a function that are not blank, comments or its docstring."""
    assert isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    docstring: set[int] = set()
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
            and isinstance(first.value.value, str):
        docstring = set(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    lines = source.splitlines()[node.lineno - 1:node.end_lineno]
    return sum(1 for number, line in enumerate(lines, start=node.lineno)
               if line.strip() and not line.strip().startswith("#") and number not in docstring)


def test_the_size_checker_counts_code_lines_only():
    source = 'def f():\n    """Doc.\n\n    More."""\n    # why\n\n    a = 1\n    return a\n'
    assert code_lines(source, ast.parse(source).body[0]) == 3  # def, a = 1, return


def test_no_module_over_500_lines_and_no_function_over_60_code_lines():
    long_modules, long_functions = [], []
    for path in sorted((ROOT / "avsep").rglob("*.py")):
        source = path.read_text()
        relative = path.relative_to(ROOT).as_posix()
        if len(source.splitlines()) > 500:
            long_modules.append(f"{relative}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                count = code_lines(source, node)
                if count > 60:
                    long_functions.append(f"{relative}:{node.lineno} {node.name}: {count}")
    assert long_modules == [] and long_functions == []


def _names_a_model(node: ast.expr) -> bool:
    """`model`, `separator`, `x.model` or `x.separator`: an expression that is a model."""
    return (isinstance(node, ast.Name) and node.id in ("model", "separator")) or (
        isinstance(node, ast.Attribute) and node.attr in ("model", "separator"))


def test_training_does_not_probe_or_set_model_attributes():
    """Training talks to a model through its declared interface (`Separator`): no getattr /
    hasattr probing, and nothing outside a model's module assigns its attributes."""
    probes = []
    for path in sorted((ROOT / "avsep" / "training").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in ("getattr", "hasattr"):
                probes.append(f"{path.name}:{node.lineno} {node.func.id}")
    assert probes == []
    assigned = []
    for path in sorted((ROOT / "avsep").rglob("*.py")):
        if "models" in path.relative_to(ROOT).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                if isinstance(target, ast.Attribute) and _names_a_model(target.value):
                    assigned.append(f"{path.name}:{node.lineno}")
    assert assigned == []


def test_the_assignment_checker_sees_the_ways_a_model_was_set_from_outside():
    for line in ("separator.gate_locations = False", "runner.model.gate_locality = 0.5",
                 "model.model_kwargs = {}"):
        target = ast.parse(line).body[0].targets[0]  # type: ignore[attr-defined]
        assert _names_a_model(target.value), line
    assert not _names_a_model(ast.parse("self.x = 1").body[0].targets[0].value)  # type: ignore[attr-defined]
