"""Export a trained model as a TensorFlow SavedModel that serves raw text and image bytes.

All preprocessing is inside the SavedModel: images are decoded and resized by
the same function the training pipeline uses, and the text encoder carries its
own tokenizer. The export is written to a temporary folder beside the target
and renamed into place, so an interrupted export never leaves a half-written
model at the requested path. A bad image file spoils only its own post:
that post is answered without its image, and the `image_status` output
says why (see `mmtask.export.image_batch`).
"""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path

import keras
import tensorflow as tf

from mmtask.atomic_folders import FOLDER_MODE, replace_folder, staging_folder
from mmtask.errors import MmtaskError
from mmtask.export.image_batch import DEFAULT_MAX_IMAGE_PIXELS, IMAGE_STATUSES, decode_image_batch

SERVING_ENDPOINT = "serve"
LABELS_FILE = "mmtask_labels.json"
FILE_MODE = 0o644
"""Exported files are readable by others, as its folders (a server often runs as another user)."""


def serving_function(model, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS):
    """A `tf.function`-ready callable: raw inputs -> each head's export outputs.

    Arguments are, for the modalities the model has: `text` (tf.string [batch],
    UTF-8) and `image_bytes` (tf.string [batch], JPEG / PNG / GIF / BMP / WebP
    bytes), of one batch size. An empty string or empty bytes marks that
    modality missing for that post; the fused heads then predict from the
    other one. So does an image that cannot be decoded or whose header
    declares more than `max_image_pixels` pixels; `image_status` (tf.string
    [batch], one of `IMAGE_STATUSES`) tells them apart.
    Returns what each head's `export_outputs` gives: for classification
    `{task}_probabilities` (float32 [batch, classes]) and `{task}_label`
    (tf.string [batch]); for binary `{task}_probability` (float32 [batch])
    and `{task}_label`; for multilabel `{task}_probabilities` and
    `{task}_labels` (tf.string [batch], the classes joined by "|"); for
    regression `{task}_value` (float32 [batch, outputs], in original units).
    """
    statuses = tf.constant(IMAGE_STATUSES)

    def serve(**raw):
        raw = _same_batch_size(raw)
        inputs, outputs = {}, {}
        if "text" in model.modalities:
            encoder = model.encoders["text"]
            # A token-id encoder's tokenizer runs in the pipeline in training; here, in the graph.
            tokenized = encoder.reads == "token_ids"
            inputs["text"] = encoder.tokenize(raw["text"]) if tokenized else raw["text"]
        if "image" in model.modalities:
            inputs["image"], codes = decode_image_batch(
                raw["image_bytes"], model.image_size, max_image_pixels
            )
            outputs["image_status"] = tf.gather(statuses, codes)
        predicted = model(inputs, training=False)
        for task in model.tasks:
            head = model.heads[task]
            outputs.update(head.export_outputs(task, predicted[task], model.label_names[task]))
        return outputs

    return serve


def _same_batch_size(raw: dict) -> dict:
    """`raw`, checked to hold one batch size: a clear error instead of a shape error deep inside."""
    if len(raw) < 2:
        return raw
    sizes = {name: tf.shape(values)[0] for name, values in raw.items()}
    (first, first_size), *others = sizes.items()
    checks = [
        tf.debugging.assert_equal(
            first_size,
            size,
            message=f"`{first}` and `{name}` must hold one entry per post, as many of each "
            "(an empty string for a missing text, empty bytes for a missing image)",
        )
        for name, size in others
    ]
    with tf.control_dependencies(checks):
        return {name: tf.identity(values) for name, values in raw.items()}


def required_imports(model) -> list[str]:
    """Modules a serving process must import before `tf.saved_model.load` of this export.

    Each encoder states them (`Encoder.serving_imports`): keras-hub tokenizers
    run TensorFlow Text ops, which exist only once `tensorflow_text` is imported.
    """
    modules = [m for encoder in model.encoders.values() for m in encoder.serving_imports]
    return sorted(set(modules))


def export_saved_model(
    model,
    path: str | Path,
    overwrite: bool = False,
    version: int | None = None,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> Path:
    """Write `model` as a SavedModel with a `serve` endpoint taking raw text and image bytes.

    Args:
        model: MultiTaskModel.
        path: str or Path. The folder to create.
        overwrite: bool. Replace an existing folder at `path` (with `version`,
            an existing version folder; other versions are kept).
        version: int | None. Write TensorFlow Serving's versioned layout,
            `path/VERSION/`, which TF Serving watches for new versions.
        max_image_pixels: int. Images whose header declares more decoded
            pixels are not decoded: the post is answered without its image
            and `image_status` says "too_large".

    Returns:
        The path of the SavedModel folder (`path/VERSION` with `version`).

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
    if version is not None and (isinstance(version, bool) or int(version) < 1):
        raise MmtaskError(
            f"Invalid value for `version`: expected an int >= 1. Received: {version!r}"
        )
    if isinstance(max_image_pixels, bool) or int(max_image_pixels) < 1:
        raise MmtaskError(
            "Invalid value for `max_image_pixels`: expected an int >= 1. "
            f"Received: {max_image_pixels!r}"
        )
    path = Path(path) if version is None else Path(path) / str(int(version))
    if path.exists() and not overwrite:
        raise MmtaskError(f"Export path already exists: {path} (pass overwrite=True to replace)")
    precomputed = [m for m, e in model.encoders.items() if e.reads == "features"]
    if precomputed:
        raise MmtaskError(
            f"This model reads precomputed {' and '.join(precomputed)} features, so it cannot "
            "serve raw text and image bytes: build it with the encoders the features came from "
            "to export it."
        )
    if version is not None and not path.parent.exists():
        path.parent.mkdir(parents=True)
        path.parent.chmod(FOLDER_MODE)  # the model's folder, which TF Serving lists
    path.parent.mkdir(parents=True, exist_ok=True)
    signature = {}
    if "text" in model.modalities:
        signature["text"] = tf.TensorSpec([None], tf.string, name="text")
    if "image" in model.modalities:
        signature["image_bytes"] = tf.TensorSpec([None], tf.string, name="image_bytes")
    serve = serving_function(model, int(max_image_pixels))

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
                    "max_image_pixels": int(max_image_pixels),
                    "image_statuses": list(IMAGE_STATUSES) if "image" in model.modalities else [],
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        _readable_by_others(staging)
        replace_folder(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def _readable_by_others(folder: Path) -> None:
    """Folders 0755 and files 0644 whatever the umask: a server under another account reads them."""
    for inner in [folder, *folder.rglob("*")]:
        inner.chmod(FOLDER_MODE if inner.is_dir() else FILE_MODE)
