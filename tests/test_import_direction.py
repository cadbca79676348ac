"""Imports run one way: parts -> models -> builder -> transfer / trainer, never back.

Read from the source, not by importing: `mmtask/__init__.py` imports the whole
package, so any `import mmtask.x` loads everything. The check follows the
imports a module runs when it is imported (module and class bodies; imports
inside functions run only when called, as `MultiTaskModel.fit` loads the
fine-tuning callback only when given a schedule).
"""

import ast
from pathlib import Path

import pytest

import mmtask

PACKAGE_DIR = Path(mmtask.__file__).parent
PARTS = [
    "mmtask.alignment",
    "mmtask.encoders",
    "mmtask.freezing",
    "mmtask.fusion",
    "mmtask.heads",
    "mmtask.models",
    "mmtask.registry",
    "mmtask.weighting",
]
UPPER = ["mmtask.builder", "mmtask.cli", "mmtask.spec", "mmtask.training", "mmtask.transfer"]
RULES = [(part, UPPER) for part in PARTS] + [
    ("mmtask.builder", ["mmtask.cli", "mmtask.training", "mmtask.transfer"]),
    ("mmtask.plots", ["mmtask.builder", "mmtask.training", "mmtask.transfer"]),
    ("mmtask.report", ["mmtask.builder", "mmtask.training", "mmtask.transfer"]),
]


def module_files() -> dict[str, Path]:
    files = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        files[name] = path
    return files


def imports_at_load(tree: ast.AST) -> list[str]:
    """Absolute module names imported by the statements run when the module loads."""
    names = []

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            if isinstance(child, ast.Import):
                names.extend(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                names.append(child.module)
                names.extend(f"{child.module}.{alias.name}" for alias in child.names)
            visit(child)

    visit(tree)
    return names


def loaded_by(root: str, files: dict[str, Path]) -> set[str]:
    """mmtask modules importing `root` loads, `mmtask/__init__.py` left out."""
    graph = {
        name: [n for n in imports_at_load(ast.parse(path.read_text())) if n in files]
        for name, path in files.items()
    }
    seen, todo = set(), [root]
    while todo:
        name = todo.pop()
        if name in seen or name == "mmtask":
            continue
        seen.add(name)
        parent = name.rpartition(".")[0]
        todo.extend(graph[name] + ([parent] if parent else []))
    return seen


@pytest.mark.parametrize(("module", "forbidden"), RULES, ids=[rule[0] for rule in RULES])
def test_module_does_not_load_upper_layers(module, forbidden):
    files = module_files()
    assert module in files, f"{module} is not a module of mmtask; the rules are stale"
    loaded = loaded_by(module, files)
    wrong = sorted(n for n in loaded if any(n == u or n.startswith(u + ".") for u in forbidden))
    assert not wrong, f"importing {module} loads {wrong}"


def test_the_check_sees_imports_in_class_bodies_but_not_in_functions():
    tree = ast.parse(
        "import a\nclass C:\n    from b import c\n    def f(self):\n        import d\n"
    )
    assert imports_at_load(tree) == ["a", "b", "b.c"]
