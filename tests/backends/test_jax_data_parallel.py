"""keras.distribution.DataParallel on JAX over two host devices trains like one device."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

CHECK = Path(__file__).with_name("data_parallel_check.py")
ROOT = CHECK.parents[2]


def run(mode: str) -> dict:
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    child = subprocess.run(
        [sys.executable, str(CHECK), mode], env=env, capture_output=True, text=True, timeout=600
    )
    assert child.returncode == 0, child.stderr[-3000:]
    return json.loads(child.stdout.strip().splitlines()[-1])


def test_data_parallel_over_two_devices_matches_one_device():
    parallel, single = run("parallel"), run("single")
    assert parallel["distribution"] == "DataParallel" and parallel["devices"] == 2
    np.testing.assert_allclose(parallel["loss"], single["loss"], rtol=1e-4)
    assert parallel["loss"][-1] < parallel["loss"][0]
    for a, b in zip(parallel["weights"], single["weights"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
