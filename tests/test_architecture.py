"""The data flows one way: every import in the code points back up the pipeline, never down it.

    importers -> core -> io -> bounds -> encode -> solvers -> search -> enumeration -> viz -> cli

A module may import from its own package and from the packages before it, never from a later
one (imports inside functions count too). HiGHS is reached from one module only, and no module
reaches into another's private names.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["core", "io", "bounds", "encode", "solvers", "search", "enumeration", "viz", "cli"]
FACADES = {"milp/__init__.py", "milp/__main__.py"}  # the lazy public API and the entry point


def _modules():
    for folder in ("milp", "importers"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(), filename=str(path))


def _imports(tree: ast.AST, package: str):
    """``(line, module, names)`` of every import, relative ones resolved against ``package``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                parts = package.split(".")[:-1]  # the package holding the module (for __init__: itself)
                base = parts[: len(parts) - (node.level - 1)]
                module = ".".join(base + ([module] if module else []))
            yield node.lineno, module, [alias.name for alias in node.names]


def _room(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "importers":
        return "importers"
    if parts[0] == "milp" and len(parts) > 1 and parts[1] in ORDER:
        return parts[1]
    return None


MODULES = list(_modules())


def test_every_milp_module_lives_in_a_room_of_the_pipeline():
    """Outside the facade, every module of milp belongs to one of the named packages."""
    stray = [name for name, _ in MODULES if name.startswith("milp/") and name not in FACADES and name.split("/")[1] not in ORDER]
    assert stray == []


@pytest.mark.parametrize("name,tree", MODULES, ids=[name for name, _ in MODULES])
def test_imports_point_back_up_the_pipeline(name, tree):
    """No module imports from a later step; importers see only the core; only the CLI loads importers."""
    if name in FACADES:
        return
    package = name[:-3].replace("/", ".")
    here = _room(package)
    wrong = []
    for line, module, names in _imports(tree, package):
        there = _room(module) if module.startswith(("milp.", "importers")) else None
        if module == "milp":
            wrong.append(f"line {line}: imports the facade 'milp' (import from the module that defines the name)")
            continue
        if there is None:
            continue
        if here == "importers":
            if there not in ("importers", "core"):
                wrong.append(f"line {line}: importers may use milp.core only, not {module}")
        elif there == "importers":
            if here != "cli":
                wrong.append(f"line {line}: only the CLI loads model files, {here} imports {module}")
        elif ORDER.index(there) > ORDER.index(here):
            wrong.append(f"line {line}: {here} imports {module}, a later step")
    assert wrong == [], f"{name}: " + "; ".join(wrong)


@pytest.mark.parametrize("name,tree", MODULES, ids=[name for name, _ in MODULES])
def test_no_private_names_cross_modules_and_highspy_stays_behind_the_solver_boundary(name, tree):
    """``from x import _private`` across modules is refused, and only milp/solvers/highs.py imports highspy."""
    package = name[:-3].replace("/", ".")
    problems = []
    for line, module, names in _imports(tree, package):
        if module.split(".")[0] == "highspy" and name != "milp/solvers/highs.py":
            problems.append(f"line {line}: imports highspy")
        if module.startswith(("milp", "importers")) and module != package:
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private:
                problems.append(f"line {line}: imports private {', '.join(private)} from {module}")
    assert problems == [], f"{name}: " + "; ".join(problems)


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return set(done.stdout.split())


@pytest.mark.parametrize("statement", ["import importers", "import milp", "from milp.cli.main import build_parser; build_parser()"])
def test_light_entry_points_load_no_solver(statement):
    """``import importers``, ``import milp`` and building the CLI's parser (``milp --help``) load neither HiGHS nor scipy."""
    loaded = _loaded_after(statement)
    assert "highspy" not in loaded and "scipy" not in loaded
