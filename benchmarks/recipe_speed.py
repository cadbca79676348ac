"""Speed of the recipe path on MVSA-Single: frozen encoders computed once, then read from the cache.

Runs `configs/mvsa_frozen_gated.yaml` through `mmtask.train` exactly as
`mmtask train --spec ...` does:

- `first_run_s`: with an empty cache folder (the frozen MiniLM and
  EfficientNet-Lite0 run once over train and val, then 25 epochs on their
  outputs); target <= 600 s on 2 cores.
- `second_run_s`: the same run again, features read from the cache; target <= 180 s.
- `epoch_ratio_uncached_vs_cached`: one epoch's wall time with the frozen
  encoders running in every step (`cache_frozen_encoders: false`) over one
  with cached features, on the first `--subset` training posts (the second
  of two epochs, after tracing).

Prints one JSON line. Run from the project root after `make pretrained`:
    .venv/bin/python benchmarks/recipe_speed.py --cache-dir .cache/mvsa/features
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import keras  # noqa: E402
from common import effective_cores, machine_figures, positive_int, print_json_line  # noqa: E402

import mmtask  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "configs" / "mvsa_frozen_gated.yaml"


class EpochTimes(keras.callbacks.Callback):
    """Wall seconds of each epoch's training and validation."""

    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)


def timed_run(spec, train_posts, val_posts, cache_dir: Path) -> tuple[float, list[float], dict]:
    timer = EpochTimes()
    start = time.perf_counter()
    result = mmtask.train(
        spec, train_posts, val_posts, callbacks=[timer], verbose=0, cache_dir=cache_dir
    )
    return time.perf_counter() - start, timer.times, result


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/mvsa_single")
    parser.add_argument("--cache-dir", type=Path, required=True, help="must be empty or absent")
    parser.add_argument("--subset", type=positive_int, default=256)
    args = parser.parse_args()
    if args.cache_dir.exists() and any(args.cache_dir.iterdir()):
        sys.exit(f"--cache-dir {args.cache_dir} is not empty: the first run must compute features")
    os.chdir(ROOT)
    wall_start = time.perf_counter()
    cores = effective_cores()
    train_posts = mmtask.read_mvsa(args.data, split="train")
    val_posts = mmtask.read_mvsa(args.data, split="val")
    spec = mmtask.RunSpec.from_file(RECIPE)
    first_s, first_epochs, first = timed_run(spec, train_posts, val_posts, args.cache_dir)
    second_s, second_epochs, second = timed_run(
        mmtask.RunSpec.from_file(RECIPE), train_posts, val_posts, args.cache_dir
    )
    subset = train_posts.select(train_posts.ids[: args.subset])
    epoch_s = {}
    for cached in (True, False):
        spec = mmtask.RunSpec.from_file(RECIPE)
        spec.training.epochs = 2
        spec.training.cache_frozen_encoders = cached
        _, times, _ = timed_run(spec, subset, None, args.cache_dir)
        epoch_s["cached" if cached else "uncached"] = times[-1]
    return {
        "benchmark": "recipe_speed",
        "recipe": str(RECIPE.relative_to(ROOT)),
        "epoch_ratio_uncached_vs_cached": round(epoch_s["uncached"] / epoch_s["cached"], 1),
        "first_run_s": round(first_s, 1),
        "second_run_s": round(second_s, 1),
        "first_run_feature_s": round(first_s - sum(first_epochs), 1),
        "second_run_epochs_s": round(sum(second_epochs), 1),
        "epochs": len(first_epochs),
        "subset_epoch_s": {k: round(v, 2) for k, v in epoch_s.items()},
        "subset_posts": len(subset),
        "post_accuracy": [
            round(r.report.tasks["post_sentiment"].accuracy, 4) for r in (first, second)
        ],
        **machine_figures(wall_start, cores),
    }


if __name__ == "__main__":
    print_json_line(main)
