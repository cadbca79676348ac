"""Training with MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1, one model.

Each worker runs the same script with its own TF_CONFIG; both must end with
the same weights, and the loss must match one worker fed the same global
batches.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

WORKER = r"""
import json, os, sys
import numpy as np
import tensorflow as tf

sys.path.insert(0, sys.argv[1])
import keras
from tiny_models import TASKS, make_batch, make_model

x, y = make_batch(32, seed=7)
# A quarter of each task's labels are missing, as many in each worker's half
# of every global batch of 16, so each worker averages over as many labelled
# examples as the other.
for task in TASKS:
    y[task][::4] = -1

strategy = tf.distribute.MultiWorkerMirroredStrategy()
with strategy.scope():
    model = make_model(dropout=0.0)
    model.compile(optimizer=keras.optimizers.SGD(0.05))
options = tf.data.Options()
options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16).with_options(options)
history = model.fit(data, epochs=3, verbose=0).history
np.savez(sys.argv[2], *model.get_weights())
print("RESULT " + json.dumps({"replicas": strategy.num_replicas_in_sync, "loss": history["loss"]}))
"""


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(count: int, tmp_path: Path) -> list[tuple[subprocess.Popen, Path]]:
    here = Path(__file__).resolve().parents[1]
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(count)]}
    workers = []
    for index in range(count):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(config), "TF_CPP_MIN_LOG_LEVEL": "2"}
        weights = tmp_path / f"workers{count}_{index}.npz"
        process = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(here), str(weights)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        workers.append((process, weights))
    return workers


def results(workers) -> list[tuple[dict, list[np.ndarray]]]:
    out = []
    for process, weights in workers:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-3000:]
        line = next(s for s in stdout.splitlines() if s.startswith("RESULT "))
        stored = np.load(weights)
        out.append((json.loads(line[len("RESULT ") :]), [stored[k] for k in stored.files]))
    return out


def test_two_workers_end_identical_and_match_one_worker(tmp_path):
    two = results(start_workers(2, tmp_path))
    (one_result, one_weights), = results(start_workers(1, tmp_path))
    assert one_result["replicas"] == 1
    (first, first_weights), (second, second_weights) = two
    assert first["replicas"] == second["replicas"] == 2
    for a, b in zip(first_weights, second_weights, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(first["loss"], one_result["loss"], atol=1e-4)
    assert first["loss"][-1] < first["loss"][0]
    for a, b in zip(first_weights, one_weights, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)
