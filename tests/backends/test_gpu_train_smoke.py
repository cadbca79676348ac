"""`benchmarks/gpu_train.py --smoke` runs on Keras' JAX backend with TensorFlow unimportable.

The GPU machine has JAX and PyTorch but no TensorFlow, so the child process
gets `no_tensorflow/sitecustomize.py`, which makes `import tensorflow` fail:
the script, and the mmtask modules that build its model, must not need it.
The PyTorch side runs too (torch is in the `test` extra). XLA compiles with
its backend optimizations off: a smoke run's figures mean nothing, and the
compilations are most of its CPU time (about 34 s of CPU instead of 55).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_train.py"
NO_TENSORFLOW = Path(__file__).with_name("no_tensorflow")


def test_gpu_benchmark_smoke_runs_on_jax_without_tensorflow():
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "XLA_FLAGS": "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true",
        "PYTHONPATH": os.pathsep.join([str(NO_TENSORFLOW), str(ROOT)]),
    }
    blocked = subprocess.run(
        [sys.executable, "-c", "import tensorflow"], env=env, capture_output=True, text=True
    )
    assert blocked.returncode != 0 and "blocked" in blocked.stderr, blocked.stderr[-2000:]
    child = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--precisions", "mixed_bfloat16"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert child.returncode == 0, child.stderr[-4000:]
    result = json.loads(child.stdout.strip().splitlines()[-1])
    assert result["backend"] == "jax" and result["tensorflow_imported"] is False
    (run,) = result["runs"]
    assert run["precision"] == "mixed_bfloat16"
    for name in ("mmtask", "keras", "torch"):
        assert run[f"{name}_examples_per_s"] > 0, run
    assert run["mmtask_over_keras"] == round(
        run["mmtask_examples_per_s"] / run["keras_examples_per_s"], 3
    )
    assert run["train_gflops_per_example"] > 0, run
    assert run["jit_compile"] == {"mmtask": True, "keras": True}, run
    assert result["torch_models"]["device"] == "cpu"
