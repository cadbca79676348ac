"""Input throughput of mmtask's tf.data pipeline against a plain Python/PIL loop, in posts/s.

Both paths do the same work on the real MVSA-Single posts: read each image
file, decode it, resize it to `--image-size` (bilinear) as float32, and turn
the text into `--sequence-length` token ids with one vocabulary.

- tf.data: `mmtask.data.make_dataset(posts, training=False)` (no cache), with a
  `keras.layers.TextVectorization` mapped over its batches
  (`num_parallel_calls=AUTOTUNE`); full passes (no cache) after a short warm-up.
- Python loop: one post at a time, `PIL.Image.open(...).convert("RGB").resize(
  ..., BILINEAR)` then `np.asarray(float32)`, and a plain-Python tokenizer with
  the exact standardisation of TextVectorization's
  "lower_and_strip_punctuation" (ASCII lowercase, punctuation removed, split
  on ASCII whitespace; out-of-vocabulary -> 1, padded with 0); posts are
  stacked into batches of `--batch-size`. Timed on the first `--loop-limit`
  posts, since it is slow.

The two are timed alternately `--repeats` times and the medians reported, with
the process CPU time per post of each (robust to a noisy machine) and the
cores tf.data kept busy; `effective_cores` says how many cores' worth of
throughput the machine's CPUs really deliver. The vocabulary is adapted
before timing, and every image file is read once before timing, so both paths
read from the page cache.
Untimed checks confirm that both paths compute the same things: image shapes
and the mean absolute difference of pixel values (TF resizes without
antialiasing, PIL with), and the fraction of texts whose token ids agree
exactly.

Prints one JSON line on stdout; progress goes to stderr.

Run:
    .venv/bin/python benchmarks/pipeline.py                      # all 4,419 posts
    .venv/bin/python benchmarks/pipeline.py --limit 512 --loop-limit 256
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import string
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from common import effective_cores, machine_figures, positive_int, print_json_line
from PIL import Image

from mmtask.data import Posts, make_dataset, read_mvsa

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mvsa_single"
TARGET_SPEEDUP = 3.0

# TextVectorization's "lower_and_strip_punctuation": tf.strings.lower (ASCII
# only), then removes every character of string.punctuation; "whitespace"
# splitting is tf.strings.split (ASCII whitespace). On UTF-8 bytes the same
# steps are bytes.translate and bytes.split.
_LOWER = bytes.maketrans(string.ascii_uppercase.encode(), string.ascii_lowercase.encode())
_PUNCTUATION = string.punctuation.encode()
_PAD_ID = 0
_OOV_ID = 1

Tokenizer = Callable[[str], np.ndarray]


def log(message: str) -> None:
    print(f"[pipeline] {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="MVSA-Single folder.")
    parser.add_argument(
        "--limit", type=positive_int, default=None, help="Posts for tf.data (default all)."
    )
    parser.add_argument(
        "--loop-limit", type=int, default=1000, help="Posts for the Python loop (0: as --limit)."
    )
    parser.add_argument("--image-size", type=positive_int, default=224)
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--max-tokens", type=positive_int, default=20000, help="Vocabulary size.")
    parser.add_argument(
        "--sequence-length", type=positive_int, default=48, help="Token ids per text."
    )
    parser.add_argument("--warmup-batches", type=int, default=3, help="Untimed tf.data batches.")
    parser.add_argument(
        "--repeats", type=positive_int, default=3, help="Timed passes; medians reported."
    )
    parser.add_argument("--check-posts", type=int, default=4, help="Posts whose images compare.")
    return parser.parse_args(argv)


def load_posts(data: Path, limit: int | None) -> Posts:
    """The MVSA posts, the first `limit` of them if given; exits with one line if absent."""
    if not (data / "labelResultAll.txt").is_file():
        sys.exit(f"pipeline.py: MVSA-Single not found at {data} (pass --data DIR).")
    posts = read_mvsa(data)
    if limit is not None and limit < len(posts):
        posts = posts.select(posts.ids[:limit])
    return posts


def tfdata_batches(
    posts: Posts, vectorizer: keras.layers.TextVectorization, image_size: int, batch_size: int
) -> tf.data.Dataset:
    """mmtask's evaluation pipeline with the text tokenized per batch."""
    dataset = make_dataset(posts, image_size=image_size, batch_size=batch_size, training=False)

    def tokenize(features: dict, labels: dict, masks: dict) -> tuple[dict, dict, dict]:
        features = {**features, "token_ids": vectorizer(features["text"])}
        return features, labels, masks

    return dataset.map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)


