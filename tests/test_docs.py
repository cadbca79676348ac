"""The documentation runs: every Python block of README.md and docs/*.md, and every shell example.

Blocks of one page run in order in one namespace, in a fresh temporary
folder, so a page reads as one session a user can follow. Shell examples
(```bash / ```text / ``` blocks) are not run, but every `mmtask ...` command
in them must parse with the real command-line parser, so flags cannot drift.
"""

import re
import shlex
from pathlib import Path

import pytest

from mmtask.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
ANY_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.DOTALL | re.MULTILINE)
LINK = re.compile(r"\[[^\]]+\]\(([^)\s]+)\)")
INLINE_CODE = re.compile(r"`[^`\n]*`")

# The user guides docs/README.md indexes; each must hold runnable Python.
GUIDES = [
    "data.md",
    "model_spec.md",
    "training.md",
    "tuning.md",
    "transfer.md",
    "fusion.md",
    "export.md",
    "cli.md",
]
# Pages written from measured runs rather than as guides: their Python, if
# any, must run, but they need not have any.
RESULT_PAGES = {"results.md", "performance.md"}

PAGES = ["README.md"] + sorted(f"docs/{p.name}" for p in DOCS.glob("*.md"))


def python_blocks(path: Path) -> list[str]:
    return BLOCK.findall(path.read_text(encoding="utf-8"))


def shell_commands(path: Path) -> list[str]:
    """Every `mmtask ...` command line of the page's non-Python code blocks."""
    commands = []
    for language, body in ANY_BLOCK.findall(path.read_text(encoding="utf-8")):
        if language == "python":
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith("mmtask "):
                commands.append(line.split(" #")[0])
    return commands


def run_page(doc: str, tmp_path: Path, monkeypatch) -> dict:
    blocks = python_blocks(ROOT / doc)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for number, block in enumerate(blocks, start=1):
        exec(compile(block, f"{doc} python block {number}", "exec"), namespace)
    return namespace


def test_readme_example_runs(tmp_path, monkeypatch):
    assert python_blocks(ROOT / "README.md"), "README.md has no python block"
    run_page("README.md", tmp_path, monkeypatch)
    assert (tmp_path / "exported_model" / "saved_model.pb").is_file()


@pytest.mark.parametrize("doc", [p for p in PAGES if p != "README.md"])
def test_python_blocks_run(doc, tmp_path, monkeypatch):
    if Path(doc).name not in RESULT_PAGES:
        assert python_blocks(ROOT / doc), f"{doc} has no python block"
    run_page(doc, tmp_path, monkeypatch)


def test_every_guide_exists_and_is_indexed():
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    for guide in GUIDES:
        assert (DOCS / guide).is_file(), f"docs/{guide} is missing"
        assert f"({guide})" in index, f"docs/README.md does not link {guide}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for guide in GUIDES:
        assert f"(docs/{guide})" in readme, f"README.md does not link docs/{guide}"


@pytest.mark.parametrize("doc", PAGES + ["data/README.md"])
def test_relative_links_resolve(doc):
    path = ROOT / doc
    prose = INLINE_CODE.sub("", ANY_BLOCK.sub("", path.read_text(encoding="utf-8")))
    for target in LINK.findall(prose):
        if "://" in target or target.startswith(("#", "mailto:")):
            continue
        resolved = (path.parent / target.split("#")[0]).resolve()
        assert resolved.exists(), f"{doc} links to {target}, which does not exist"


@pytest.mark.parametrize("doc", PAGES + ["data/README.md"])
def test_shell_examples_parse(doc, capsys):
    parser = build_parser()
    for command in shell_commands(ROOT / doc):
        try:
            parser.parse_args(shlex.split(command)[1:])
        except SystemExit:
            pytest.fail(f"{doc}: `{command}` does not parse: {capsys.readouterr().err}")


def test_shell_command_parsing_catches_bad_flags(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "```bash\nmmtask train --data d \\\n  --epoks 3 --out r\n```\n", encoding="utf-8"
    )
    (command,) = shell_commands(page)
    with pytest.raises(SystemExit):
        build_parser().parse_args(shlex.split(command)[1:])
