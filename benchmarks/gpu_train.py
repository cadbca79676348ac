"""Training examples/s of the MVSA-sized model: mmtask, plain Keras and a hand-written PyTorch loop.

The model: EfficientNet-Lite0 at 224 px (a keras-hub `EfficientNetBackbone`
built from Lite0's config, random weights: nothing is downloaded), a
6-layer 384-d BERT-style text encoder (a keras-hub `BertBackbone` from
config) reading 64 token ids, concat fusion and three 3-class heads
(text_sentiment <- text, image_sentiment <- image, post_sentiment <-
fused), everything trainable, Adam.

- (a) mmtask: `MultiTaskModel` with its masked per-task losses, accuracy and
  macro F1 (`KerasHubTextEncoder(reads="token_ids")`,
  `KerasHubImageEncoder`, `ConcatFusion`, `ClassificationHead`s).
- (b) keras: fresh copies of the same layers wired as a functional
  `keras.Model`, "sparse_categorical_crossentropy" per task with
  `loss_weights` of 1.0, "accuracy", the masks as `sample_weight`.
- (c) torch: the same architecture as a hand-written PyTorch loop
  (`gpu_train_torch.py`), `torch.compile`d (inductor; `aot_eager` with
  `--smoke`), under bf16 autocast for `mixed_bfloat16`: the text side is
  transformers' `BertModel` of the same configuration where transformers is
  installed (else `nn.TransformerEncoder`), the image side timm's
  `efficientnet_lite0` where timm is installed (else `LiteNet`: the same
  Lite0 stages in PyTorch, from the same config); `torch_models` names them.

Each runs on the same in-memory batches (random images in 0..255, random
token ids, labels in 0..2 with about 10% of post labels missing) already on
the device, for every batch size and precision: a warm-up (compilation),
then `--steps` timed steps. Keras runs with XLA (`jit_compile=True`).
FLOPs per training example come from XLA's cost analysis of mmtask's
lowered forward pass (x3 for forward + backward); `fraction_of_peak` is achieved
FLOP/s over `--peak-tflops` (default: the dense bf16 peak of an H100/H200
when one is detected, else omitted).

Needs Keras on the JAX backend (`KERAS_BACKEND=jax`) and no TensorFlow: it
runs on a machine with JAX+CUDA and PyTorch only. Prints one JSON line on
stdout; progress goes to stderr.

Run (GPU machine):
    KERAS_BACKEND=jax python benchmarks/gpu_train.py
Smoke (CPU, seconds):
    KERAS_BACKEND=jax python benchmarks/gpu_train.py --smoke
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Sequence

import keras
import numpy as np
from common import positive_int, print_json_line

TASKS = {"text_sentiment": "text", "image_sentiment": "image", "post_sentiment": "fused"}
CLASSES = 3
MISSING_POST_LABELS = 0.1
TARGET_KERAS_RATIO = 0.98  # (a) / (b)
TARGET_TORCH_RATIO = 1.25  # (a) / (c)
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0}  # dense bf16 tensor-core peak (SXM)

LITE0 = {
    "stackwise_width_coefficients": [1.0] * 7,
    "stackwise_depth_coefficients": [1.0] * 7,
    "stackwise_kernel_sizes": [3, 3, 5, 3, 5, 5, 3],
    "stackwise_num_repeats": [1, 2, 2, 3, 3, 4, 1],
    "stackwise_input_filters": [32, 16, 24, 40, 80, 112, 192],
    "stackwise_output_filters": [16, 24, 40, 80, 112, 192, 320],
    "stackwise_expansion_ratios": [1, 6, 6, 6, 6, 6, 6],
    "stackwise_squeeze_and_excite_ratios": [0] * 7,
    "stackwise_strides": [1, 2, 2, 2, 1, 2, 1],
    "stackwise_block_types": ["v1"] * 7,
    "stackwise_force_input_filters": [0] * 7,
    "stackwise_nores_option": [False] * 7,
    "dropout": 0,
    "depth_divisor": 8,
    "min_depth": None,
    "activation": "relu6",
    "include_stem_padding": False,
    "use_depth_divisor_as_min_depth": True,
    "cap_round_filter_decrease": True,
    "stem_conv_padding": "same",
    "batch_norm_momentum": 0.9,
    "batch_norm_epsilon": 0.001,
}
SMOKE_IMAGE_NET = {
    **LITE0,
    **{
        key: LITE0[key][:2]
        for key in LITE0
        if key.startswith("stackwise_") and isinstance(LITE0[key], list)
    },
    "stackwise_num_repeats": [1, 1],
    "stackwise_input_filters": [8, 8],
    "stackwise_output_filters": [8, 16],
}
FULL = {
    "image_size": 224,
    "image_net": LITE0,
    "text": {"vocabulary": 30522, "layers": 6, "width": 384, "heads": 12, "ff": 1536, "length": 64},
    "fusion_units": 256,
}
SMOKE = {
    "image_size": 32,
    "image_net": SMOKE_IMAGE_NET,
    "text": {"vocabulary": 64, "layers": 1, "width": 16, "heads": 2, "ff": 32, "length": 8},
    "fusion_units": 16,
}


def log(message: str) -> None:
    print(f"[gpu_train] {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="Tiny sizes, a few steps (CPU).")
    parser.add_argument("--batch-sizes", type=positive_int, nargs="+", default=None)
    parser.add_argument(
        "--precisions",
        nargs="+",
        default=["float32", "mixed_bfloat16"],
        choices=["float32", "mixed_bfloat16"],
    )
    parser.add_argument(
        "--frameworks",
        nargs="+",
        default=["mmtask", "keras", "torch"],
        choices=["mmtask", "keras", "torch"],
    )
    parser.add_argument("--steps", type=positive_int, default=None, help="Timed steps per run.")
    parser.add_argument("--warmup-steps", type=positive_int, default=None)
    parser.add_argument("--batches", type=positive_int, default=4, help="Distinct batches.")
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="The device's peak TFLOP/s (default: H100/H200 bf16 if detected).",
    )
    parser.add_argument(
        "--torch-compile-backend",
        default=None,
        help="torch.compile's backend (default inductor; aot_eager with --smoke: the "
        "same tracing and autograd, without inductor's minutes of C++ compilation on a CPU).",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.torch_compile_backend = args.torch_compile_backend or (
        "aot_eager" if args.smoke else "inductor"
    )
    args.size = SMOKE if args.smoke else FULL
    args.batch_sizes = args.batch_sizes or ([4] if args.smoke else [128, 256])
    args.steps = args.steps or (2 if args.smoke else 30)
    args.warmup_steps = args.warmup_steps or (1 if args.smoke else 5)
    return args


# The data: the same batches for every framework, on the device once.


def make_batches(size: dict, batch_size: int, count: int, seed: int) -> list[tuple]:
    """`count` batches of (features, labels, masks) as NumPy arrays."""
    rng = np.random.default_rng(seed)
    text, side = size["text"], size["image_size"]
    batches = []
    for _ in range(count):
        lengths = rng.integers(3, text["length"] + 1, batch_size)
        ids = rng.integers(5, text["vocabulary"], (batch_size, text["length"]))
        ids[np.arange(text["length"]) >= lengths[:, None]] = 0  # padding
        features = {
            "text": ids.astype("int32"),
            "image": rng.uniform(0, 255, (batch_size, side, side, 3)).astype("float32"),
        }
        labels = {t: rng.integers(0, CLASSES, batch_size).astype("int32") for t in TASKS}
        masks = {t: np.ones(batch_size, "float32") for t in TASKS}
        missing = rng.random(batch_size) < MISSING_POST_LABELS
        labels["post_sentiment"][missing] = 0
        masks["post_sentiment"][missing] = 0.0
        batches.append((features, labels, masks))
    return batches


def cycle(batches: list):
    """The batches, round and round, as Keras' `fit` reads a generator."""
    while True:
        yield from batches


