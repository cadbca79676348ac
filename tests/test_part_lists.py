"""Hand-kept lists of part names (docs, notebooks, scripts, `__all__`) match the registries.

A new fusion, weighting or encoder joins its registry with one decorator;
these checks point at every list that must then name it too.
"""

import ast
import json
import re
from pathlib import Path

import pytest

import mmtask.alignment
import mmtask.builder  # noqa: F401  (registers every built-in part)
import mmtask.encoders
import mmtask.fusion
import mmtask.weighting
from mmtask.registry import ALIGNMENTS, FUSIONS, IMAGE_ENCODERS, TEXT_ENCODERS, WEIGHTINGS

ROOT = Path(__file__).resolve().parents[1]
FUSION_NAMES = set(FUSIONS.names())
WEIGHTING_NAMES = set(WEIGHTINGS.names())
NAME = re.compile(r"`([a-z_]+)`")


def assigned(source: str, name: str) -> ast.expr:
    """The value of the top-level assignment to `name` in Python `source`."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return node.value
    raise AssertionError(f"no assignment to {name} in:\n{source[:300]}")


def keys_or_items(value: ast.expr) -> set:
    """The constant keys of a dict literal, or the constant items of a list or tuple."""
    nodes = value.keys if isinstance(value, ast.Dict) else value.elts
    return {ast.literal_eval(node) for node in nodes}


def table_rows(path: Path, header: str) -> list[str]:
    """The rows of the markdown table whose header line starts with `header`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def paragraph(path: Path, start: str) -> str:
    """The text from the line starting with `start` to the next blank line or list item."""
    text = path.read_text(encoding="utf-8")
    begin = text.index(start)
    end = re.search(r"\n(\s*\n|- )", text[begin + 1 :])
    return text[begin : begin + 1 + end.start()] if end else text[begin:]


@pytest.mark.parametrize(
    ("package", "registries"),
    [
        (mmtask.encoders, [TEXT_ENCODERS, IMAGE_ENCODERS]),
        (mmtask.fusion, [FUSIONS]),
        (mmtask.weighting, [WEIGHTINGS]),
        (mmtask.alignment, [ALIGNMENTS]),
    ],
    ids=["encoders", "fusion", "weighting", "alignment"],
)
def test_packages_export_every_registered_part(package, registries):
    registered = {r.get(name).__name__ for r in registries for name in r.names()}
    assert registered - set(package.__all__) == set()
    assert all(hasattr(package, name) for name in package.__all__)


def test_docs_tables_name_every_registered_part():
    families = {
        "text encoder": TEXT_ENCODERS,
        "image encoder": IMAGE_ENCODERS,
        "fusion": FUSIONS,
        "weighting": WEIGHTINGS,
        "alignment": ALIGNMENTS,
    }
    rows = table_rows(ROOT / "docs/model_spec.md", "| family | names")
    listed = {row.split("|")[1].strip(): set(NAME.findall(row.split("|")[2])) for row in rows}
    assert listed == {family: set(r.names()) for family, r in families.items()}

    for page, names in (("fusion.md", FUSION_NAMES), ("training.md", WEIGHTING_NAMES)):
        rows = table_rows(ROOT / "docs" / page, "| name | what it does")
        assert {NAME.match(row.split("|")[1].strip()).group(1) for row in rows} == names, page

    rows = table_rows(ROOT / "docs/performance.md", "| part |")
    by_part = {row.split("|")[1].split("`")[0].strip(): set(NAME.findall(row)) for row in rows}
    assert by_part["fusion"] == FUSION_NAMES
    assert by_part["loss weighting"] == WEIGHTING_NAMES


def test_readme_names_every_fusion_and_weighting():
    readme = ROOT / "README.md"
    assert FUSION_NAMES <= set(NAME.findall(paragraph(readme, "- **Fusion**")))
    assert WEIGHTING_NAMES <= set(NAME.findall(paragraph(readme, "- **Training**")))


def test_fusion_guide_builds_every_fusion():
    source = "\n".join(
        re.findall(
            r"^```python\n(.*?)^```",
            (ROOT / "docs/fusion.md").read_text(encoding="utf-8"),
            re.DOTALL | re.MULTILINE,
        )
    )
    block = next(b for b in source.split("\n\n") if "FUSIONS = {" in b)
    assert keys_or_items(assigned(block[block.index("FUSIONS = {") :], "FUSIONS")) == FUSION_NAMES


def test_options_notebook_compares_every_fusion_and_weighting():
    notebook = json.loads((ROOT / "notebooks/03_choosing_options.ipynb").read_text())
    cells = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]

    def value(name):
        return assigned(next(c for c in cells if re.search(rf"^{name} = ", c, re.M)), name)

    assert keys_or_items(value("COMPARE_FUSIONS")) == FUSION_NAMES
    assert keys_or_items(value("FUSIONS")) == FUSION_NAMES
    # `static` is the baseline: the concat run of the fusion comparison.
    assert keys_or_items(value("COMPARE_WEIGHTINGS")) | {"static"} == WEIGHTING_NAMES
    assert keys_or_items(value("WEIGHTINGS")) | {"static"} == WEIGHTING_NAMES


def test_backend_checks_cover_every_fusion_and_weighting():
    source = (ROOT / "tests/backends/backend_checks.py").read_text()
    assert keys_or_items(assigned(source, "FUSIONS")) == FUSION_NAMES
    assert keys_or_items(assigned(source, "WEIGHTINGS")) == WEIGHTING_NAMES
    assert keys_or_items(assigned(source, "WEIGHTING_CHECKS")) == WEIGHTING_NAMES
    pairs = ast.literal_eval(assigned(source, "TRAINING"))
    assert {f for f, _ in pairs} == FUSION_NAMES
    assert {w for _, w in pairs} == WEIGHTING_NAMES


def test_benchmark_has_a_recipe_for_every_fusion():
    # benchmarks/mvsa.py crosses the registries' fusions and weightings, each
    # fusion read from its recipe.
    for name in FUSION_NAMES:
        assert (ROOT / "configs" / f"mvsa_frozen_{name}.yaml").is_file(), name


def test_model_spec_task_types_table_names_every_head_type():
    import mmtask.heads  # noqa: F401  (registers the head types)
    from mmtask.registry import HEADS

    rows = table_rows(ROOT / "docs" / "model_spec.md", "| type | output |")
    assert {NAME.search(row).group(1) for row in rows} == set(HEADS.names())


def test_cli_tta_help_names_every_image_view():
    from mmtask.cli import build_parser
    from mmtask.models import IMAGE_VIEWS

    help_text = build_parser()._subparsers._group_actions[0].choices["predict"].format_help()
    named = set(re.search(r"\(([a-z_, ]+)\)", " ".join(help_text.split())).group(1).split(", "))
    assert named == set(IMAGE_VIEWS)
