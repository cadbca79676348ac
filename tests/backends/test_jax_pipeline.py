"""`MultiTaskModel.fit` on the JAX backend reads `make_dataset`'s tf.data batches.

Images decoded and texts tokenized by the pipeline (text encoders with
`reads="token_ids"`), precomputed features, missing texts and labels. One
child process runs `pipeline_check.py` under `KERAS_BACKEND=jax`, with XLA's
backend optimizations off: its compilations are most of the check's CPU time.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

CHECK = Path(__file__).with_name("pipeline_check.py")
ROOT = CHECK.parents[2]


def test_jax_trains_from_the_tf_data_pipeline():
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "XLA_FLAGS": "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    child = subprocess.run(
        [sys.executable, str(CHECK)], env=env, capture_output=True, text=True, timeout=600
    )
    lines = child.stdout.strip().splitlines()
    assert lines, f"no report (exit {child.returncode}):\n{child.stderr[-4000:]}"
    report = json.loads(lines[-1])
    assert report["backend"] == "jax"
    failed = {name: r for name, r in report["checks"].items() if r != "ok"}
    assert not failed, "\n\n".join(f"{name}:\n{error}" for name, error in failed.items())
    assert set(report["checks"]) == {
        "transformer_token_ids",
        "keras_hub_token_ids",
        "precomputed_features",
    }
    assert child.returncode == 0, child.stderr[-4000:]
