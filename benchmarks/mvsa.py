"""MVSA-Single benchmark: each row is a recipe file in configs/, trained through `mmtask.train`.

For every row and seed, the driver loads the row's recipe
(`RunSpec.from_file`), sets the seed and calls `mmtask.train` on
`splits/train.txt` with `splits/val.txt` for validation, exactly what
`mmtask train --spec RECIPE ...` does: frozen encoders are computed once and
cached by the product (`--cache-dir`), and the epoch kept is the recipe's
`training.monitor` best. It reports that epoch's validation metrics per head,
as mean and standard deviation over the seeds, with the wall time.

Rows that start from a pre-trained text encoder run their recipe's
documented `mmtask pretrain` command first (once; the encoder file is
reused). The `fusion` suite runs the recipe of each registered fusion
(`configs/mvsa_frozen_<fusion>.yaml`) with each registered loss weighting
(the recipe's `model.weighting` replaced), plus a contrastive alignment row
for retrieval.

Per-seed results are stored under `--cache-dir`/results and reused by later
invocations (`--only` trains some rows; the table covers every row with
results for all seeds). Prints one JSON line; with `--write FILE` the suite's
Markdown table replaces its section of FILE (`docs/results.md`).

Run (after `make pretrained`), from the project root:
    .venv/bin/python benchmarks/mvsa.py transfer --write docs/results.md
    .venv/bin/python benchmarks/mvsa.py fusion --write docs/results.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from common import effective_cores, machine_figures, print_json_line  # noqa: E402

import mmtask  # noqa: E402
import mmtask.builder  # noqa: E402, F401  (registers every part)
from mmtask.cli import main as mmtask_cli  # noqa: E402
from mmtask.registry import FUSIONS, WEIGHTINGS  # noqa: E402
from mmtask.retrieval import embed_posts, recall_at_k  # noqa: E402
from mmtask.spec import ComponentSpec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
SHARED = ROOT.parent / "shared"
TASKS = ("text_sentiment", "image_sentiment", "post_sentiment")
MEMBER_SEED_STEP = 10  # an ensemble row's members: seeds s, s + 10, s + 20, ...
AIRLINE = SHARED / "data" / "airline_tweets" / "Tweets.csv"
# The `mmtask pretrain` commands the airline recipes document, by encoder file.
PRETRAINING = {
    "runs/airline_transformer_text_encoder.keras": [
        "--spec",
        "configs/airline_transformer_pretrain.yaml",
        "--epochs",
        "4",
    ],
    "runs/airline_minilm_text_encoder.keras": [
        "--spec",
        "configs/airline_minilm_pretrain.yaml",
        "--epochs",
        "1",
        "--learning-rate",
        "5e-5",
        "--batch-size",
        "32",
    ],
}


def log(message: str) -> None:
    print(f"[mvsa] {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite", choices=("transfer", "fusion", "levers"))
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "mvsa_single")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--folds",
        type=int,
        default=None,
        help="K-fold cross-validation on train + val (seed 0) instead of seeds on the val split.",
    )
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".cache" / "mvsa")
    parser.add_argument(
        "--only", nargs="+", default=None, help="Train only the rows with these names."
    )
    parser.add_argument(
        "--rerun", action="store_true", help="Train again the runs that have stored results."
    )
    parser.add_argument("--write", type=Path, default=None, help="Markdown file to update.")
    return parser.parse_args(argv)


@dataclass
class Row:
    """One table row: a recipe file, and what the driver changes in it (seed aside).

    `members` > 1 trains the recipe with that many seeds (the row's seed, then
    steps of `MEMBER_SEED_STEP`) and evaluates their `MultiTaskEnsemble`
    (`mmtask ensemble`); `tta` names image views (`mmtask evaluate --tta`)
    the model is evaluated averaged over.
    """

    name: str
    label: str
    recipe: str
    weighting: str | None = None
    alignment: bool = False
    members: int = 1
    tta: tuple[str, ...] = ()
    results: list[dict] = field(default_factory=list)

    def spec(self, seed: int) -> mmtask.RunSpec:
        spec = mmtask.RunSpec.from_file(ROOT / self.recipe)
        spec.training.seed = seed
        if self.weighting is not None:
            spec.model.weighting = ComponentSpec(self.weighting)
        if self.alignment:
            spec.model.alignment = ComponentSpec("contrastive", {"projection_dim": 128})
        return spec


TRANSFER_ROWS = [
    Row(
        "scratch",
        "(a) from scratch: transformer text, small CNN at 96 px",
        "configs/mvsa_scratch.yaml",
    ),
    Row(
        "frozen",
        "(b) frozen MiniLM-L6 + EfficientNet-Lite0, concat",
        "configs/mvsa_frozen_concat.yaml",
    ),
    Row(
        "unfrozen",
        "(c) frozen 2 epochs, then MiniLM layers 4-5 unfrozen (LR x0.1)",
        "configs/mvsa_unfrozen.yaml",
    ),
    Row(
        "airline",
        "(d) transformer pre-trained on airline tweets, fine-tuned",
        "configs/mvsa_airline_transformer.yaml",
    ),
    Row(
        "airline_minilm",
        "(d') MiniLM fine-tuned on airline tweets, then frozen",
        "configs/mvsa_airline_minilm_frozen.yaml",
    ),
    Row(
        "airline_minilm_unfrozen",
        "(d'') (d'), then unfrozen as (c)",
        "configs/mvsa_airline_minilm_unfrozen.yaml",
    ),
]


LEVER_ROWS = [
    Row(
        "frozen",
        "frozen MiniLM-L6 + EfficientNet-Lite0, concat (baseline)",
        "configs/mvsa_frozen_concat.yaml",
    ),
    Row(
        "tuned",
        "baseline tuned by `mmtask tune` (8 trials, 3-fold CV on train)",
        "configs/mvsa_frozen_concat_tuned.yaml",
    ),
    Row("tweetnorm", "+ tweet normaliser", "configs/mvsa_frozen_concat_tweetnorm.yaml"),
    Row("lite2", "EfficientNet-Lite2 at 260 px", "configs/mvsa_frozen_concat_lite2.yaml"),
    Row(
        "lite2_tweetnorm",
        "EfficientNet-Lite2 + tweet normaliser",
        "configs/mvsa_frozen_concat_lite2_tweetnorm.yaml",
    ),
    Row(
        "frozen_tta",
        "baseline, evaluated with test-time flips (original + mirrored image)",
        "configs/mvsa_frozen_concat.yaml",
        tta=("original", "flip"),
    ),
    Row(
        "frozen_x3",
        "baseline, ensemble of 3 seeds (`mmtask ensemble`)",
        "configs/mvsa_frozen_concat.yaml",
        members=3,
    ),
    Row(
        "lite2_tta",
        "EfficientNet-Lite2, evaluated with test-time flips",
        "configs/mvsa_frozen_concat_lite2.yaml",
        tta=("original", "flip"),
    ),
    Row("mpnet", "all-mpnet-base-v2 for MiniLM-L6", "configs/mvsa_frozen_concat_mpnet.yaml"),
    Row(
        "mpnet_lite2",
        "all-mpnet-base-v2 + EfficientNet-Lite2",
        "configs/mvsa_frozen_concat_mpnet_lite2.yaml",
    ),
    Row(
        "lite0_top",
        "EfficientNet-Lite0 top blocks unfrozen after 2 epochs (stem cached)",
        "configs/mvsa_lite0_top_blocks.yaml",
    ),
    Row(
        "mpnet_top",
        "all-mpnet-base-v2, top 2 of 12 layers unfrozen after 2 epochs (LR x0.1)",
        "configs/mvsa_mpnet_top_layers.yaml",
    ),
    Row(
        "mpnet_top_lite2",
        "MPNet top layers unfrozen, EfficientNet-Lite2",
        "configs/mvsa_mpnet_top_layers_lite2.yaml",
    ),
    Row(
        "unfrozen_cross_attention",
        "(c) with cross_attention + dwa fusion, 8 epochs",
        "configs/mvsa_unfrozen_cross_attention.yaml",
    ),
    Row(
        "minilm_llrd",
        "all of MiniLM unfrozen after 1 epoch: AdamW, layer decay 0.8, warm-up",
        "configs/mvsa_minilm_full_llrd.yaml",
    ),
]


def fusion_rows() -> list[Row]:
    rows = [
        Row(
            f"{fusion}+{weighting}",
            f"{fusion} + {weighting}",
            f"configs/mvsa_frozen_{fusion}.yaml",
            weighting=weighting,
        )
        for fusion in FUSIONS.names()
        for weighting in WEIGHTINGS.names()
    ]
    rows.append(
        Row(
            "concat+static+alignment",
            "concat + static, with contrastive alignment (retrieval)",
            "configs/mvsa_frozen_concat.yaml",
            weighting="static",
            alignment=True,
        )
    )
    return rows


def pretrain_if_needed(spec: mmtask.RunSpec) -> None:
    """Run the `mmtask pretrain` command a recipe documents, if its encoder file is missing."""
    encoder = spec.model.text_encoder
    if encoder is None or encoder.name != "saved":
        return
    path = encoder.options["path"]
    if (ROOT / path).exists():
        return
    log(f"pre-training {path} (once)")
    args = ["pretrain", *PRETRAINING[path], "--data", str(AIRLINE)]
    args += ["--label-column", "airline_sentiment", "--out", path]
    if mmtask_cli(args) != 0:
        raise SystemExit(f"`mmtask {' '.join(args)}` failed")


def splits(args: argparse.Namespace) -> list[tuple]:
    """(name, seed, train posts, val posts) of each run of a row: seeds, or folds."""
    if not args.folds:
        train_posts = mmtask.read_mvsa(args.data, split="train")
        val_posts = mmtask.read_mvsa(args.data, split="val")
        log(f"{len(train_posts)} train and {len(val_posts)} val posts")
        return [(f"seed{seed}", seed, train_posts, val_posts) for seed in args.seeds]
    posts = mmtask.read_mvsa(args.data)
    order = np.random.default_rng(0).permutation(len(posts))
    folds = np.array_split(order, args.folds)
    log(f"{len(posts)} posts in {args.folds} folds")
    runs = []
    for k, held_out in enumerate(folds):
        held = set(held_out.tolist())
        train_ids = [posts.ids[i] for i in order if i not in held]
        val_ids = [posts.ids[i] for i in held_out]
        runs.append((f"fold{k}", 0, posts.select(train_ids), posts.select(val_ids)))
    return runs


def train_once(row: Row, seed: int, train_posts, val_posts, cache_dir: Path, suite: str) -> dict:
    specs = [row.spec(seed + MEMBER_SEED_STEP * k) for k in range(row.members)]
    pretrain_if_needed(specs[0])
    start = time.perf_counter()
    results = [
        mmtask.train(
            spec,
            train_posts,
            val_posts,
            verbose=0,
            contributions=suite == "fusion",
            cache_dir=cache_dir / "features",
        )
        for spec in specs
    ]
    result = results[0]
    report = result.report
    alone = {}
    if row.members > 1 or row.tta:
        # Each member on its own, image as is: the paired figure the ensemble is compared with.
        alone = {
            f"{t}_accuracy_alone": statistics.fmean(r.report.tasks[t].accuracy for r in results)
            for t in TASKS
        }
        model = mmtask.MultiTaskEnsemble(
            [r.model for r in results], image_views=list(row.tta or ("original",))
        )
        report = mmtask.evaluate_model(model, mmtask.make_dataset(val_posts, model=model))
    figures = {
        "best_epoch": result.selection["best_epoch"],
        **{f"{t}_accuracy": report.tasks[t].accuracy for t in TASKS},
        **{f"{t}_macro_f1": report.tasks[t].macro_f1 for t in TASKS},
        "post_sentiment_weighted_f1": report.tasks["post_sentiment"].weighted_f1,
        **alone,
    }
    if result.contributions is not None:
        post = result.contributions["post_sentiment"]
        figures["post_accuracy_text_removed"] = post["text_masked"]
        figures["post_accuracy_image_removed"] = post["image_masked"]
    if row.alignment:
        embedded = embed_posts(result.model, val_posts)
        recall = recall_at_k(embedded["text"], embedded["image"])
        figures.update(
            {
                f"{direction}_recall@{k}": value
                for direction, by_k in recall.items()
                for k, value in by_k.items()
            }
        )
    figures["wall_s"] = time.perf_counter() - start
    log(f"{row.name} seed {seed}: " + ", ".join(f"{k} {v:.4g}" for k, v in figures.items()))
    return figures


# ---- table ---------------------------------------------------------------------------------


def summarize(runs: Sequence[Row]) -> dict:
    summary = {}
    for run in runs:
        summary[run.name] = {}
        for key in run.results[0]:
            values = [r[key] for r in run.results]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            summary[run.name][key] = {"mean": statistics.fmean(values), "std": spread}
    return summary


def cell(stats: dict, percent: bool = True) -> str:
    scale = 100 if percent else 1
    return f"{stats['mean'] * scale:.1f} ± {stats['std'] * scale:.1f}"


TRANSFER_COLUMNS = [
    ("text acc", "text_sentiment_accuracy"),
    ("text macro-F1", "text_sentiment_macro_f1"),
    ("image acc", "image_sentiment_accuracy"),
    ("image macro-F1", "image_sentiment_macro_f1"),
    ("post acc", "post_sentiment_accuracy"),
    ("post weighted-F1", "post_sentiment_weighted_f1"),
]
FUSION_COLUMNS = [
    *TRANSFER_COLUMNS[::2],
    ("post acc, text removed", "post_accuracy_text_removed"),
    ("post acc, image removed", "post_accuracy_image_removed"),
]


def markdown_table(runs: Sequence[Row], summary: dict, columns) -> str:
    header = ["configuration", "recipe", *[c[0] for c in columns], "wall s / run"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs:
        stats = summary[run.name]
        values = [cell(stats[key]) if key in stats else "" for _, key in columns]
        wall = f"{stats['wall_s']['mean']:.0f}"
        recipe = f"`{run.recipe}`" + (f" + {run.weighting}" if run.weighting else "")
        recipe += f" x {run.members} seeds" if run.members > 1 else ""
        recipe += f" + `--tta {' '.join(run.tta)}`" if run.tta else ""
        lines.append("| " + " | ".join([run.label, recipe, *values, wall]) + " |")
    return "\n".join(lines)


def retrieval_table(summary: dict) -> str:
    stats = summary.get("concat+static+alignment")
    if stats is None:
        return ""
    lines = ["| direction | recall@1 | recall@5 | recall@10 |", "|---|---|---|---|"]
    for direction in ("text_to_image", "image_to_text"):
        values = [cell(stats[f"{direction}_recall@{k}"]) for k in (1, 5, 10)]
        lines.append("| " + " | ".join([direction.replace("_", " "), *values]) + " |")
    return "\n".join(lines)


def write_section(path: Path, suite: str, body: str) -> None:
    """Replace the text between this suite's markers in `path` (appending them if absent)."""
    start, end = f"<!-- mvsa:{suite}:start -->", f"<!-- mvsa:{suite}:end -->"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    block = f"{start}\n{body}\n{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block + "\n"
    path.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    os.chdir(ROOT)  # recipes name files relative to the project root
    wall_start = time.perf_counter()
    cores = effective_cores()
    if not (args.data / "labelResultAll.txt").is_file():
        raise SystemExit(f"No MVSA-Single folder at {args.data}: pass --data.")
    runs = splits(args)
    suite_rows = {"transfer": TRANSFER_ROWS, "fusion": fusion_rows(), "levers": LEVER_ROWS}
    folder = args.suite + (f"_cv{args.folds}" if args.folds else "")
    rows = []
    for row in suite_rows[args.suite]:
        for name, seed, train_posts, val_posts in runs:
            stored = args.cache_dir / "results" / folder / f"{row.name}_{name}.json"
            if stored.is_file() and not args.rerun:
                row.results.append(json.loads(stored.read_text(encoding="utf-8")))
            elif not args.only or row.name in args.only:
                row.results.append(
                    train_once(row, seed, train_posts, val_posts, args.cache_dir, args.suite)
                )
                stored.parent.mkdir(parents=True, exist_ok=True)
                stored.write_text(json.dumps(row.results[-1]), encoding="utf-8")
        if len(row.results) == len(runs):
            rows.append(row)
    val_posts = runs[0][3]
    if not rows:
        raise SystemExit("No row of this suite has results for every seed yet.")
    summary = summarize(rows)
    columns = FUSION_COLUMNS if args.suite == "fusion" else TRANSFER_COLUMNS
    table = markdown_table(rows, summary, columns)
    retrieval = retrieval_table(summary) if args.suite == "fusion" else ""
    if retrieval:
        table += "\n\nRetrieval on val (text and image of the same post match):\n\n"
        table += retrieval
    print(table, file=sys.stderr)
    if args.write is not None:
        command = f"python benchmarks/mvsa.py {' '.join(argv or sys.argv[1:])}"
        if args.folds:
            over = (
                f"{args.folds}-fold cross-validation on train + val of {args.data.name} "
                f"(seed 0; about {len(val_posts)} posts per fold). Mean ± std over folds"
            )
        else:
            over = (
                f"seeds {args.seeds}; val split of {args.data.name} ({len(val_posts)} posts). "
                "Mean ± std over seeds"
            )
        body = f"Command: `{command}`; {over}, in %.\n\n{table}"
        write_section(args.write, folder, body)
    majority = {
        t: max(val_posts.label_counts(t).values()) / int((val_posts.labels[t] >= 0).sum())
        for t in TASKS
    }
    return {
        "benchmark": f"mvsa_{args.suite}",
        "seeds": args.seeds,
        "majority_accuracy": majority,
        "runs": summary,
        **machine_figures(wall_start, cores),
    }


if __name__ == "__main__":
    print_json_line(main)