def time_tfdata(dataset: tf.data.Dataset) -> tuple[float, float, int]:
    """Wall and process CPU seconds of one full pass over `dataset`, and the posts seen."""
    posts = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for features, _, _ in dataset:
        posts += int(features["image"].shape[0])
    return time.perf_counter() - start, time.process_time() - cpu_start, posts


def make_tokenizer(vocabulary: Sequence[str], sequence_length: int) -> Tokenizer:
    """A plain-Python equivalent of the adapted TextVectorization layer (str -> int32 ids)."""
    index = {token.encode("utf-8"): i for i, token in enumerate(vocabulary) if i > _OOV_ID}

    def tokenize(text: str) -> np.ndarray:
        tokens = text.encode("utf-8").translate(_LOWER, _PUNCTUATION).split()
        ids = [index.get(token, _OOV_ID) for token in tokens[:sequence_length]]
        ids += [_PAD_ID] * (sequence_length - len(ids))
        return np.asarray(ids, dtype=np.int64)

    return tokenize


def load_image_pil(path: str, image_size: int) -> np.ndarray:
    """Read, decode and resize one image with PIL: float32 (H, W, 3) in 0..255."""
    with open(path, "rb") as file:
        raw = file.read()
    with Image.open(io.BytesIO(raw)) as image:
        resized = image.convert("RGB").resize((image_size, image_size), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)


