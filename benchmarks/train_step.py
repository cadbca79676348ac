"""Training throughput (examples/s) of the default mmtask model against plain Keras.

Both models have the same layers: the default `ModelSpec` parts (transformer
text encoder, small CNN image encoder, concat fusion, heads for
text_sentiment <- text, image_sentiment <- image, post_sentiment <- fused).

- mmtask: `mmtask.builder.build_model(ModelSpec(...))`, compiled with
  `compile(optimizer="adam")`: its own masked per-task losses, accuracy and
  macro F1 in `compute_loss` / `compute_metrics`.
- Keras: a functional `keras.Model` built from fresh copies of the same
  layers (`layer.__class__.from_config(layer.get_config())`, the text
  vectorizer given the same vocabulary), compiled with per-task
  "sparse_categorical_crossentropy", `loss_weights` of 1.0 and "accuracy".
- Keras with the same metrics (`keras_f1`): another such model that also
  computes macro F1 per task (`keras.metrics.F1Score` on one-hot labels),
  as mmtask does, so `cpu_ratio_same_metrics` compares equal work.

Both train on one in-memory `tf.data` dataset of random images (0..255),
random texts from a small word list and random labels in 0..2, batched and
cached: `(features, labels, masks)` as `mmtask.data.make_dataset` gives, where
about 10% of post_sentiment labels are missing (label 0, mask 0). The mask is
the per-task sample weight: mmtask excludes those examples from its
post_sentiment loss and metrics, Keras weighs their loss by 0 (its
"accuracy", given as `metrics`, not `weighted_metrics`, counts them).

After a warm-up `fit` (tracing), each model runs `fit(dataset,
steps_per_epoch=--steps, epochs=1)` `--repeats` times, the order reversed each repeat;
the median examples/s of each is reported (`ratio`), with the ratio of the
best runs (`best_ratio`), the process CPU time per example and its ratio
(`cpu_ratio`, keras / mmtask: robust to a noisy machine;
`cpu_ratio_same_metrics`, keras_f1 / mmtask) and the cores each
run kept busy (a run that stalled shows far fewer); `effective_cores` says
how many cores' worth of throughput the machine's CPUs really deliver.

With `--step-only` each timed run is `--steps` calls of the model's traced
`train_step` on one batch held in memory instead of a `fit` (`"timed"` in the
JSON says which): the step's own CPU cost, without the iterator and callbacks.

Prints one JSON line on stdout; progress goes to stderr.

Run:
    .venv/bin/python benchmarks/train_step.py
    .venv/bin/python benchmarks/train_step.py --image-size 64 --batch-size 64 --steps 20
    .venv/bin/python benchmarks/train_step.py --step-only --repeats 8 --steps 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from common import effective_cores, machine_figures, positive_int, print_json_line, time_fit

from mmtask.builder import build_model
from mmtask.data import SENTIMENT_LABELS
from mmtask.models import MultiTaskModel
from mmtask.spec import ModelSpec

TARGET_RATIO = 0.95
TASKS = ("text_sentiment", "image_sentiment", "post_sentiment")  # the MVSA tasks
MISSING_POST_LABELS = 0.1
WORDS = (
    "good bad happy sad love hate great awful fun boring day night city beach "
    "food coffee game team win lose rain sun friends family new old best worst "
    "today tomorrow really so very not just like amazing terrible #love @user"
).split()


def log(message: str) -> None:
    print(f"[train_step] {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-size", type=positive_int, default=ModelSpec().image_size)
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument(
        "--steps", type=positive_int, default=30, help="Training steps per timed fit."
    )
    parser.add_argument("--repeats", type=positive_int, default=3, help="Timed fits per model.")
    parser.add_argument("--warmup-steps", type=int, default=3, help="Untimed steps per model.")
    parser.add_argument(
        "--batches", type=positive_int, default=8, help="Distinct batches in memory."
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--step-only",
        action="store_true",
        help="Time each model's traced train_step on one batch held in memory instead of fit "
        "(no iterator, no callbacks): the step's own CPU cost.",
    )
    return parser.parse_args(argv)


def make_data(
    examples: int, image_size: int, tasks: Sequence[str], seed: int
) -> tuple[dict, dict, dict]:
    """Random `(features, labels, masks)` arrays in the layout of `make_dataset`."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 255.0, (examples, image_size, image_size, 3)).astype("float32")
    lengths = rng.integers(3, 25, examples)
    texts = np.asarray([" ".join(rng.choice(WORDS, n)) for n in lengths])
    labels = {task: rng.integers(0, len(SENTIMENT_LABELS), examples) for task in tasks}
    masks = {task: np.ones(examples, "float32") for task in tasks}
    if "post_sentiment" in labels:
        missing = rng.random(examples) < MISSING_POST_LABELS
        labels["post_sentiment"][missing] = 0
        masks["post_sentiment"][missing] = 0.0
    labels = {task: values.astype("int32") for task, values in labels.items()}
    return {"text": texts, "image": images}, labels, masks


