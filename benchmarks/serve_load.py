"""Load on `mmtask serve`: requests/s and latency at a fixed concurrency, on a small model.

The model is the default mmtask model (`build_model(ModelSpec(image_size=
--image-size), ...)`: transformer text encoder, small CNN image encoder,
concat fusion, three classification heads) on a synthetic vocabulary,
untrained (serving cost does not depend on the weights), exported to a
temporary folder. `mmtask serve` runs it in a subprocess on 127.0.0.1 (a
free port), so the client's threads do not share the server's interpreter.

After `--warmup` requests, `--concurrency` client threads, each with its own
keep-alive connection, send `--requests` POST :predict requests in all, each
of `--batch-size` examples in TF Serving's row form (a short text and a
random `--file-size` x `--file-size` PNG, base64), taken in turn from 16
prepared bodies. Every answer must be 200 with one prediction per example;
the count of others is `errors`. Reported: requests/s and examples/s over the
timed requests' wall time, p50 / p99 / max latency per request, and the
server process's CPU seconds per request. The server is stopped at the end.

Prints one JSON line on stdout; progress goes to stderr.

Run:
    .venv/bin/python benchmarks/serve_load.py
    .venv/bin/python benchmarks/serve_load.py --requests 100 --concurrency 4
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from http.client import HTTPConnection
from pathlib import Path

import numpy as np
from common import effective_cores, machine_figures, positive_int, print_json_line

ROOT = Path(__file__).resolve().parents[1]
WORDS = ["good", "bad", "fine", "sun", "rain", "cat", "dog", "tea", "happy", "sad"]
BODIES = 16


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=positive_int, default=400)
    parser.add_argument("--concurrency", type=positive_int, default=8)
    parser.add_argument("--batch-size", type=positive_int, default=4)
    parser.add_argument("--image-size", type=positive_int, default=64, help="the model's")
    parser.add_argument("--file-size", type=positive_int, default=128, help="sent images' side")
    parser.add_argument("--warmup", type=positive_int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def request_bodies(batch_size: int, file_size: int, seed: int) -> list[bytes]:
    from PIL import Image

    rng = np.random.default_rng(seed)
    bodies = []
    for _ in range(BODIES):
        instances = []
        for _ in range(batch_size):
            buffer = io.BytesIO()
            pixels = rng.integers(0, 256, (file_size, file_size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(buffer, "PNG")
            instances.append(
                {
                    "text": " ".join(rng.choice(WORDS, 6)),
                    "image_bytes": {"b64": base64.b64encode(buffer.getvalue()).decode()},
                }
            )
        bodies.append(json.dumps({"instances": instances}).encode())
    return bodies


def export_model(folder: Path, image_size: int, seed: int) -> Path:
    import keras

    from mmtask import ModelSpec, build_model
    from mmtask.export import export_saved_model

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, 6)) for _ in range(64)]
    label_names = {
        task: ["negative", "neutral", "positive"]
        for task in ("text_sentiment", "image_sentiment", "post_sentiment")
    }
    model = build_model(ModelSpec(image_size=image_size), label_names, texts)
    return export_saved_model(model, folder / "load", version=1)


def start_server(export: Path) -> tuple[subprocess.Popen, int]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "mmtask.cli", "serve", str(export.parent), "--port", "0"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    line = server.stdout.readline()
    if "127.0.0.1:" not in line:
        server.kill()
        sys.exit(f"serve_load.py: the server did not start: {line!r}")
    return server, int(line.split("127.0.0.1:")[1].split("/")[0])


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_load(port: int, bodies: list[bytes], count: int, concurrency: int, batch_size: int):
    """Latencies (s) of `count` requests sent by `concurrency` threads, and the failures."""
    latencies, errors, lock = [], [], threading.Lock()
    next_index = iter(range(count))

    def worker() -> None:
        connection = HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Content-Type": "application/json"}
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                break
            start = time.perf_counter()
            connection.request("POST", "/v1/models/load:predict", bodies[index % BODIES], headers)
            response = connection.getresponse()
            answer = response.read()
            elapsed = time.perf_counter() - start
            ok = response.status == 200 and len(json.loads(answer)["predictions"]) == batch_size
            with lock:
                (latencies if ok else errors).append(elapsed if ok else response.status)
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    wall_start = time.perf_counter()
    cores_delivered = effective_cores()
    log(f"{os.cpu_count()} CPUs deliver the throughput of {cores_delivered} cores")
    bodies = request_bodies(args.batch_size, args.file_size, args.seed)
    with tempfile.TemporaryDirectory(prefix="serve-load-") as folder:
        export = export_model(Path(folder), args.image_size, args.seed)
        server, port = start_server(export)
        try:
            run_load(port, bodies, args.warmup, args.concurrency, args.batch_size)
            cpu_start = process_cpu_s(server.pid)
            start = time.perf_counter()
            latencies, errors = run_load(
                port, bodies, args.requests, args.concurrency, args.batch_size
            )
            wall = time.perf_counter() - start
            server_cpu = process_cpu_s(server.pid) - cpu_start
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=60)
    log(f"{len(latencies)} answered, {len(errors)} failed in {wall:.1f} s")
    milliseconds = np.array(latencies) * 1000
    return {
        "benchmark": "serve_load",
        "requests": args.requests,
        "concurrency": args.concurrency,
        "batch_size": args.batch_size,
        "model_image_size": args.image_size,
        "file_size": args.file_size,
        "request_bytes": int(np.mean([len(b) for b in bodies])),
        "errors": len(errors),
        "requests_per_s": round(len(latencies) / wall, 1),
        "examples_per_s": round(len(latencies) * args.batch_size / wall, 1),
        "p50_ms": round(float(np.percentile(milliseconds, 50)), 1),
        "p99_ms": round(float(np.percentile(milliseconds, 99)), 1),
        "max_ms": round(float(milliseconds.max()), 1),
        "server_cpu_ms_per_request": round(server_cpu / max(len(latencies), 1) * 1000, 2),
        **machine_figures(wall_start, cores_delivered),
    }


if __name__ == "__main__":
    print_json_line(main)
