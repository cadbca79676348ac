"""Mixed precision: the run spec and CLI option, a whole model fitting under mixed_bfloat16."""

import keras
import numpy as np
import pytest

import mmtask
from mmtask.cli import build_parser
from mmtask.data import read_mvsa
from mmtask.data.synthetic import write_synthetic_mvsa
from mmtask.errors import SpecError
from mmtask.spec import RunSpec, TrainingSpec

SIZE = 16


def spec(mixed_precision: str, fusion: str = "cross_attention", **training) -> RunSpec:
    return RunSpec.from_dict(
        {
            "model": {
                "image_size": SIZE,
                "text_encoder": {
                    "name": "transformer",
                    "options": {
                        "max_tokens": 100,
                        "sequence_length": 6,
                        "embed_dim": 8,
                        "intermediate_dim": 8,
                    },
                },
                "image_encoder": {
                    "name": "small_cnn",
                    "options": {"filters": [4], "output_dim": 8},
                },
                "fusion": {"name": fusion, "options": {"units": 8, "num_heads": 2}},
                "alignment": {"name": "contrastive", "options": {"projection_dim": 4}},
            },
            "training": {
                "epochs": 1,
                "batch_size": 8,
                "augment": False,
                "mixed_precision": mixed_precision,
                **training,
            },
        }
    )


@pytest.fixture(scope="module")
def posts(tmp_path_factory):
    root = write_synthetic_mvsa(tmp_path_factory.mktemp("mvsa"), num_posts=24, image_size=SIZE)
    return read_mvsa(root, split="train", verbose=0)


def test_spec_and_cli_take_a_mixed_precision_setting():
    assert TrainingSpec().mixed_precision == "none"
    assert spec("bfloat16").training.mixed_precision == "bfloat16"
    with pytest.raises(SpecError, match="expected one of \\['none', 'bfloat16', 'float16'\\]"):
        spec("int8")
    argv = ["train", "--data", "d", "--out", "o", "--mixed-precision", "float16"]
    args = build_parser().parse_args(argv)
    assert args.mixed_precision == "float16"


def test_a_model_fits_under_mixed_bfloat16_and_the_policy_is_restored(posts, tmp_path):
    result = mmtask.train(spec("bfloat16"), posts, verbose=0, cache_dir=tmp_path)
    assert keras.config.dtype_policy().name == "float32"
    assert result.model.encoders["text"].compute_dtype == "bfloat16"
    assert result.model.fusion.dtype_policy.name == "mixed_bfloat16"
    assert all(v.dtype == "float32" for v in result.model.trainable_variables)
    assert all(np.isfinite(result.history["loss"]))
    probabilities = result.model.predict(
        {"text": np.array(["good sun"], object), "image": np.zeros((1, SIZE, SIZE, 3))},
        verbose=0,
    )
    assert probabilities[result.model.tasks[0]].dtype == np.float32


def test_fine_tuning_refuses_float16_loss_scaling_and_names_bfloat16(posts, tmp_path):
    schedule = {"stages": [{"at": 0, "unfreeze": ["encoders/*"]}]}
    run = spec("float16", fusion="concat", fine_tuning=schedule)
    run.model.fusion.options = {"units": [8]}
    with pytest.raises(ValueError, match="mixed_precision: bfloat16"):
        mmtask.train(run, posts, verbose=0, cache_dir=tmp_path)
    assert keras.config.dtype_policy().name == "float32"