def make_training_data(arrays: tuple[dict, dict, dict], batch_size: int) -> tf.data.Dataset:
    """Batches of the arrays, cached in memory and repeated forever."""
    examples = len(arrays[0]["text"])
    dataset = tf.data.Dataset.from_tensor_slices(arrays).batch(batch_size, drop_remainder=True)
    dataset = dataset.cache().repeat().prefetch(tf.data.AUTOTUNE)
    for _ in zip(range(examples // batch_size + 1), dataset, strict=False):
        pass  # one full pass fills the cache
    return dataset


def fresh_copy(layer: keras.layers.Layer) -> keras.layers.Layer:
    """A new, unbuilt layer of the same class and config."""
    return layer.__class__.from_config(layer.get_config())


def keras_baseline(model: MultiTaskModel) -> keras.Model:
    """The layers of `model`, freshly built, wired as a plain functional Keras model."""
    encoders = {m: fresh_copy(encoder) for m, encoder in model.encoders.items()}
    for modality, encoder in encoders.items():
        if hasattr(encoder, "vectorizer"):
            vocabulary = model.encoders[modality].vectorizer.get_vocabulary()
            encoder.vectorizer.set_vocabulary(vocabulary)
    inputs = {}
    if "text" in encoders:
        inputs["text"] = keras.Input(shape=(), dtype="string", name="text")
    if "image" in encoders:
        inputs["image"] = keras.Input(shape=(*model.image_size, 3), name="image")
    representations = {m: encoders[m](inputs[m])["vector"] for m in sorted(encoders)}
    if model.fusion is not None:
        representations["fused"] = fresh_copy(model.fusion)(
            {m: representations[m] for m in sorted(encoders)}
        )
    outputs = {
        task: fresh_copy(head)(representations[model.task_inputs[task]])
        for task, head in model.heads.items()
    }
    return keras.Model(inputs=inputs, outputs=outputs, name="keras_baseline")


class SparseMacroF1(keras.metrics.F1Score):
    """Macro F1 from class indices, as mmtask's classification heads log it."""

    def __init__(self, num_classes: int, **kwargs):
        super().__init__(average="macro", **kwargs)
        self.num_classes = num_classes

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,))
        one_hot = keras.ops.one_hot(labels, self.num_classes)
        super().update_state(one_hot, y_pred, sample_weight=sample_weight)


def time_steps(step, batch, steps: int) -> tuple[float, float]:
    """Wall and process CPU seconds of `steps` calls of a traced train step on `batch`."""
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(steps):
        logs = step(batch)
    float(logs["loss"])
    return time.perf_counter() - start, time.process_time() - cpu_start


