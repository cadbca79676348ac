"""Every notebook runs top to bottom in a fresh kernel, with small-size parameters."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REAL_MVSA = ROOT.parent / "shared" / "data" / "mvsa_single"

# Parameter values that keep each notebook to seconds; every name must be a
# parameter of its notebook, so a renamed parameter cannot silently run big.
SMALL = {
    "01_quickstart.ipynb": {"NUM_POSTS": "120", "EPOCHS": "1"},
    "02_real_data.ipynb": {
        "NUM_POSTS": "24",
        "VAL_POSTS": "16",
        "EPOCHS": "2",
        "UNFREEZE_AT": "1",
        "IMAGE_SIZE": "64",
        "BATCH_SIZE": "8",
    },
    "03_choosing_options.ipynb": {
        "NUM_POSTS": "100",
        "EPOCHS": "2",
        "IMAGE_SIZE": "32",
        "COMPARE_FUSIONS": '["concat"]',
        "COMPARE_WEIGHTINGS": '["dwa"]',
    },
    "04_serving.ipynb": {"NUM_POSTS": "60", "EPOCHS": "1"},
}
# Text each notebook must print, so a fallback or a skipped step shows.
EXPECTED = {
    "02_real_data.ipynb": [
        "Reading MVSA-Single" if (REAL_MVSA / "labelResultAll.txt").is_file() else "Falling back",
        "post_sentiment",
    ],
    "03_choosing_options.ipynb": ["concat", "static", "dwa"],
    "04_serving.ipynb": [
        "exported to",
        "mmtask imported in this fresh kernel: False",
        "image only",
    ],
}
# Notebooks that must display figures.
WITH_FIGURES = {"02_real_data.ipynb", "03_choosing_options.ipynb"}


def parameter_cell(notebook):
    """The cell tagged "parameters" (as papermill has it), else the first code cell."""
    code = [c for c in notebook.cells if c.cell_type == "code"]
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    return (tagged or code)[0]


def with_parameters(notebook, values: dict):
    """Rewrite the parameter cell's `NAME = value` lines named in `values`."""
    cell = parameter_cell(notebook)
    lines, seen = [], set()
    for line in cell.source.splitlines():
        name = line.split("=")[0].strip()
        if name in values:
            seen.add(name)
            line = f"{name} = {values[name]}"
        lines.append(line)
    missing = sorted(set(values) - seen)
    assert not missing, f"parameters {missing} are not in the notebook's parameter cell"
    cell.source = "\n".join(lines)
    return notebook


def execute(path: Path, values: dict, tmp_path: Path, stop_before: str | None = None):
    """Run the notebook in a fresh kernel; with `stop_before`, only the cells before
    the first code cell containing that text."""
    notebook = with_parameters(nbformat.read(path, as_version=4), values)
    if stop_before is not None:
        stop = next(i for i, c in enumerate(notebook.cells) if stop_before in c.source)
        notebook.cells = notebook.cells[:stop]
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs, f"{path.name}: outputs must be stripped in git"
            assert cell.execution_count is None, f"{path.name}: execution counts must be stripped"
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    client.execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, errors
    return outputs


def printed(outputs) -> str:
    return "".join(o.get("text", "") for o in outputs if o.output_type == "stream") + "".join(
        o.get("data", {}).get("text/plain", "") for o in outputs if "data" in o
    )


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS] == sorted(SMALL)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_tagged_parameters(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    cell = parameter_cell(notebook)
    assert "parameters" in cell.metadata.get("tags", []), f"{path.name}: tag the parameter cell"
    assert cell is next(c for c in notebook.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path):
    outputs = execute(path, SMALL[path.name], tmp_path)
    text = printed(outputs)
    for expected in EXPECTED.get(path.name, []):
        assert expected in text, f"{path.name} did not print {expected!r}"
    if path.name in WITH_FIGURES:
        assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name}: no figure"


def test_real_data_notebook_falls_back_without_data_or_weights(tmp_path):
    """Up to training (which the run above covers): the fallbacks are chosen and said."""
    values = {
        **SMALL["02_real_data.ipynb"],
        "DATA_DIR": repr(str(tmp_path / "no_such_folder")),
        "USE_PRETRAINED": "False",
    }
    notebook = ROOT / "notebooks" / "02_real_data.ipynb"
    text = printed(execute(notebook, values, tmp_path, stop_before="mmtask.train("))
    assert "Falling back to a synthetic set" in text
    assert "small CNN from scratch" in text and "small transformer from scratch" in text
    assert "None" in text.splitlines()[-1]  # no schedule for encoders trained from scratch


def test_parameters_are_rewritten_and_unknown_ones_refused():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("NUM_POSTS = 300\nEPOCHS = 6")]
    with_parameters(notebook, {"EPOCHS": "1"})
    assert notebook.cells[0].source == "NUM_POSTS = 300\nEPOCHS = 1"
    with pytest.raises(AssertionError, match="NUM_POST"):
        with_parameters(notebook, {"NUM_POST": "1"})
