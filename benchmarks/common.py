"""Helpers shared by the benchmark scripts: argument types and the machine's real parallelism."""

from __future__ import annotations

import argparse
import hashlib
import os
import threading
import time


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
