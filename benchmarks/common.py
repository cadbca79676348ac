"""Helpers shared by the benchmark scripts: argument types and the machine's real parallelism."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mvsa_single"
"""The MVSA-Single folder of the development machine (`../shared/data/mvsa_single`)."""


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an int >= 1. Received: {text}")
    return value


def effective_cores(megabytes: int = 64, rounds: int = 3) -> float:
    """Throughput of one GIL-free thread per core relative to one thread.

    `os.cpu_count()` counts virtual CPUs; on a shared virtual machine they may
    deliver less, and parallel input pipelines can only use what they deliver.
    """
    data = os.urandom(megabytes << 20)

    def work() -> None:
        for _ in range(rounds):
            hashlib.sha256(data).digest()

    def throughput(threads: int) -> float:
        workers = [threading.Thread(target=work) for _ in range(threads)]
        start = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return threads / (time.perf_counter() - start)

    return round(throughput(os.cpu_count() or 1) / throughput(1), 2)


def machine_figures(wall_start: float, cores_delivered: float) -> dict:
    """The figures every benchmark line ends with: wall time, cores, versions."""
    import keras
    import tensorflow as tf

    return {
        "wall_s": round(time.perf_counter() - wall_start, 1),
        "cores": os.cpu_count(),
        "effective_cores": cores_delivered,
        "tf_version": tf.__version__,
        "keras_version": keras.__version__,
        "python_version": platform.python_version(),
    }


def print_json_line(main: Callable[[], dict]) -> None:
    """Run `main` with its prints sent to stderr, then print its figures as one JSON line."""
    with contextlib.redirect_stdout(sys.stderr):  # stdout holds only the JSON line
        result = main()
    print(json.dumps(result))


def load_posts(data: Path, limit: int | None):
    """The MVSA posts, the first `limit` of them if given; exits with one line if absent."""
    from mmtask.data import read_mvsa

    if not (data / "labelResultAll.txt").is_file():
        sys.exit(f"{Path(sys.argv[0]).name}: MVSA-Single not found at {data} (pass --data DIR).")
    posts = read_mvsa(data)
    if limit is not None and limit < len(posts):
        posts = posts.select(posts.ids[:limit])
    return posts


def warm_page_cache(paths: Sequence[str]) -> int:
    """Read every file once so timed runs do not pay for the disk; returns bytes read."""
    total = 0
    for path in paths:
        with open(path, "rb") as file:
            total += len(file.read())
    return total


def time_fit(model, dataset, steps: int) -> tuple[float, float]:
    """Wall and process CPU seconds of `fit` for `steps` steps."""
    start, cpu_start = time.perf_counter(), time.process_time()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return time.perf_counter() - start, time.process_time() - cpu_start
