"""How long training waits for its input: the default model fed from disk vs from memory.

The model is the default mmtask model as `train_step.py` builds it:
`build_model(ModelSpec(image_size=--image-size), posts.label_names,
posts.texts)` (transformer text encoder, small CNN image encoder, concat
fusion, heads for text_sentiment, image_sentiment and post_sentiment),
compiled with `compile(optimizer="adam")`, trained on the real MVSA-Single
posts (`--limit` for the first N).

- disk: `make_dataset(posts, image_size, batch_size, training=True,
  repeat=True, drop_remainder=True)`: every step reads, decodes, resizes and
  augments its images from the image files (no cache; shuffled, augmented,
  batched and prefetched with AUTOTUNE, as in real training).
- memory: `--memory-batches` batches taken once from the same pipeline
  (untimed), then served as `from_tensor_slices(...).batch(batch_size)
  .cache().repeat().prefetch(AUTOTUNE)`, the cache filled before timing:
  tensors of exactly the same shapes and dtypes, with no input work.

After a warm-up `fit` on each (tracing), each runs `fit(dataset,
steps_per_epoch=--steps, epochs=1)` `--repeats` times, alternating which goes
first; a `fit` starts a fresh iterator, so the disk figure includes filling
the pipeline's buffers, as every epoch of real training does. Reported:
`wait_fraction = 1 - t_memory / t_disk` on the median wall times (the share of
the disk run spent waiting for input; target <= 5%), the same per repeat,
the median examples/s of both, their process CPU time per example and cores
kept busy, and `pipeline_examples_per_s`: the disk pipeline alone, read for
`--steps` batches from a fresh iterator each repeat (no model), which says how
far the input could run ahead of training. Every image file is read once
before timing, so the disk path reads from the page cache, not the device;
`effective_cores` says how many cores' worth of throughput the machine's
CPUs really deliver (the input pipeline and the training step share them).

`--backend jax` trains with Keras on JAX from the same tf.data pipeline; the
text encoder then reads token ids (`reads="token_ids"`), which the pipeline
makes from the texts on each batch (on TensorFlow the model tokenizes).

Prints one JSON line on stdout; progress goes to stderr.

Run:
    .venv/bin/python benchmarks/input_wait.py
    .venv/bin/python benchmarks/input_wait.py --limit 256 --steps 5 --repeats 1
    .venv/bin/python benchmarks/input_wait.py --backend jax
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

BACKENDS = ("tensorflow", "jax")


def _backend_option(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="tensorflow",
        help="Keras backend of the training step (default tensorflow).",
    )
    return parser


# Keras reads its backend when first imported.
os.environ["KERAS_BACKEND"] = _backend_option().parse_known_args()[0].backend

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from common import (  # noqa: E402
    DEFAULT_DATA,
    effective_cores,
    load_posts,
    machine_figures,
    positive_int,
    print_json_line,
    time_fit,
    warm_page_cache,
)

from mmtask.builder import build_model  # noqa: E402
from mmtask.data import Posts, make_dataset  # noqa: E402
from mmtask.spec import ComponentSpec, ModelSpec  # noqa: E402

TARGET_WAIT_FRACTION = 0.05


def log(message: str) -> None:
    print(f"[input_wait] {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], parents=[_backend_option()]
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="MVSA-Single folder.")
    parser.add_argument(
        "--limit", type=positive_int, default=None, help="Posts to train on (default all)."
    )
    parser.add_argument("--image-size", type=positive_int, default=ModelSpec().image_size)
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument(
        "--steps", type=positive_int, default=50, help="Training steps per timed fit."
    )
    parser.add_argument(
        "--repeats", type=positive_int, default=3, help="Timed fits per source; medians reported."
    )
    parser.add_argument("--warmup-steps", type=int, default=3, help="Untimed steps per source.")
    parser.add_argument(
        "--memory-batches", type=positive_int, default=8, help="Distinct batches in memory."
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the model's weights.")
    return parser.parse_args(argv)


def disk_dataset(posts: Posts, model, batch_size: int) -> tf.data.Dataset:
    """Training batches read, decoded and augmented from the image files at every step."""
    return make_dataset(
        posts,
        model=model,
        batch_size=batch_size,
        training=True,
        repeat=True,
        drop_remainder=True,
    )


def memory_dataset(source: tf.data.Dataset, batches: int, batch_size: int) -> tf.data.Dataset:
    """`batches` batches of `source`, computed once, cached in memory and repeated forever."""
    taken = list(source.take(batches))
    arrays = tf.nest.map_structure(lambda *parts: np.concatenate(parts), *taken)
    dataset = tf.data.Dataset.from_tensor_slices(arrays).batch(batch_size, drop_remainder=True)
    dataset = dataset.cache().repeat().prefetch(tf.data.AUTOTUNE)
    for _ in zip(range(batches + 1), dataset, strict=False):
        pass  # one full pass fills the cache
    return dataset


def time_pipeline(dataset: tf.data.Dataset, steps: int) -> tuple[float, float]:
    """Wall and process CPU seconds of reading `steps` batches from a fresh iterator."""
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in zip(range(steps), dataset, strict=False):
        pass
    return time.perf_counter() - start, time.process_time() - cpu_start


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    wall_start = time.perf_counter()
    posts = load_posts(args.data.expanduser(), args.limit)
    cores_delivered = effective_cores()
    log(f"{os.cpu_count()} CPUs deliver the throughput of {cores_delivered} cores")
    cached_bytes = warm_page_cache(posts.image_paths)
    log(f"{len(posts)} posts; read {cached_bytes / 1e6:.0f} MB of images once")

    keras.utils.set_random_seed(args.seed)
    spec = ModelSpec(image_size=args.image_size)  # default parts; tasks from the data
    if keras.backend.backend() != "tensorflow":
        # Raw strings need TensorFlow in the model: the pipeline tokenizes instead.
        spec.text_encoder = ComponentSpec("transformer", {"reads": "token_ids"})
    model = build_model(spec, posts.label_names, posts.texts)
    model.compile(optimizer="adam")
    log(
        f"backend {keras.backend.backend()}; tasks and their inputs: {model.task_inputs}; "
        f"{model.count_params()} parameters"
    )

    disk = disk_dataset(posts, model, args.batch_size)
    memory = memory_dataset(
        disk_dataset(posts, model, args.batch_size), args.memory_batches, args.batch_size
    )
    if disk.element_spec != memory.element_spec:
        raise RuntimeError(
            f"The two sources differ: disk {disk.element_spec}, memory {memory.element_spec}"
        )
    sources = {"disk": disk, "memory": memory}
    for name, dataset in sources.items():
        start = time.perf_counter()
        model.fit(dataset, steps_per_epoch=args.warmup_steps, epochs=1, verbose=0, shuffle=False)
        log(f"{name}: warm-up of {args.warmup_steps} steps in {time.perf_counter() - start:.1f} s")

    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in sources}
    pipeline_runs = []
    examples = args.steps * args.batch_size
    for repeat in range(args.repeats):
        order = list(sources) if repeat % 2 == 0 else list(reversed(sources))
        for name in order:
            runs[name].append(time_fit(model, sources[name], args.steps))
        pipeline_runs.append(time_pipeline(disk, args.steps))
        log(
            f"repeat {repeat + 1}/{args.repeats}: "
            + ", ".join(f"{name} {examples / runs[name][-1][0]:.1f}" for name in sources)
            + f" examples/s; pipeline alone {examples / pipeline_runs[-1][0]:.1f} examples/s"
        )

    wall = {name: statistics.median(w for w, _ in r) for name, r in runs.items()}
    cpu_ms = {name: statistics.median(c / examples * 1e3 for _, c in r) for name, r in runs.items()}
    wait_fraction = 1 - wall["memory"] / wall["disk"]
    pipeline_wall = statistics.median(w for w, _ in pipeline_runs)
    pipeline_cpu_ms = statistics.median(c / examples * 1e3 for _, c in pipeline_runs)
    return {
        "benchmark": "input_wait",
        "backend": keras.backend.backend(),
        "text_input": model.encoders["text"].reads,
        "posts": len(posts),
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "repeats": args.repeats,
        "memory_batches": args.memory_batches,
        "task_inputs": dict(model.task_inputs),
        "params": model.count_params(),
        "disk_examples_per_s": round(examples / wall["disk"], 1),
        "memory_examples_per_s": round(examples / wall["memory"], 1),
        "wait_fraction": round(wait_fraction, 4),
        "target_wait_fraction": TARGET_WAIT_FRACTION,
        "meets_target": wait_fraction <= TARGET_WAIT_FRACTION,
        "wait_fraction_runs": [
            round(1 - m / d, 4) for (d, _), (m, _) in zip(runs["disk"], runs["memory"], strict=True)
        ],
        "disk_examples_per_s_runs": [round(examples / w, 1) for w, _ in runs["disk"]],
        "memory_examples_per_s_runs": [round(examples / w, 1) for w, _ in runs["memory"]],
        "disk_cpu_ms_per_example": round(cpu_ms["disk"], 3),
        "memory_cpu_ms_per_example": round(cpu_ms["memory"], 3),
        "cores_busy_runs": {name: [round(c / w, 2) for w, c in r] for name, r in runs.items()},
        "pipeline_examples_per_s": round(examples / pipeline_wall, 1),
        "pipeline_cpu_ms_per_example": round(pipeline_cpu_ms, 3),
        "page_cache_warmed": True,
        "jit_compile": bool(model.jit_compile),
        **machine_figures(wall_start, cores_delivered),
    }


if __name__ == "__main__":
    print_json_line(main)