# (a) and (b): Keras on JAX.


def build_mmtask(size: dict):
    import keras_hub

    from mmtask.encoders import KerasHubImageEncoder, KerasHubTextEncoder
    from mmtask.fusion import ConcatFusion
    from mmtask.heads import ClassificationHead
    from mmtask.models import MultiTaskModel

    text = size["text"]
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocabulary += [f"w{i}" for i in range(text["vocabulary"] - len(vocabulary))]
    bert = keras_hub.models.BertBackbone(
        vocabulary_size=text["vocabulary"],
        num_layers=text["layers"],
        num_heads=text["heads"],
        hidden_dim=text["width"],
        intermediate_dim=text["ff"],
        max_sequence_length=max(text["length"], 64),
        dropout=0.1,
    )
    text_encoder = KerasHubTextEncoder(
        tokenizer=keras_hub.models.BertTokenizer(vocabulary=vocabulary),
        backbone=bert,
        sequence_length=text["length"],
        trainable_backbone=True,
        reads="token_ids",
        name="text_encoder",
    )
    image_encoder = KerasHubImageEncoder(
        backbone=keras_hub.models.EfficientNetBackbone(**size["image_net"]),
        trainable_backbone=True,
        name="image_encoder",
    )
    return MultiTaskModel(
        encoders={"text": text_encoder, "image": image_encoder},
        fusion=ConcatFusion(units=(size["fusion_units"],), name="fusion"),
        heads={t: ClassificationHead(CLASSES, name=t) for t in TASKS},
        task_inputs=TASKS,
        label_names={t: ["negative", "neutral", "positive"] for t in TASKS},
        image_size=(size["image_size"], size["image_size"]),
        name="mmtask_model",
    )


def fresh_copy(layer):
    return layer.__class__.from_config(layer.get_config())


def build_keras(model) -> keras.Model:
    """The layers of `model`, freshly built, as a plain functional Keras model."""
    inputs = {
        "text": keras.Input(
            shape=(model.encoders["text"].sequence_length,), dtype="int32", name="text"
        ),
        "image": keras.Input(shape=(*model.image_size, 3), name="image"),
    }
    vectors = {m: fresh_copy(model.encoders[m])(inputs[m])["vector"] for m in ("image", "text")}
    vectors["fused"] = fresh_copy(model.fusion)({m: vectors[m] for m in ("image", "text")})
    outputs = {t: fresh_copy(model.heads[t])(vectors[TASKS[t]]) for t in TASKS}
    return keras.Model(inputs=inputs, outputs=outputs, name="keras_baseline")


def forward_flops(model, batch: tuple) -> float | None:
    """XLA's count of the forward pass's FLOPs for `batch` (None where it gives none).

    From the lowered computation: the count of its convolutions and matrix
    products does not need the compilation, which takes long.
    """
    import jax

    def forward(trainable, non_trainable, x):
        return model.stateless_call(trainable, non_trainable, x, training=True)[0]

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    analysis = jax.jit(forward).lower(trainable, non_trainable, batch[0]).cost_analysis()
    if isinstance(analysis, list):
        analysis = analysis[0] if analysis else {}
    flops = (analysis or {}).get("flops")
    return float(flops) if flops else None


def time_keras(model, batches: list, warmup: int, steps: int) -> float:
    """Seconds of `steps` training steps after `warmup` untimed ones."""
    start = time.perf_counter()
    model.fit(cycle(batches), steps_per_epoch=warmup, epochs=1, verbose=0, shuffle=False)
    log(f"{model.name}: warm-up (compilation) {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    model.fit(cycle(batches), steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return time.perf_counter() - start


def run_keras_side(args, batch_size: int, precision: str, batches: list) -> dict:
    """examples/s of (a) and (b), and mmtask's FLOPs per example."""
    import jax

    keras.mixed_precision.set_dtype_policy(precision)
    try:
        keras.utils.set_random_seed(args.seed)
        model = build_mmtask(args.size)
        model.compile(optimizer="adam", jit_compile=True)
        models = {"mmtask": model}
        if "keras" in args.frameworks:
            baseline = build_keras(model)
            baseline.compile(
                optimizer="adam",
                loss={t: "sparse_categorical_crossentropy" for t in TASKS},
                loss_weights={t: 1.0 for t in TASKS},
                metrics={t: ["accuracy"] for t in TASKS},
                jit_compile=True,
            )
            models["keras"] = baseline
        device_batches = jax.device_put(batches)
        result = {"params": model.count_params(), "jit_compile": {}}
        for name, m in models.items():
            if name in args.frameworks:
                seconds = time_keras(m, device_batches, args.warmup_steps, args.steps)
                result[name] = args.steps * batch_size / seconds
                result["jit_compile"][name] = bool(m.jit_compile)
                log(f"batch {batch_size} {precision} {name}: {result[name]:.1f} examples/s")
        start = time.perf_counter()
        flops = forward_flops(model, device_batches[0])
        log(f"cost analysis {time.perf_counter() - start:.1f} s")
        result["train_flops_per_example"] = None if flops is None else 3 * flops / batch_size
        return result
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


# The device and its peak.


def device_and_peak(args) -> tuple[str, float | None]:
    import jax

    device = jax.devices()[0]
    kind = f"{device.platform}:{getattr(device, 'device_kind', '')}"
    if args.peak_tflops is not None:
        return kind, args.peak_tflops
    known = [tflops for name, tflops in PEAK_BF16_TFLOPS.items() if name in kind]
    return kind, known[0] if known else None


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    if keras.backend.backend() != "jax":
        sys.exit("gpu_train.py runs Keras on JAX: set KERAS_BACKEND=jax.")
    wall_start = time.perf_counter()
    device, peak = device_and_peak(args)
    log(f"device {device}; peak {peak} TFLOP/s; size {'smoke' if args.smoke else 'full'}")
    runs, torch_info = [], None
    for batch_size in args.batch_sizes:
        batches = make_batches(args.size, batch_size, args.batches, args.seed)
        for precision in args.precisions:
            row = {"batch_size": batch_size, "precision": precision}
            side = run_keras_side(args, batch_size, precision, batches)
            row.update(
                {f"{n}_examples_per_s": round(side[n], 2) for n in ("mmtask", "keras") if n in side}
            )
            if "torch" in args.frameworks:
                import gpu_train_torch  # here: torch only where its side runs

                rate, torch_info = gpu_train_torch.examples_per_s(
                    args.size,
                    TASKS,
                    batches,
                    precision,
                    args.warmup_steps,
                    args.steps,
                    args.seed,
                    args.torch_compile_backend,
                )
                log(f"batch {batch_size} {precision} torch: {rate:.1f} examples/s {torch_info}")
                row["torch_examples_per_s"] = round(rate, 2)
            if "keras" in side:
                row["mmtask_over_keras"] = round(side["mmtask"] / side["keras"], 3)
            if "torch" in args.frameworks:
                row["mmtask_over_torch"] = round(side["mmtask"] / rate, 3)
            flops = side["train_flops_per_example"]
            row["train_gflops_per_example"] = None if flops is None else round(flops / 1e9, 3)
            if peak and flops:
                row["mmtask_fraction_of_peak"] = round(side["mmtask"] * flops / (peak * 1e12), 4)
            row["params"] = side["params"]
            row["jit_compile"] = side["jit_compile"]
            runs.append(row)
    return {
        "benchmark": "gpu_train",
        "size": "smoke" if args.smoke else "full",
        "image_size": args.size["image_size"],
        "text": args.size["text"],
        "steps": args.steps,
        "warmup_steps": args.warmup_steps,
        "runs": runs,
        "target_mmtask_over_keras": TARGET_KERAS_RATIO,
        "target_mmtask_over_torch": TARGET_TORCH_RATIO,
        "device": device,
        "peak_tflops": peak,
        "torch_models": torch_info,
        "wall_s": round(time.perf_counter() - wall_start, 1),
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "tensorflow_imported": "tensorflow" in sys.modules,
        "python_version": platform.python_version(),
        "cores": os.cpu_count(),
    }


if __name__ == "__main__":
    print_json_line(main)
