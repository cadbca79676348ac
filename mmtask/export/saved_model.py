"""Export a trained model as a TensorFlow SavedModel that serves raw text and image bytes.

All preprocessing is inside the SavedModel: images are decoded and resized by
the same function the training pipeline uses, and the text encoder carries its
own tokenizer. The export is written to a temporary folder beside the target
and renamed into place, so an interrupted export never leaves a half-written
model at the requested path.
"""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path

import keras
import keras_hub
import tensorflow as tf

from mmtask.atomic_folders import replace_folder, staging_folder
from mmtask.data.images import decode_optional_image
from mmtask.errors import MmtaskError

SERVING_ENDPOINT = "serve"
LABELS_FILE = "mmtask_labels.json"


def serving_function(model):
    """A `tf.function`-ready callable: raw inputs -> each head's export outputs.

    Arguments are, for the modalities the model has: `text` (tf.string [batch],
    UTF-8) and `image_bytes` (tf.string [batch], JPEG / PNG / GIF / BMP bytes).
    An empty string or empty bytes marks that modality missing for that post;
    the fused heads then predict from the other one.
    Returns what each head's `export_outputs` gives: for classification
    `{task}_probabilities` (float32 [batch, classes]) and `{task}_label`
    (tf.string [batch]); for binary `{task}_probability` (float32 [batch])
    and `{task}_label`; for multilabel `{task}_probabilities` and
    `{task}_labels` (tf.string [batch], the classes joined by "|"); for
    regression `{task}_value` (float32 [batch, outputs], in original units).
    """
    height, width = model.image_size

    def serve(**raw):
        inputs = {}
        if "text" in model.modalities:
            inputs["text"] = raw["text"]
        if "image" in model.modalities:
            inputs["image"] = tf.map_fn(
                lambda b: decode_optional_image(b, (height, width)),
                raw["image_bytes"],
                fn_output_signature=tf.TensorSpec((height, width, 3), tf.float32),
            )
        predicted = model(inputs, training=False)
        outputs = {}
        for task in model.tasks:
            head = model.heads[task]
            outputs.update(head.export_outputs(task, predicted[task], model.label_names[task]))
        return outputs

    return serve


def required_imports(model) -> list[str]:
    """Modules a serving process must import before `tf.saved_model.load` of this export.

    keras-hub tokenizers run TensorFlow Text ops, which exist only once
    `tensorflow_text` is imported.
    """
    tokenizers = [getattr(encoder, "tokenizer", None) for encoder in model.encoders.values()]
    if any(isinstance(t, keras_hub.tokenizers.Tokenizer) for t in tokenizers):
        return ["tensorflow_text"]
    return []


def export_saved_model(model, path: str | Path, overwrite: bool = False) -> Path:
    """Write `model` as a SavedModel with a `serve` endpoint taking raw text and image bytes.

    Args:
        model: MultiTaskModel.
        path: str or Path. The folder to create.
        overwrite: bool. Replace an existing folder at `path`.

    Returns:
        The path of the SavedModel folder.

    Example:
    ```python
    export_saved_model(model, "exported")
    served = tf.saved_model.load("exported")
    out = served.serve(text=tf.constant(["a tweet"]), image_bytes=tf.constant([jpeg]))
    ```
    """
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise MmtaskError(
            "export_saved_model is TensorFlow-only: set KERAS_BACKEND=tensorflow to export "
            f"(a `.keras` file saved on the {backend} backend loads there)."
        )
    path = Path(path)
    if path.exists() and not overwrite:
        raise MmtaskError(f"Export path already exists: {path} (pass overwrite=True to replace)")
    precomputed = [m for m, e in model.encoders.items() if e.reads == "features"]
    if precomputed:
        raise MmtaskError(
            f"This model reads precomputed {' and '.join(precomputed)} features, so it cannot "
            "serve raw text and image bytes: build it with the encoders the features came from "
            "to export it."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    signature = {}
    if "text" in model.modalities:
        signature["text"] = tf.TensorSpec([None], tf.string, name="text")
    if "image" in model.modalities:
        signature["image_bytes"] = tf.TensorSpec([None], tf.string, name="image_bytes")
    serve = serving_function(model)

    def endpoint(*args, **kwargs):
        return serve(**dict(zip(signature, args, strict=False)), **kwargs)

    # Name the endpoint's parameters after the inputs, so callers pass them by name.
    endpoint.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in signature]
    )

    staging = staging_folder(path)
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            name=SERVING_ENDPOINT, fn=endpoint, input_signature=list(signature.values())
        )
        archive.write_out(str(staging), verbose=False)
        (staging / "assets").mkdir(exist_ok=True)
        (staging / "assets" / LABELS_FILE).write_text(
            json.dumps(
                {
                    "label_names": model.label_names,
                    "label_types": model.label_types,
                    "inputs": list(signature),
                    "requires_imports": required_imports(model),
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        replace_folder(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path

