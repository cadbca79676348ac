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
from collections.abc import Callable


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
