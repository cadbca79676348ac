"""The HTML run report and `mmtask report`: one self-contained, escaped page per run."""

import base64
import html
import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from mmtask.cli import main
from mmtask.data import read_mvsa, write_synthetic_mvsa
from mmtask.report import write_html_report
from mmtask.spec import RunSpec
from mmtask.training import save_run, train

NAMES = ["negative", "neutral", "positive"]
# Hand-picked metrics, distinct per task so a row showing another task's numbers fails.
METRICS = {
    "text_sentiment": {"count": 14, "accuracy": 0.8125, "macro_f1": 0.6, "weighted_f1": 0.71234},
    "<b>bold</b>": {"count": 9, "accuracy": 0.5, "macro_f1": 0.33333, "weighted_f1": 0.25},
}
CONFUSIONS = {
    "text_sentiment": [[4, 1, 0], [1, 3, 1], [0, 1, 3]],
    "<b>bold</b>": [[1, 1, 1], [1, 1, 1], [1, 1, 1]],
}
# The largest row of each confusion matrix over its total: 5 of 14, 3 of 9.
MAJORITY_RATES = {"text_sentiment": "0.3571", "<b>bold</b>": "0.3333"}
SPEC = {"model": {"image_size": 32, "note": "<script>alert(1)</script>"}, "training": {"epochs": 2}}


def write_run(folder):
    history = {"loss": [2.0, 1.5]}
    for task in METRICS:
        for key, values in {
            "loss": [1.0, 0.7],
            "accuracy": [0.4, 0.6],
            "macro_f1": [0.3, 0.5],
            "loss_weight": [1.0, 0.9],
        }.items():
            history[f"{task}_{key}"] = values
            history[f"val_{task}_{key}"] = [v * 0.9 for v in values]
    report = {
        task: {"task": task, "label_names": NAMES, "confusion": CONFUSIONS[task], **metrics}
        for task, metrics in METRICS.items()
    }
    folder.mkdir()
    (folder / "history.json").write_text(json.dumps(history))
    (folder / "report.json").write_text(json.dumps(report))
    (folder / "spec.json").write_text(json.dumps(SPEC))
    return folder


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    run = write_run(tmp_path_factory.mktemp("report") / "run")
    path = write_html_report(run)
    return run, path, path.read_text(encoding="utf-8")


def table_rows(text):
    rows = re.findall(r"<tr>(.*?)</tr>", text, re.DOTALL)
    return [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row) for row in rows]


def embedded_pngs(text):
    return re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)


def assert_png_not_blank(data):
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("RGB")).astype(np.int32)
    assert pixels.std() > 0
    colours = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
    assert np.unique(colours).size > 1


def test_page_has_a_metrics_row_per_task(page):
    _, path, text = page
    assert path.name == "report.html" and path.is_file()
    rows = table_rows(text)
    assert rows[0] == ["task", "count", "majority class", "accuracy", "macro-F1", "weighted-F1"]
    expected = [
        [
            html.escape(task),
            str(m["count"]),
            MAJORITY_RATES[task],
            f"{m['accuracy']:.4f}",
            f"{m['macro_f1']:.4f}",
            f"{m['weighted_f1']:.4f}",
        ]
        for task, m in METRICS.items()
    ]
    assert rows[1:] == expected
    assert "0.8125" in rows[1] and "0.7123" in rows[1] and "0.3333" in rows[2]


def test_page_embeds_every_plot_and_loads_nothing(page):
    run, _, text = page
    pngs = embedded_pngs(text)
    assert len(pngs) == 3 == text.count("<img ")
    assert len(pngs) == len(list(run.glob("*.png")))
    for data in pngs:
        assert_png_not_blank(base64.b64decode(data))
    assert not re.search(r"https?://|<link|<script", text, re.IGNORECASE)


def test_page_without_a_selection_file_says_nothing_of_epochs(page):
    assert "Weights of epoch" not in page[2]


def test_page_escapes_task_names_and_the_spec(page):
    _, _, text = page
    assert "&lt;b&gt;bold&lt;/b&gt;" in text
    assert "<b>" not in text and "<script>" not in text
    spec_block = re.search(r"<pre>(.*?)</pre>", text, re.DOTALL).group(1)
    assert json.loads(html.unescape(spec_block)) == SPEC
    assert "\n" in spec_block  # pretty-printed


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("trained")
    data = write_synthetic_mvsa(root / "data", num_posts=100, seed=3, image_size=32)
    spec = RunSpec.from_dict(
        {
            "model": {
                "image_size": 32,
                "text_encoder": {
                    "name": "transformer",
                    "options": {
                        "max_tokens": 300,
                        "sequence_length": 8,
                        "embed_dim": 8,
                        "intermediate_dim": 8,
                    },
                },
                "image_encoder": {
                    "name": "small_cnn",
                    "options": {"filters": [4], "output_dim": 8},
                },
                "fusion": {"name": "concat", "options": {"units": [8]}},
            },
            "training": {"epochs": 2, "batch_size": 32},
        }
    )
    result = train(spec, read_mvsa(data, split="train"), read_mvsa(data, split="val"), verbose=0)
    save_run(result, spec, root / "run")
    return root / "run"


def test_cli_report_on_a_trained_run(trained_run, capsys):
    assert main(["report", str(trained_run)]) == 0
    printed = dict(line.split(": ", 1) for line in capsys.readouterr().out.strip().splitlines())
    assert set(printed) == {"learning_curves", "confusion_matrices", "loss_weights", "html"}
    text = (trained_run / "report.html").read_text(encoding="utf-8")
    assert printed["html"] == str(trained_run / "report.html")
    report = json.loads((trained_run / "report.json").read_text())
    assert set(report) == {"text_sentiment", "image_sentiment", "post_sentiment"}
    for task, metrics in report.items():
        row = f'<td>{task}</td><td class="number">{metrics["count"]}</td>'
        row += f'<td class="number">{metrics["majority_rate"]:.4f}</td>'
        assert row + f'<td class="number">{metrics["accuracy"]:.4f}</td>' in text
    assert len(embedded_pngs(text)) == 3
    kept = json.loads((trained_run / "selection.json").read_text())
    val_loss = json.loads((trained_run / "history.json").read_text())["val_loss"]
    assert kept["best_epoch"] == val_loss.index(min(val_loss))
    assert f"Weights of epoch {kept['best_epoch'] + 1} of 2: the best val_loss" in text
    for name in ("learning_curves", "confusion_matrices", "loss_weights"):
        assert printed[name] == str(trained_run / f"{name}.png")
        assert_png_not_blank((trained_run / f"{name}.png").read_bytes())


def test_cli_report_user_errors_are_one_line(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main(["report", str(missing)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mmtask report: error:") and "nowhere" in err[0]

    run = write_run(tmp_path / "run")
    (run / "history.json").unlink()
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "history.json" in err[0]
    assert not (run / "report.html").exists()
