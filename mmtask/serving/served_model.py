"""A model ready to answer predict requests: an export folder loaded, or a `.keras` model exported.

The server runs the SavedModel export, the artifact TensorFlow Serving runs,
so mmtask and TF Serving answer the same requests with the same numbers.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import tempfile
from pathlib import Path

from mmtask.errors import MmtaskError


class ServedModel:
    """A loaded export, called with one batch of raw inputs per request.

    Args:
        export_dir: Path. A SavedModel folder written by `export_saved_model`.
        name: str. The model name in request paths (`/v1/models/NAME`).
        version: int. The version reported and accepted in request paths.
        cleanup: Path | None. A temporary folder to remove on `close`.
    """

    def __init__(self, export_dir: Path, name: str, version: int, cleanup: Path | None = None):
        import tensorflow as tf

        labels_file = export_dir / "assets" / "mmtask_labels.json"
        if not (export_dir / "saved_model.pb").is_file() or not labels_file.is_file():
            raise MmtaskError(
                f"{export_dir} is not an mmtask export (no saved_model.pb and "
                "assets/mmtask_labels.json): export the model with `mmtask export`."
            )
        info = json.loads(labels_file.read_text(encoding="utf-8"))
        for module in info.get("requires_imports", []):
            try:
                importlib.import_module(module)  # registers the ops the graph runs
            except ImportError as error:
                raise MmtaskError(
                    f"This export needs the module {module!r} to run ({error}); install it "
                    "(tensorflow_text: `pip install tensorflow-text`, matching TensorFlow)."
                ) from None
        self.export_dir, self.name, self.version = export_dir, name, version
        self.inputs: list[str] = list(info["inputs"])
        self.label_names: dict = info["label_names"]
        self.max_image_pixels: int | None = info.get("max_image_pixels")
        self._cleanup = cleanup
        self._loaded = tf.saved_model.load(str(export_dir))
        self._serve = self._loaded.signatures["serve"]

    def predict(self, columns: dict[str, list[bytes]]) -> dict:
        """Every output of the export for one batch, as NumPy arrays (batch first).

        Safe to call from several threads at once: TensorFlow functions are.
        Inputs the graph refuses (columns of different lengths) raise a
        MmtaskError with the graph's message.
        """
        import tensorflow as tf

        tensors = {name: tf.constant(columns[name], tf.string) for name in self.inputs}
        try:
            outputs = self._serve(**tensors)
        except tf.errors.InvalidArgumentError as error:
            found = re.search(r"assertion failed: \[(.*?)\]", error.message)
            raise MmtaskError(found[1] if found else error.message.strip()) from None
        return {name: value.numpy() for name, value in sorted(outputs.items())}

    def close(self) -> None:
        """Remove the temporary export, if this model made one."""
        if self._cleanup is not None:
            shutil.rmtree(self._cleanup, ignore_errors=True)
            self._cleanup = None


def open_model(
    path: str | Path,
    name: str | None = None,
    max_image_pixels: int | None = None,
    trust_saved_model: bool = False,
) -> ServedModel:
    """Load what `path` holds for serving.

    Args:
        path: str | Path. An export folder, a TF Serving model folder of
            numbered versions (the highest is served, as TF Serving does), a
            `.keras` file or a run folder (exported to a temporary folder first).
        name: str | None. The model name in request paths; by default the
            file's or folder's name.
        max_image_pixels: int | None. The decoded-pixel limit of images, for a
            `.keras` model; an export keeps the limit it was exported with.
        trust_saved_model: bool. Allow loading a `.keras` model whose
            `tf_hub` encoder runs a SavedModel graph.
    """
    path = Path(path)
    if not path.exists():
        raise MmtaskError(f"No model at {path}")
    versions = _versions(path)
    if (path / "saved_model.pb").is_file() or versions:
        if versions:
            export_dir, version = path / str(max(versions)), max(versions)
        else:
            export_dir, version = path, int(path.name) if path.name.isdigit() else 1
        model_name = name or (path.name if versions else _export_name(path))
        served = ServedModel(export_dir, model_name, version)
        if max_image_pixels is not None and max_image_pixels != served.max_image_pixels:
            raise MmtaskError(
                f"{export_dir} was exported with max_image_pixels={served.max_image_pixels}; "
                "re-export it to change the limit (`mmtask export --max-image-pixels`)."
            )
        return served
    from mmtask.export import export_saved_model
    from mmtask.export.image_batch import DEFAULT_MAX_IMAGE_PIXELS
    from mmtask.training import load_model

    model = load_model(path, safe_mode=not trust_saved_model)
    temporary = Path(tempfile.mkdtemp(prefix="mmtask-serve-"))
    try:
        export_dir = export_saved_model(
            model,
            temporary / "export",
            max_image_pixels=max_image_pixels or DEFAULT_MAX_IMAGE_PIXELS,
        )
        model_name = name or (path.stem if path.is_file() else path.name)
        return ServedModel(export_dir, model_name, 1, cleanup=temporary)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _versions(path: Path) -> list[int]:
    if not path.is_dir():
        return []
    return [
        int(child.name)
        for child in path.iterdir()
        if child.name.isdigit() and (child / "saved_model.pb").is_file()
    ]


def _export_name(path: Path) -> str:
    """A versioned export's model name is its parent folder's (`NAME/1/`)."""
    return path.parent.name if path.name.isdigit() else path.name
