"""Training under tf.distribute.MirroredStrategy matches one device on the same data."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)
sys.path.insert(0, sys.argv[1])
import keras
from tiny_models import TASKS, make_batch, make_model

x, y = make_batch(32, seed=7)
# A quarter of each task's labels are missing, the same count in each half of
# every batch of 16, so each replica averages over as many labelled examples.
for task in TASKS:
    y[task][::4] = -1

def run(strategy):
    with strategy.scope():
        model = make_model(dropout=0.0)
        model.compile(optimizer=keras.optimizers.SGD(0.05))
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    history = model.fit(data, epochs=3, verbose=0).history  # fit first, nothing built before
    after = model.evaluate(data, verbose=0, return_dict=True)
    return {
        "replicas": strategy.num_replicas_in_sync,
        "history": history,
        "after": after,
        "weights": [w.tolist() for w in model.get_weights()[:4]],
    }

single = run(tf.distribute.OneDeviceStrategy("/cpu:0"))
mirrored = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
print("RESULT " + json.dumps({"single": single, "mirrored": mirrored}))
"""


def test_mirrored_strategy_matches_single_device():
    here = Path(__file__).resolve().parents[1]
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(here)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    line = next(s for s in completed.stdout.splitlines() if s.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    single, mirrored = result["single"], result["mirrored"]
    assert single["replicas"] == 1 and mirrored["replicas"] == 2
    for metric, value in single["after"].items():
        assert abs(mirrored["after"][metric] - value) < 1e-4, metric
    for single_loss, mirrored_loss in zip(
        single["history"]["loss"], mirrored["history"]["loss"], strict=True
    ):
        assert abs(single_loss - mirrored_loss) < 1e-4
    # Training moved the weights, identically on both.
    assert single["after"]["loss"] < single["history"]["loss"][0]
    for a, b in zip(single["weights"], mirrored["weights"], strict=True):
        assert max(abs(p - q) for p, q in zip(_flat(a), _flat(b), strict=True)) < 1e-4


def _flat(values):
    if isinstance(values, list):
        return [v for item in values for v in _flat(item)]
    return [values]
