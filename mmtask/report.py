"""A run folder as one self-contained HTML page: metrics per task, plots and spec.

The page needs no server and loads nothing: styles are inline and the plots
are embedded as base64 PNG data URIs, so `report.html` can be mailed or
attached on its own.

Example:
```python
from mmtask.report import write_html_report

page = write_html_report("run")  # run/report.html, plus the run's PNG plots
```
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from html import escape
from pathlib import Path

from mmtask.errors import MmtaskError
from mmtask.evaluation import TaskReport
from mmtask.plots import as_evaluation_report, read_run_file, save_run_plots
from mmtask.run_folder import REPORT_FILE, SELECTION_FILE, SPEC_FILE

HTML_FILE = "report.html"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 80em; color: #222; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.8em; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f2f2f2; }
figure { margin: 1em 0; }
img { max-width: 100%; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
"""


def write_html_report(run_dir: str | Path, plots: Mapping[str, str | Path] | None = None) -> Path:
    """Write `run_dir/report.html`: the metrics table per task, the plots and the spec.

    The table shows each task's majority-class rate beside its accuracy: the
    score of always guessing the most frequent class.

    Args:
        run_dir: str | Path. A run folder written by `mmtask.training.save_run`.
        plots: mapping of plot name -> PNG file to embed, as `save_run_plots`
            returns. By default the plots are (re)written with `save_run_plots`.

    Returns:
        The path of the page.

    Raises:
        MmtaskError: the folder, its `history.json` or its `report.json` is
            missing or unreadable.
    """
    run_dir = Path(run_dir)
    if plots is None:
        plots = save_run_plots(run_dir)
    report = read_run_file(run_dir, REPORT_FILE)
    try:
        report = as_evaluation_report(report)
    except ValueError as error:
        raise MmtaskError(f"{run_dir / REPORT_FILE}: {error}") from error
    spec = read_run_file(run_dir, SPEC_FILE) if (run_dir / SPEC_FILE).is_file() else None
    selection = _selection_html(run_dir)

    classifying = [r for r in report.tasks.values() if isinstance(r, TaskReport)]
    rows = "\n".join(
        "<tr>"
        f"<td>{escape(r.task)}</td>"
        f'<td class="number">{r.count}</td>'
        f'<td class="number">{r.majority_rate:.4f}</td>'
        f'<td class="number">{r.accuracy:.4f}</td>'
        f'<td class="number">{r.macro_f1:.4f}</td>'
        f'<td class="number">{r.weighted_f1:.4f}</td>'
        "</tr>"
        for r in classifying
    )
    others = "\n".join(
        _figures_table([r for r in report.tasks.values() if type(r) is kind])
        for kind in dict.fromkeys(
            type(r) for r in report.tasks.values() if not isinstance(r, TaskReport)
        )
    )
    figures = "\n".join(
        f'<figure><img src="data:image/png;base64,{_base64(path)}" alt="{escape(_title(name))}">'
        f"<figcaption>{escape(_title(name))}</figcaption></figure>"
        for name, path in plots.items()
    )
    if spec is None:
        spec_html = f"<p>No {escape(SPEC_FILE)} in this run folder.</p>"
    else:
        spec_html = f"<pre>{escape(json.dumps(spec, indent=2))}</pre>"
    title = escape(f"mmtask run: {run_dir.resolve().name}")
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>{title}</h1>
<p>Run folder: <code>{escape(str(run_dir.resolve()))}</code></p>
<h2>Metrics per task</h2>
{selection}
<table>
<thead><tr><th>task</th><th>count</th><th>majority class</th><th>accuracy</th>
<th>macro-F1</th><th>weighted-F1</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
{others}
<h2>Plots</h2>
{figures}
<h2>Spec</h2>
{spec_html}
</body>
</html>
"""
    path = run_dir / HTML_FILE
    path.write_text(page, encoding="utf-8")
    return path


def _selection_html(run_dir: Path) -> str:
    """Which epoch's weights the figures are of, from the run's selection.json."""
    if not (run_dir / SELECTION_FILE).is_file():
        return ""
    kept = read_run_file(run_dir, SELECTION_FILE)
    if kept.get("best_epoch") is None:
        return ""
    stopped = ", stopped early" if kept.get("stopped_early") else ""
    return escape(
        f"Weights of epoch {kept['best_epoch'] + 1} of {kept['epochs_run']}{stopped}: "
        f"the best {kept['monitor']} ({kept['best_value']:.4f})."
    ).join(("<p>", "</p>"))


def _figures_table(reports: list) -> str:
    """A table of tasks of one non-classifying type: their figures, the baseline first."""
    header = "".join(f"<th>{escape(name)}</th>" for name in reports[0].row())
    rows = "\n".join(
        f'<tr><td>{escape(r.task)}</td><td class="number">{r.count}</td>'
        + "".join(f'<td class="number">{v:.4f}</td>' for v in r.row().values())
        + "</tr>"
        for r in reports
    )
    return (
        f"<h3>{escape(reports[0].task_type)} tasks</h3>\n<table>\n<thead><tr><th>task</th>"
        f"<th>count</th>{header}</tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>"
    )


def _base64(path: str | Path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _title(name: str) -> str:
    return name.replace("_", " ").capitalize()