def python_batches(
    posts: Posts, tokenize: Tokenizer, image_size: int, batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches of (images, token ids), built one post at a time."""
    for start in range(0, len(posts), batch_size):
        images, token_ids = [], []
        for i in range(start, min(start + batch_size, len(posts))):
            images.append(load_image_pil(posts.image_paths[i], image_size))
            token_ids.append(tokenize(posts.texts[i]))
        yield np.stack(images), np.stack(token_ids)


def time_python(
    posts: Posts, tokenize: Tokenizer, image_size: int, batch_size: int
) -> tuple[float, float, int]:
    """Wall and process CPU seconds of one pass of the Python loop, and the posts seen."""
    seen = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for images, _ in python_batches(posts, tokenize, image_size, batch_size):
        seen += images.shape[0]
    return time.perf_counter() - start, time.process_time() - cpu_start, seen


def warm_page_cache(paths: Sequence[str]) -> int:
    """Read every file once so neither timed path pays for the disk; returns bytes read."""
    total = 0
    for path in paths:
        with open(path, "rb") as file:
            total += len(file.read())
    return total


def check_same_work(
    posts: Posts,
    dataset: tf.data.Dataset,
    vectorizer: keras.layers.TextVectorization,
    tokenize: Tokenizer,
    image_size: int,
    check_posts: int,
) -> dict:
    """Compare images of the first posts and token ids of every post across both paths."""
    features, _, _ = next(iter(dataset))
    count = min(check_posts, int(features["image"].shape[0]))
    tf_images = features["image"].numpy()[:count]
    pil_images = np.stack([load_image_pil(p, image_size) for p in posts.image_paths[:count]])
    if tf_images.shape != pil_images.shape:
        raise RuntimeError(
            f"Image shapes differ: tf.data {tf_images.shape}, Python loop {pil_images.shape}"
        )
    per_image = np.abs(tf_images - pil_images).mean(axis=(1, 2, 3))
    tf_tokens = vectorizer(tf.constant(posts.texts)).numpy()
    py_tokens = np.stack([tokenize(text) for text in posts.texts])
    same = (tf_tokens == py_tokens).all(axis=1)
    return {
        "image_shape": list(tf_images.shape[1:]),
        "image_check_posts": count,
        "image_mean_abs_diff": round(float(per_image.mean()), 3),
        "image_mean_abs_diff_max": round(float(per_image.max()), 3),
        "token_match_fraction": round(float(same.mean()), 5),
    }


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    wall_start = time.perf_counter()
    posts = load_posts(args.data.expanduser(), args.limit)
    cores_delivered = effective_cores()
    log(f"{os.cpu_count()} CPUs deliver the throughput of {cores_delivered} cores")
    loop_n = len(posts) if args.loop_limit <= 0 else min(args.loop_limit, len(posts))
    loop_posts = posts.select(posts.ids[:loop_n])
    log(f"{len(posts)} posts for tf.data, {loop_n} for the Python loop")

    vectorizer = keras.layers.TextVectorization(
        max_tokens=args.max_tokens,
        output_sequence_length=args.sequence_length,
        standardize="lower_and_strip_punctuation",
    )
    vectorizer.adapt(posts.texts)
    vocabulary = vectorizer.get_vocabulary()
    tokenize = make_tokenizer(vocabulary, args.sequence_length)
    cached_bytes = warm_page_cache(posts.image_paths)
    log(f"vocabulary of {len(vocabulary)}; read {cached_bytes / 1e6:.0f} MB of images once")

    dataset = tfdata_batches(posts, vectorizer, args.image_size, args.batch_size)
    checks = check_same_work(
        posts, dataset, vectorizer, tokenize, args.image_size, args.check_posts
    )
    log(f"same work: {checks}")

    for _ in zip(range(args.warmup_batches), dataset, strict=False):
        pass  # warm-up: autotuning and the first allocations; the timed passes start afresh
    tf_runs, py_runs = [], []
    for repeat in range(args.repeats):  # interleaved, so both see the same machine state
        tf_runs.append(time_tfdata(dataset))
        py_runs.append(time_python(loop_posts, tokenize, args.image_size, args.batch_size))
        log(
            f"repeat {repeat + 1}/{args.repeats}: tf.data {tf_runs[-1][2] / tf_runs[-1][0]:.1f} "
            f"posts/s, Python loop {py_runs[-1][2] / py_runs[-1][0]:.1f} posts/s"
        )
    tf_seen, py_seen = tf_runs[0][2], py_runs[0][2]
    tf_rates = [seen / wall for wall, _, seen in tf_runs]
    py_rates = [seen / wall for wall, _, seen in py_runs]
    tf_rate, py_rate = statistics.median(tf_rates), statistics.median(py_rates)
    tf_cpu_ms = statistics.median(cpu / seen * 1e3 for _, cpu, seen in tf_runs)
    py_cpu_ms = statistics.median(cpu / seen * 1e3 for _, cpu, seen in py_runs)
    speedup = tf_rate / py_rate
    return {
        "benchmark": "pipeline",
        "posts": tf_seen,
        "loop_posts": py_seen,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "sequence_length": args.sequence_length,
        "vocabulary_size": len(vocabulary),
        "repeats": args.repeats,
        "tfdata_posts_per_s": round(tf_rate, 1),
        "python_loop_posts_per_s": round(py_rate, 1),
        "speedup": round(speedup, 3),
        "target_speedup": TARGET_SPEEDUP,
        "meets_target": speedup >= TARGET_SPEEDUP,
        "tfdata_posts_per_s_runs": [round(r, 1) for r in tf_rates],
        "python_loop_posts_per_s_runs": [round(r, 1) for r in py_rates],
        "tfdata_cpu_ms_per_post": round(tf_cpu_ms, 3),
        "python_loop_cpu_ms_per_post": round(py_cpu_ms, 3),
        "tfdata_cores_busy": round(tf_cpu_ms * tf_rate / 1e3, 2),
        **checks,
        "page_cache_warmed": True,
        **machine_figures(wall_start, cores_delivered),
    }


if __name__ == "__main__":
    print_json_line(main)
