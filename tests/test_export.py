"""SavedModel export: raw text + image bytes in, the Keras model's probabilities out; atomic."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from tiny_models import TASKS, make_model

from mmtask.data import decode_image
from mmtask.errors import MmtaskError
from mmtask.export import export_saved_model

IMAGE_SIZE = 16
# keras.export.ExportArchive() returns an instance of a backend-specific subclass.
ARCHIVE_CLASS = type(keras.export.ExportArchive())


def encoded_images():
    rng = np.random.default_rng(0)
    pixels = [rng.integers(0, 256, (20 + 5 * i, 30, 3), dtype=np.uint8) for i in range(4)]
    jpegs = [tf.io.encode_jpeg(p).numpy() for p in pixels[:2]]
    pngs = [tf.io.encode_png(p).numpy() for p in pixels[2:]]
    return jpegs + pngs


SERVE_SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf
path, inputs_file, out_file = sys.argv[1:4]
inputs = np.load(inputs_file, allow_pickle=True)
served = tf.saved_model.load(path)
outputs = served.serve(
    text=tf.constant(list(inputs["text"])), image_bytes=tf.constant(list(inputs["image_bytes"]))
)
signature = served.signatures["serve"](
    text=tf.constant(list(inputs["text"])), image_bytes=tf.constant(list(inputs["image_bytes"]))
)
result = {k: v.numpy().tolist() for k, v in outputs.items() if k.endswith("_probabilities")}
result.update({k: [s.decode() for s in v.numpy()] for k, v in outputs.items()
               if k.endswith("_label")})
result["signature_matches"] = all(
    np.allclose(signature[k].numpy(), outputs[k].numpy()) for k in outputs
    if k.endswith("_probabilities"))
json.dump(result, open(out_file, "w"))
"""


def test_export_serves_raw_inputs_in_a_fresh_process(tmp_path):
    model = make_model(image_size=IMAGE_SIZE)
    texts = ["good sun", "bad rain cat", "", "caf\u00e9 tea \U0001f600"]
    images = encoded_images()
    path = export_saved_model(model, tmp_path / "exported")
    assert path == tmp_path / "exported"
    inputs_file = tmp_path / "inputs.npz"
    np.savez(
        inputs_file,
        text=np.array(texts, dtype=object),
        image_bytes=np.array(images, dtype=object),
    )
    out_file = tmp_path / "outputs.json"
    completed = subprocess.run(
        [sys.executable, "-c", SERVE_SCRIPT, str(path), str(inputs_file), str(out_file)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    served = json.loads(out_file.read_text())
    decoded = np.stack([decode_image(tf.constant(b), IMAGE_SIZE).numpy() for b in images])
    expected = model.predict({"text": np.array(texts, object), "image": decoded}, verbose=0)
    for task in TASKS:
        np.testing.assert_allclose(served[f"{task}_probabilities"], expected[task], atol=1e-5)
        names = [model.label_names[task][i] for i in expected[task].argmax(-1)]
        assert served[f"{task}_label"] == names
    assert served["signature_matches"]
    labels = json.loads((path / "assets" / "mmtask_labels.json").read_text())
    assert labels["label_names"] == model.label_names


def test_existing_path_needs_overwrite(tmp_path):
    model = make_model(image_size=IMAGE_SIZE)
    target = tmp_path / "exported"
    target.mkdir()
    (target / "keep.txt").write_text("user data")
    with pytest.raises(MmtaskError, match="already exists"):
        export_saved_model(model, target)
    assert (target / "keep.txt").read_text() == "user data"
    export_saved_model(model, target, overwrite=True)
    assert (target / "saved_model.pb").is_file()
    assert not (target / "keep.txt").exists()


def _failing_write_out(self, filepath, **kwargs):
    Path(filepath, "saved_model.pb").write_bytes(b"half")
    raise KeyboardInterrupt("interrupted while writing")


def test_interrupted_export_leaves_nothing_behind(tmp_path, monkeypatch):
    model = make_model(image_size=IMAGE_SIZE)
    monkeypatch.setattr(ARCHIVE_CLASS, "write_out", _failing_write_out)
    with pytest.raises(KeyboardInterrupt):
        export_saved_model(model, tmp_path / "exported")
    assert list(tmp_path.iterdir()) == []


def test_interrupted_overwrite_keeps_the_previous_export(tmp_path, monkeypatch):
    model = make_model(image_size=IMAGE_SIZE)
    target = export_saved_model(model, tmp_path / "exported")
    before = sorted(p.relative_to(target) for p in target.rglob("*"))
    monkeypatch.setattr(ARCHIVE_CLASS, "write_out", _failing_write_out)
    with pytest.raises(KeyboardInterrupt):
        export_saved_model(model, target, overwrite=True)
    assert sorted(p.relative_to(target) for p in target.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["exported"]


def test_versioned_export_is_readable_by_others_whatever_the_umask(tmp_path):
    model = make_model(image_size=IMAGE_SIZE)
    previous = os.umask(0o077)
    try:
        path = export_saved_model(model, tmp_path / "tiny", version=2)
    finally:
        os.umask(previous)
    assert path == tmp_path / "tiny" / "2"
    for inner in [tmp_path / "tiny", *path.rglob("*")]:
        mode = stat.S_IMODE(inner.stat().st_mode)
        assert mode == (0o755 if inner.is_dir() else 0o644), (inner, oct(mode))
    labels = json.loads((path / "assets" / "mmtask_labels.json").read_text())
    assert labels["image_statuses"] == ["ok", "missing", "undecodable", "too_large"]
    with pytest.raises(MmtaskError, match="already exists"):
        export_saved_model(model, tmp_path / "tiny", version=2)
    with pytest.raises(MmtaskError, match="version"):
        export_saved_model(model, tmp_path / "tiny", version=0)
