"""Memory and time per post of streaming 1x and 10x the MVSA-Single data without a cache.

A streaming input pipeline should need the same memory whatever the size of
the data set, and the same time per post. This benchmark writes two CSV
manifests in a temporary folder: one listing the MVSA posts once, one listing
them `--copies` times (ids `COPY-ID`, all unique), every row pointing at the
original image and text files (nothing is copied). Each manifest is then read
in a fresh Python process (so each has its own peak) with
`read_manifest(..., image_column="image", text_path_column="text_path",
label_columns=<the three MVSA tasks>)` and streamed once through
`make_dataset(posts, image_size, batch_size, training=True)` (no cache:
shuffled file names, decoded, resized, augmented, batched, prefetched).

In each process:
- time: wall and process CPU seconds of the full pass, leaving out the
  first `--warmup-batches` batches (autotuning, first allocations); reported
  as milliseconds per post.
- memory: the peak resident set size of the whole process
  (`resource.getrusage(RUSAGE_SELF).ru_maxrss`: the imports, the manifest read
  into `Posts`, the dataset and the pass), the resident size after building
  the dataset and before the pass (`rss_ready_mb`), its growth during the
  pass (`pass_growth_mb` = peak - ready), and `rss_trace_mb`: the resident
  size sampled at every tenth of the pass (`/proc/self/status` VmRSS), which
  climbs throughout if something keeps every post.

The two sizes run alternately `--repeats` times and the medians are
reported: `rss_growth = peak_10x / peak_1x - 1` (target <= 10%) and
`time_per_post_ratio = time per post 10x / 1x` (target within 10% of 1). The
per-post metadata that `Posts` and the dataset's file-name tensors hold
(texts, paths, labels: about a kilobyte a post) is part of the peak and
grows with the data on purpose; the image pixels must not. Every image and
text file is read once before timing, so both sizes read from the page cache.

Prints one JSON line on stdout; progress goes to stderr.

Run:
    .venv/bin/python benchmarks/memory.py
    .venv/bin/python benchmarks/memory.py --limit 256 --image-size 64
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from common import (
    DEFAULT_DATA,
    effective_cores,
    load_posts,
    machine_figures,
    positive_int,
    print_json_line,
    warm_page_cache,
)

from mmtask.data import Posts, make_dataset, read_manifest

TARGET_RSS_GROWTH = 0.10
TARGET_TIME_RATIO_DEVIATION = 0.10
TRACE_POINTS = 10


def log(message: str) -> None:
    print(f"[memory] {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="MVSA-Single folder.")
    parser.add_argument(
        "--limit", type=positive_int, default=None, help="MVSA posts per copy (default all)."
    )
    parser.add_argument(
        "--copies", type=positive_int, default=10, help="Times the large manifest lists each post."
    )
    parser.add_argument("--image-size", type=positive_int, default=224)
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument(
        "--warmup-batches", type=int, default=3, help="Batches of each pass left out of its time."
    )
    parser.add_argument(
        "--repeats", type=positive_int, default=1, help="Passes per size; medians reported."
    )
    parser.add_argument(
        "--child", type=Path, default=None, help=argparse.SUPPRESS
    )  # internal: stream this manifest in this process and report
    return parser.parse_args(argv)


def text_paths(data: Path, posts: Posts) -> list[str]:
    """The MVSA text file of every post (`data/ID.txt`)."""
    paths = [str((data / "data" / f"{post_id}.txt").resolve()) for post_id in posts.ids]
    missing = [path for path in paths if not os.path.isfile(path)]
    if missing:
        sys.exit(f"memory.py: {len(missing)} text files not found, e.g. {missing[0]}")
    return paths


def write_manifest(path: Path, posts: Posts, texts: Sequence[str], copies: int) -> int:
    """A CSV manifest listing every post `copies` times with ids `COPY-ID`; returns the rows."""
    tasks = posts.tasks
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "text_path", "image", *tasks])
        for copy in range(copies):
            for i, post_id in enumerate(posts.ids):
                labels = [
                    posts.label_names[task][v] if (v := int(posts.labels[task][i])) >= 0 else ""
                    for task in tasks
                ]
                image = str(Path(posts.image_paths[i]).resolve())
                writer.writerow([f"{copy}-{post_id}", texts[i], image, *labels])
    return copies * len(posts)


def status_mb(field: str) -> float:
    """A size field of /proc/self/status ("VmRSS", "VmHWM") in MB."""
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux: ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RssSampler(threading.Thread):
    """Samples VmRSS every `interval` seconds until stopped; keeps the maximum."""

    def __init__(self, interval: float = 0.02):
        super().__init__(daemon=True)
        self.interval = interval
        self.maximum = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.maximum = max(self.maximum, status_mb("VmRSS"))
            self._done.wait(self.interval)

    def stop(self) -> float:
        self._done.set()
        self.join()
        return self.maximum


def stream(args: argparse.Namespace) -> dict:
    """In a fresh process: read the manifest, stream it once, report time and memory."""
    rss_imported = status_mb("VmRSS")
    posts = read_manifest(
        args.child,
        image_column="image",
        text_path_column="text_path",
        id_column="id",
        label_columns=["text_sentiment", "image_sentiment", "post_sentiment"],
    )
    dataset = make_dataset(
        posts, image_size=args.image_size, batch_size=args.batch_size, training=True
    )
    batches = -(-len(posts) // args.batch_size)
    marks = {max(1, round(batches * k / TRACE_POINTS)) for k in range(1, TRACE_POINTS + 1)}
    rss_ready = status_mb("VmRSS")
    sampler = RssSampler()
    sampler.start()
    trace = [round(rss_ready, 1)]
    seen = timed = 0
    start = cpu_start = None
    for batch, (features, _, _) in enumerate(dataset, start=1):
        size = int(features["image"].shape[0])
        seen += size
        if batch == args.warmup_batches:
            start, cpu_start = time.perf_counter(), time.process_time()
        elif batch > args.warmup_batches:
            timed += size
        if batch in marks:
            trace.append(round(status_mb("VmRSS"), 1))
    if start is None or timed == 0:
        raise RuntimeError(
            f"{len(posts)} posts make too few batches of {args.batch_size} to time after "
            f"{args.warmup_batches} warm-up batches."
        )
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    sampled = sampler.stop()
    peak = peak_rss_mb()
    return {
        "posts": len(posts),
        "seen": seen,
        "timed_posts": timed,
        "time_s": wall,
        "cpu_s": cpu,
        "ms_per_post": wall / timed * 1e3,
        "cpu_ms_per_post": cpu / timed * 1e3,
        "rss_imported_mb": rss_imported,
        "rss_ready_mb": rss_ready,
        "peak_rss_mb": peak,
        "peak_sampled_mb": sampled,
        "pass_growth_mb": peak - rss_ready,
        "rss_trace_mb": trace,
    }


def run_child(manifest: Path, args: argparse.Namespace) -> dict:
    """`stream` of `manifest` in a fresh Python process; its stderr goes to ours."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        str(manifest),
        "--image-size",
        str(args.image_size),
        "--batch-size",
        str(args.batch_size),
        "--warmup-batches",
        str(args.warmup_batches),
    ]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_of(results: list[dict], key: str) -> float:
    return statistics.median(result[key] for result in results)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.child is not None:
        return stream(args)
    wall_start = time.perf_counter()
    data = args.data.expanduser()
    posts = load_posts(data, args.limit)
    texts = text_paths(data, posts)
    cores_delivered = effective_cores()
    log(f"{os.cpu_count()} CPUs deliver the throughput of {cores_delivered} cores")
    cached_bytes = warm_page_cache([*posts.image_paths, *texts])
    log(f"{len(posts)} posts; read {cached_bytes / 1e6:.0f} MB of images and texts once")

    sizes = {"1x": 1, f"{args.copies}x": args.copies}
    results: dict[str, list[dict]] = {name: [] for name in sizes}
    with tempfile.TemporaryDirectory(prefix="mmtask_memory_") as folder:
        manifests = {}
        for name, copies in sizes.items():
            manifests[name] = Path(folder) / f"mvsa_{name}.csv"
            rows = write_manifest(manifests[name], posts, texts, copies)
            log(f"{manifests[name].name}: {rows} rows")
        for repeat in range(args.repeats):
            order = list(sizes) if repeat % 2 == 0 else list(reversed(sizes))
            for name in order:
                result = run_child(manifests[name], args)
                results[name].append(result)
                log(
                    f"repeat {repeat + 1}/{args.repeats} {name}: {result['posts']} posts, "
                    f"{result['ms_per_post']:.2f} ms/post, peak RSS {result['peak_rss_mb']:.0f} MB "
                    f"(ready {result['rss_ready_mb']:.0f} MB), trace {result['rss_trace_mb']}"
                )

    small, large = results["1x"], results[f"{args.copies}x"]
    peak_small, peak_large = median_of(small, "peak_rss_mb"), median_of(large, "peak_rss_mb")
    ms_small, ms_large = median_of(small, "ms_per_post"), median_of(large, "ms_per_post")
    rss_growth = peak_large / peak_small - 1
    time_ratio = ms_large / ms_small
    figures = {
        "benchmark": "memory",
        "copies": args.copies,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "rss_growth": round(rss_growth, 4),
        "target_rss_growth": TARGET_RSS_GROWTH,
        "time_per_post_ratio": round(time_ratio, 3),
        "target_time_per_post_ratio": [
            1 - TARGET_TIME_RATIO_DEVIATION,
            1 + TARGET_TIME_RATIO_DEVIATION,
        ],
        "meets_target": rss_growth <= TARGET_RSS_GROWTH
        and abs(time_ratio - 1) <= TARGET_TIME_RATIO_DEVIATION,
    }
    for name, runs in results.items():
        figures.update(
            {
                f"posts_{name}": runs[0]["posts"],
                f"peak_rss_mb_{name}": round(median_of(runs, "peak_rss_mb"), 1),
                f"rss_ready_mb_{name}": round(median_of(runs, "rss_ready_mb"), 1),
                f"pass_growth_mb_{name}": round(median_of(runs, "pass_growth_mb"), 1),
                f"ms_per_post_{name}": round(median_of(runs, "ms_per_post"), 3),
                f"cpu_ms_per_post_{name}": round(median_of(runs, "cpu_ms_per_post"), 3),
                f"posts_per_s_{name}": round(1e3 / median_of(runs, "ms_per_post"), 1),
                f"ms_per_post_runs_{name}": [round(r["ms_per_post"], 3) for r in runs],
                f"peak_rss_mb_runs_{name}": [round(r["peak_rss_mb"], 1) for r in runs],
                f"rss_trace_mb_{name}": runs[0]["rss_trace_mb"],
            }
        )
    figures["page_cache_warmed"] = True
    figures.update(machine_figures(wall_start, cores_delivered))
    return figures


if __name__ == "__main__":
    print_json_line(main)
