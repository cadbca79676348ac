"""Every notebook runs top to bottom in a fresh kernel, with small-size parameters."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
SMALL = {"NUM_POSTS": "120", "EPOCHS": "1"}


def with_small_parameters(notebook):
    """Rewrite the first code cell's `NAME = value` lines named in SMALL."""
    cell = next(c for c in notebook.cells if c.cell_type == "code")
    lines = []
    for line in cell.source.splitlines():
        name = line.split("=")[0].strip()
        lines.append(f"{name} = {SMALL[name]}" if name in SMALL else line)
    cell.source = "\n".join(lines)
    return notebook


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path):
    notebook = with_small_parameters(nbformat.read(path, as_version=4))
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs, f"{path.name}: outputs must be stripped in git"
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    client.execute()
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors
