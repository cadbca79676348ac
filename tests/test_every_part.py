"""Every registered part, and the classification head, passes `run_layer_test` and keeps its dtypes.

Parametrized over the registries, so a new part is checked when it registers:
declared outputs (`compute_output_spec`) equal real ones, symbolic and eager;
the serialization round trip; one training step; a gradient to every weight;
and under `mixed_float16` and `mixed_bfloat16` the dtypes it declares.
Stand-ins for presets, weights files and SavedModels are written once.
"""

import contextlib

import keras
import numpy as np
import pytest
from keras.src.saving.serialization_lib import SafeModeScope
from stand_ins import encoder_options
from tiny_models import make_batch

import mmtask.builder  # noqa: F401  (registers every built-in part)
import mmtask.heads  # noqa: F401  (registers the head types)
from mmtask.registry import (
    ALIGNMENTS,
    FUSIONS,
    HEADS,
    IMAGE_ENCODERS,
    TEXT_ENCODERS,
    WEIGHTINGS,
)
from mmtask.testing import check_dtype_policy, run_layer_test

BATCH, IMAGE_SIZE, WIDTH = 4, 32, 5
# Options that give the stand-ins trainable weights everywhere, so the
# gradient check has something to check; an unknown part gets none.
TRAINABLE = {
    "keras_hub": {"trainable_backbone": True, "output_dim": 3},
    "keras_applications": {"trainable_backbone": True, "output_dim": 3},
    "mpnet": {"trainable_backbone": True, "output_dim": 3},
    "tf_hub": {"trainable_backbone": True, "output_dim": 3},
    "transformer": {"output_dim": 3},
    "precomputed": {"output_dim": 3},
}
OPTIONS = {
    "fusion": {
        "autoencoder": {"bottleneck_dim": 4, "hidden_units": 6},
        "concat": {"units": [6]},
        "cross_attention": {"units": 4, "num_heads": 2},
        "gated": {"units": 4},
    },
    "alignment": {"contrastive": {"projection_dim": 4}},
}
REGISTRIES = {
    "text_encoder": TEXT_ENCODERS,
    "image_encoder": IMAGE_ENCODERS,
    "fusion": FUSIONS,
    "weighting": WEIGHTINGS,
    "alignment": ALIGNMENTS,
}
PARTS = [(kind, name) for kind, registry in REGISTRIES.items() for name in registry.names()]
PARTS += [("head", name) for name in HEADS.names()]
HEAD_OPTIONS = {
    "classification": {"num_classes": 3},
    "binary": {},
    "multilabel": {"num_classes": 3},
    "regression": {"mean": [1.0, -2.0], "std": [0.5, 3.0]},
}


@pytest.fixture(scope="module")
def part(tmp_path_factory):
    """(kind, name) -> (build, options, inputs) for the part, stand-ins written on first use."""
    root = tmp_path_factory.mktemp("stand_ins")
    made = {}

    def get(kind: str, name: str):
        if (kind, name) not in made:
            made[kind, name] = _part(kind, name, root / f"{kind}_{name}")
        return made[kind, name]

    return get


def _part(kind, name, folder):
    rng = np.random.default_rng(0)
    raw, _ = make_batch(n=BATCH, image_size=IMAGE_SIZE)
    if kind.endswith("_encoder"):
        modality = kind.removesuffix("_encoder")
        build = REGISTRIES[kind].get(name)
        options = {**encoder_options(name, modality, folder), **TRAINABLE.get(name, {})}
        encoder = build(**options)
        if encoder.reads == "features":
            shape = encoder.example_shape((IMAGE_SIZE, IMAGE_SIZE))
            return build, options, rng.normal(size=(BATCH, *shape)).astype("float32")
        return build, options, raw[modality]
    if kind == "fusion":
        build = FUSIONS.get(name)
        options = OPTIONS[kind].get(name, {})
        vectors = {m: rng.normal(size=(BATCH, WIDTH)).astype("float32") for m in raw}
        if not build(**options).uses_sequences:
            return build, options, vectors
        encoded = {}
        for m, length in (("text", 3), ("image", 4)):
            mask = np.ones((BATCH, length), bool)
            mask[0, -1] = False
            sequence = rng.normal(size=(BATCH, length, WIDTH + 1)).astype("float32")
            encoded[m] = {"vector": vectors[m], "sequence": sequence, "mask": mask}
        return build, options, encoded
    if kind == "weighting":
        losses = {"a": np.float32(0.5), "b": np.float32(1.5)}
        return WEIGHTINGS.get(name), {"tasks": ["a", "b"], "weights": {"b": 2.0}}, losses
    if kind == "alignment":
        vectors = {m: rng.normal(size=(BATCH, WIDTH)).astype("float32") for m in raw}
        return ALIGNMENTS.get(name), OPTIONS[kind].get(name, {}), vectors
    x = rng.normal(size=(BATCH, WIDTH)).astype("float32")
    return HEADS.get(name), {**HEAD_OPTIONS[name], "hidden_units": [4]}, x


@pytest.mark.parametrize(("kind", "name"), PARTS, ids=[f"{k}:{n}" for k, n in PARTS])
def test_part_keeps_the_layer_contract(part, kind, name):
    build, options, inputs = part(kind, name)
    # A TF-Hub encoder's config round trip runs its SavedModel: not in safe mode.
    with SafeModeScope(False) if name == "tf_hub" else contextlib.nullcontext():
        run_layer_test(build, options, inputs)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize(("kind", "name"), PARTS, ids=[f"{k}:{n}" for k, n in PARTS])
def test_part_returns_the_dtypes_it_declares_in_mixed_precision(part, kind, name, policy):
    build, options, inputs = part(kind, name)
    layer = check_dtype_policy(build, options, inputs, policy)
    assert keras.config.dtype_policy().name == "float32"  # restored
    # A saved encoder keeps the policy it was saved with (here float32).
    if (kind.endswith("encoder") and name != "saved") or kind in ("fusion", "alignment"):
        assert layer.compute_dtype == policy.removeprefix("mixed_")
