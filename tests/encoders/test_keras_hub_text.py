"""KerasHubTextEncoder: BERT backbone + tokenizer from a local preset, pooled, saved whole."""

import shutil
import subprocess
import sys
import warnings

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from tiny_models import tiny_bert_backbone

from mmtask.encoders import KerasHubTextEncoder
from mmtask.errors import MmtaskError
from mmtask.export import export_saved_model
from mmtask.heads import ClassificationHead
from mmtask.models import MultiTaskModel
from mmtask.testing import run_layer_test
from mmtask.transfer import FineTuning, layer_paths

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "good", "bad", "day", "night"]
TEXTS = np.array(["the good day", "Bad night", "good good good good good good", ""], object)


@pytest.fixture
def preset(tmp_path):
    keras.utils.set_random_seed(0)
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=VOCAB, lowercase=True)
    backbone = tiny_bert_backbone(len(VOCAB), max_sequence_length=16)
    path = tmp_path / "tiny_bert"
    backbone.save_to_preset(str(path))
    tokenizer.save_to_preset(str(path))
    return path, tokenizer, backbone


def by_hand(tokenizer, backbone, texts, sequence_length, pooling):
    ids = [[2] + np.asarray(tokenizer(t)).tolist()[: sequence_length - 2] + [3] for t in texts]
    mask = np.array([[1] * len(i) + [0] * (sequence_length - len(i)) for i in ids], "float32")
    ids = np.array([i + [0] * (sequence_length - len(i)) for i in ids], "int32")
    hidden = np.asarray(
        backbone(
            {
                "token_ids": ids,
                "segment_ids": np.zeros_like(ids),
                "padding_mask": mask.astype(bool),
            }
        )["sequence_output"]
    )
    if pooling == "cls":
        return hidden[:, 0]
    return (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_pools_the_backbone_states(preset, pooling):
    path, tokenizer, backbone = preset
    encoder = KerasHubTextEncoder(preset=str(path), sequence_length=6, pooling=pooling)
    expected = by_hand(tokenizer, backbone, list(TEXTS), 6, pooling)
    np.testing.assert_allclose(np.asarray(encoder(TEXTS)["vector"]), expected, rtol=1e-4, atol=1e-5)
    assert not encoder.backbone.trainable


def test_layer_contract(preset):
    path, _, _ = preset
    run_layer_test(
        KerasHubTextEncoder,
        {"preset": str(path), "sequence_length": 6, "output_dim": 3, "trainable_backbone": True},
        TEXTS,
        # Every trainable weight gets a gradient: BERT's pooler, which this
        # encoder never uses, stays frozen.
        expected_output_shape={"vector": (4, 3)},
    )


EXPORT_CHECK = r"""
import sys, json
import numpy as np
import tensorflow as tf
from mmtask.serving import open_model
texts = json.loads(sys.argv[2])
assert "tensorflow_text" not in sys.modules
# `mmtask serve`'s loader imports the modules the export's labels file lists first.
served = open_model(sys.argv[1]).predict({"text": [t.encode() for t in texts]})
assert "tensorflow_text" in sys.modules
# A plain TensorFlow process loads it the same way once tensorflow_text is imported.
loaded = tf.saved_model.load(sys.argv[1])
plain = loaded.serve(text=tf.constant(texts))
np.testing.assert_allclose(plain["t_probabilities"].numpy(), served["t_probabilities"], atol=1e-6)
print(json.dumps(served["t_probabilities"].tolist()))
"""


def test_saved_and_exported_without_the_preset(preset, tmp_path):
    path, _, _ = preset
    keras.utils.set_random_seed(0)
    model = MultiTaskModel(
        encoders={"text": KerasHubTextEncoder(preset=str(path), sequence_length=6, output_dim=4)},
        heads={"t": ClassificationHead(2)},
        task_inputs={"t": "text"},
        label_names={"t": ["no", "yes"]},
    )
    expected = model.predict({"text": TEXTS}, verbose=0)["t"]
    model.save(tmp_path / "model.keras")
    shutil.rmtree(path)
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded.predict({"text": TEXTS}, verbose=0)["t"], expected, atol=1e-6)
    exported = export_saved_model(loaded, tmp_path / "exported")
    import json

    completed = subprocess.run(
        [sys.executable, "-c", EXPORT_CHECK, str(exported), json.dumps(list(TEXTS))],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    served = json.loads(completed.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(served, expected, atol=1e-5)
    labels = json.loads((exported / "assets" / "mmtask_labels.json").read_text())
    assert labels["requires_imports"] == ["tensorflow_text"]


@pytest.mark.parametrize("top_n", [None, 1])
def test_fine_tuning_never_unfreezes_the_unused_pooler(preset, top_n):
    path, _, _ = preset
    keras.utils.set_random_seed(0)
    model = MultiTaskModel(
        encoders={"text": KerasHubTextEncoder(preset=str(path), sequence_length=6)},
        heads={"t": ClassificationHead(2)},
        task_inputs={"t": "text"},
        label_names={"t": ["no", "yes"]},
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    schedule = {"stages": [{"at": 0, "unfreeze": "encoders/text/backbone", "top_n": top_n}]}
    paths = layer_paths(model)
    pooler = paths["encoders/text/backbone/pooled_dense"].get_weights()
    last = paths["encoders/text/backbone/transformer_layers/0"].get_weights()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(
            {"text": TEXTS},
            {"t": np.array([0, 1, 0, 1])},
            epochs=1,
            verbose=0,
            callbacks=[FineTuning(schedule)],
        )
    assert not [w for w in caught if "Gradients do not exist" in str(w.message)]
    pooler_after = paths["encoders/text/backbone/pooled_dense"].get_weights()
    for before, after in zip(pooler, pooler_after, strict=True):
        np.testing.assert_array_equal(before, after)
    trained = paths["encoders/text/backbone/transformer_layers/0"].get_weights()
    assert any(not np.array_equal(b, a) for b, a in zip(last, trained, strict=True))


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="Give either"):
        KerasHubTextEncoder()
    with pytest.raises(MmtaskError, match="Preset folder not found"):
        KerasHubTextEncoder(preset=str(tmp_path / "missing"))


def test_tokenizer_works_inside_tf_function(preset):
    path, _, _ = preset
    encoder = KerasHubTextEncoder(preset=str(path), sequence_length=6)
    eager = np.asarray(encoder(TEXTS)["vector"])
    graph = tf.function(encoder)(tf.constant(list(TEXTS)))
    np.testing.assert_allclose(np.asarray(graph["vector"]), eager, rtol=1e-5, atol=1e-6)


def test_returns_token_states(preset):
    path, _, _ = preset
    encoder = KerasHubTextEncoder(preset=str(path), sequence_length=6)
    out = encoder(TEXTS)
    assert tuple(out["sequence"].shape) == (4, 6, 8)
    # [CLS] the good day [SEP] + 1 padding; the empty text is [CLS] [SEP].
    assert np.asarray(out["mask"])[0].tolist() == [True] * 5 + [False]
    assert np.asarray(out["mask"])[3].tolist() == [True] * 2 + [False] * 4


def test_preset_inside_an_installed_package(preset, tmp_path, monkeypatch):
    package = tmp_path / "site" / "fake_weights_package"
    shutil.copytree(preset[0], package / "model")
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    encoder = KerasHubTextEncoder(preset="package:fake_weights_package/model", sequence_length=8)
    direct = KerasHubTextEncoder(preset=str(preset[0]), sequence_length=8)
    texts = keras.ops.convert_to_tensor(["a b", "c"])
    np.testing.assert_allclose(encoder(texts)["vector"], direct(texts)["vector"], atol=1e-6)
    with pytest.raises(MmtaskError, match="'not_installed_package', which is not installed"):
        KerasHubTextEncoder(preset="package:not_installed_package/model")
