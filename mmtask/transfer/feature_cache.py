"""A disk cache of frozen encoders' outputs, keyed by what could change them.

A frozen encoder gives the same output for the same post in every epoch and
every run, so `mmtask.train` computes it once and keeps it here. An entry's
key is made of the encoder's fingerprint (its config and a hash of its
weights), the preprocessing (image size, vectors or sequences) and each
post's content (a hash of its text, or of its image file's bytes): a changed
file, weight or option never reads a stale entry, and a post that moved to
another split or id is still found.

Layout: `ROOT/<modality>-<fingerprint>/` holds shards written once each, a
`<name>.keys.npy` (one content digest per row) beside its `<name>.values.npy`.
A run that finds some posts missing computes only those and adds a shard.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import uuid
from pathlib import Path

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from mmtask.data.posts import Posts
from mmtask.transfer.features import encode_posts, has_modality

FORMAT_VERSION = 1
"""Bumped when what is stored (or how images are decoded for it) changes."""

MISSING = ""
"""The key of a post without the modality: it is never computed, its row is NaN."""


def default_cache_dir() -> Path:
    """Where cached features go by default: `$MMTASK_CACHE_DIR`, else the user's cache folder."""
    if os.environ.get("MMTASK_CACHE_DIR"):
        return Path(os.environ["MMTASK_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mmtask" / "features"


def encoder_fingerprint(encoder: keras.layers.Layer) -> str:
    """A digest of the encoder's class, config and weights: equal only for the same function."""
    digest = hashlib.sha256()
    config = {"class": type(encoder).__name__, "config": _canonical_names(encoder.get_config())}
    digest.update(json.dumps(config, sort_keys=True, default=str).encode("utf-8"))
    for weight in encoder.weights:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(weight))
        digest.update(f"{weight.path}:{value.dtype}:{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def _canonical_names(config):
    """`config` with Keras' per-process numbering of default layer names undone.

    A layer built without a name is named after its class, numbered from the
    second one in a process (`bert_tokenizer`, then `bert_tokenizer_1`;
    `input_layer_1` in a functional model built from another's tensors):
    keras-hub's `from_preset` builds tokenizers so. A second model built in
    the same process (the next seed, the next fold) must find the features
    the first one cached, and a name changes nothing the encoder computes.
    Default names are renumbered in order of appearance, everywhere they
    occur (a functional model's config refers to its layers by name).
    """
    found: dict[str, list[str]] = {}

    def collect(node):
        if isinstance(node, (list, tuple)):
            for item in node:
                collect(item)
        elif isinstance(node, dict):
            inner = node.get("config")
            if isinstance(node.get("class_name"), str) and isinstance(inner, dict):
                base = _default_name(node["class_name"])
                name = inner.get("name")
                if isinstance(name, str) and re.fullmatch(re.escape(base) + r"(_\d+)?", name):
                    names = found.setdefault(base, [])
                    if name not in names:
                        names.append(name)
            for value in node.values():
                collect(value)

    def rename(node):
        if isinstance(node, (list, tuple)):
            return type(node)(rename(item) for item in node)
        if isinstance(node, dict):
            return {key: rename(value) for key, value in node.items()}
        return renamed.get(node, node) if isinstance(node, str) else node

    collect(config)
    renamed = {
        name: base if i == 0 else f"{base}_{i}"
        for base, names in found.items()
        for i, name in enumerate(names)
    }
    return rename(config)


def _default_name(class_name: str) -> str:
    """Keras' default name of a layer class: `BertTokenizer` -> `bert_tokenizer`."""
    words = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", words).lower()


def content_keys(posts: Posts, modality: str) -> list[str]:
    """One digest per post of what the encoder reads: the text, or the image file's bytes."""
    present = has_modality(posts, modality)
    if modality == "text":
        contents = (text.encode("utf-8") for text in posts.texts)
    else:
        contents = (Path(path).read_bytes() if path else b"" for path in posts.image_paths)
    return [
        hashlib.sha256(content).hexdigest() if keep else MISSING
        for content, keep in zip(contents, present, strict=True)
    ]


class FeatureCache:
    """Frozen encoders' outputs on disk, computed only for posts not seen before.

    Args:
        root: str | Path. The cache folder (created on first write).
        verbose: int. 1 shows progress of feature extraction (posts/s, time
            left); 0 is silent.
    """

    def __init__(self, root: str | Path, verbose: int = 1):
        self.root = Path(root)
        self.verbose = verbose

    def features(
        self,
        posts: Posts,
        encoder: keras.layers.Layer,
        modality: str,
        *,
        image_size: int,
        sequence: bool = False,
        batch_size: int = 64,
    ) -> np.ndarray:
        """`encoder`'s outputs for `posts` (NaN rows where a post lacks `modality`).

        Args:
            posts: Posts. The posts to encode.
            encoder: layer. A frozen text or image encoder; it runs in inference mode.
            modality: str. "text" or "image".
            image_size: int. Image height and width the encoder reads.
            sequence: bool. Token / patch sequences (B, L, D) rather than vectors.
            batch_size: int. Posts per encoder call.

        Returns:
            float32 array with one row per post.
        """
        folder = self.root / self._entry_name(encoder, modality, image_size, sequence)
        keys = content_keys(posts, modality)
        stored = _read_shards(folder)
        todo = [i for i, key in enumerate(keys) if key != MISSING and key not in stored]
        if todo:
            computed = encode_posts(
                posts.select([posts.ids[i] for i in todo]),
                encoder,
                modality,
                image_size=image_size,
                sequence=sequence,
                batch_size=batch_size,
                verbose=self.verbose,
            )
            new_keys = [keys[i] for i in todo]
            _write_shard(folder, new_keys, computed)
            stored = _read_shards(folder)
        elif self.verbose:
            print(
                f"{modality} features: {len(posts)} posts read from {folder}",
                file=sys.stderr,
                flush=True,
            )
        return _gather(stored, keys)

    @staticmethod
    def _entry_name(encoder, modality: str, image_size: int, sequence: bool) -> str:
        digest = hashlib.sha256()
        preprocessing = {
            "format": FORMAT_VERSION,
            # What computes the features may change with any of these.
            "versions": [keras.__version__, keras_hub.__version__, tf.__version__],
            "encoder": encoder_fingerprint(encoder),
            "image_size": int(image_size) if modality == "image" else None,
            "sequence": bool(sequence),
        }
        digest.update(json.dumps(preprocessing, sort_keys=True).encode("utf-8"))
        return f"{modality}-{digest.hexdigest()[:32]}"


def _read_shards(folder: Path) -> dict[str, tuple[np.ndarray, int]]:
    """Content key -> (the shard's values, memory-mapped, and the row), over complete shards."""
    found = {}
    if not folder.is_dir():
        return found
    for keys_file in sorted(folder.glob("*.keys.npy")):
        values = np.load(
            keys_file.with_name(keys_file.name[: -len("keys.npy")] + "values.npy"), mmap_mode="r"
        )
        for row, key in enumerate(np.load(keys_file)):
            found.setdefault(str(key), (values, row))
    return found


def _write_shard(folder: Path, keys: list[str], values: np.ndarray) -> None:
    """Write values, then keys: a shard counts only once its keys file exists whole."""
    folder.mkdir(parents=True, exist_ok=True)
    name = uuid.uuid4().hex
    for suffix, array in (("values", values), ("keys", np.asarray(keys, dtype="U64"))):
        partial = folder / f".{name}.{suffix}.partial.npy"
        np.save(partial, array)
        partial.replace(folder / f"{name}.{suffix}.npy")


def _gather(stored: dict, keys: list[str]) -> np.ndarray:
    present = next((stored[key] for key in keys if key != MISSING), None)
    if present is None:
        raise ValueError("None of the posts has this modality: there is nothing to encode.")
    values, row = present
    out = np.full((len(keys), *values.shape[1:]), np.nan, dtype=np.float32)
    for i, key in enumerate(keys):
        if key != MISSING:
            values, row = stored[key]
            out[i] = values[row]
    return out