def check_same_tokens(model: MultiTaskModel, baseline: keras.Model, texts: np.ndarray) -> None:
    """Raise if the two text encoders tokenize differently."""
    ours = model.get_layer("text_encoder").vectorizer(texts[:64])
    theirs = baseline.get_layer("text_encoder").vectorizer(texts[:64])
    if not np.array_equal(np.asarray(ours), np.asarray(theirs)):
        raise RuntimeError("The Keras baseline's vectorizer tokenizes differently from mmtask's.")


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    wall_start = time.perf_counter()
    cores_delivered = effective_cores()
    log(f"{os.cpu_count()} CPUs deliver the throughput of {cores_delivered} cores")
    keras.utils.set_random_seed(args.seed)
    arrays = make_data(args.batches * args.batch_size, args.image_size, TASKS, args.seed)
    dataset = make_training_data(arrays, args.batch_size)

    label_names = {task: list(SENTIMENT_LABELS) for task in TASKS}
    spec = ModelSpec(image_size=args.image_size)  # default parts and tasks
    model = build_model(spec, label_names, arrays[0]["text"].tolist())
    model.compile(optimizer="adam")
    tasks = model.tasks
    log(f"tasks and their inputs: {model.task_inputs}")
    baseline = keras_baseline(model)
    baseline.compile(
        optimizer="adam",
        loss={task: "sparse_categorical_crossentropy" for task in tasks},
        loss_weights={task: 1.0 for task in tasks},
        metrics={task: ["accuracy"] for task in tasks},
    )
    check_same_tokens(model, baseline, arrays[0]["text"])
    same_metrics = keras_baseline(model)
    same_metrics.compile(
        optimizer="adam",
        loss={task: "sparse_categorical_crossentropy" for task in tasks},
        loss_weights={task: 1.0 for task in tasks},
        metrics={
            task: ["accuracy", SparseMacroF1(len(SENTIMENT_LABELS), name="macro_f1")]
            for task in tasks
        },
    )
    models = {"mmtask": model, "keras": baseline, "keras_f1": same_metrics}
    params = {name: m.count_params() for name, m in models.items()}
    log(f"parameters: {params}; image {args.image_size}, batch {args.batch_size}")

    for name, m in models.items():
        start = time.perf_counter()
        m.fit(dataset, steps_per_epoch=args.warmup_steps, epochs=1, verbose=0, shuffle=False)
        log(f"{name}: warm-up of {args.warmup_steps} steps in {time.perf_counter() - start:.1f} s")

    if args.step_only:
        batch = next(iter(dataset))
        steps = {name: tf.function(m.train_step) for name, m in models.items()}
        for step in steps.values():
            step(batch)  # traced here, untimed

        def timed(name: str) -> tuple[float, float]:
            return time_steps(steps[name], batch, args.steps)

    else:

        def timed(name: str) -> tuple[float, float]:
            return time_fit(models[name], dataset, args.steps)

    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in models}
    for repeat in range(args.repeats):
        order = list(models) if repeat % 2 == 0 else list(reversed(models))
        for name in order:
            runs[name].append(timed(name))
        rates = {name: args.steps * args.batch_size / runs[name][-1][0] for name in models}
        log(
            f"repeat {repeat + 1}/{args.repeats}: "
            + ", ".join(f"{name} {rate:.1f} examples/s" for name, rate in rates.items())
        )

    examples = args.steps * args.batch_size
    rate = {name: statistics.median(examples / wall for wall, _ in r) for name, r in runs.items()}
    cpu_ms = {
        name: statistics.median(cpu / examples * 1e3 for _, cpu in r) for name, r in runs.items()
    }
    ratio = rate["mmtask"] / rate["keras"]
    return {
        "benchmark": "train_step",
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "steps": args.steps,
        "timed": "train_step on one batch" if args.step_only else "fit",
        "task_inputs": dict(model.task_inputs),
        "repeats": args.repeats,
        "mmtask_examples_per_s": round(rate["mmtask"], 1),
        "keras_examples_per_s": round(rate["keras"], 1),
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio >= TARGET_RATIO,
        "mmtask_examples_per_s_runs": [round(examples / w, 1) for w, _ in runs["mmtask"]],
        "keras_examples_per_s_runs": [round(examples / w, 1) for w, _ in runs["keras"]],
        "mmtask_cpu_ms_per_example": round(cpu_ms["mmtask"], 3),
        "keras_cpu_ms_per_example": round(cpu_ms["keras"], 3),
        "cpu_ratio": round(cpu_ms["keras"] / cpu_ms["mmtask"], 3),
        "keras_f1_examples_per_s": round(rate["keras_f1"], 1),
        "keras_f1_cpu_ms_per_example": round(cpu_ms["keras_f1"], 3),
        "cpu_ratio_same_metrics": round(cpu_ms["keras_f1"] / cpu_ms["mmtask"], 3),
        "best_ratio": round(
            max(examples / w for w, _ in runs["mmtask"])
            / max(examples / w for w, _ in runs["keras"]),
            3,
        ),
        "cores_busy_runs": {name: [round(c / w, 2) for w, c in r] for name, r in runs.items()},
        "mmtask_params": params["mmtask"],
        "keras_params": params["keras"],
        "jit_compile": {name: bool(m.jit_compile) for name, m in models.items()},
        **machine_figures(wall_start, cores_delivered),
    }


if __name__ == "__main__":
    print_json_line(main)
