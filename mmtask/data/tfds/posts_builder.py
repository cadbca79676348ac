"""The TFDS record of a post, and a builder base that writes `Posts` as such records.

Preparing a large data set once (checked, sharded, with its class names kept
beside it) and then reading it with `tfds.load` is the TensorFlow Datasets
way. Every mmtask builder reads its files with an mmtask reader, so the
validation and error policy are those of `read_mvsa` / `read_manifest`, and
writes the same record:

- `id`, `text`: Text.
- `image`: Image, holding the bytes of the image file unchanged (GIFs, which
  TFDS would decode into frames, are stored as their first frame in PNG). The
  pixels read back are exactly those `make_dataset` decodes from the file,
  and nothing is lost to re-encoding.
- one int64 scalar per task: the class index, -1 where the post has no label
  for that task. `ClassLabel` cannot say "missing", and a second `has_TASK`
  feature would make every reader combine two features; -1 is the convention
  of `Posts`. The class names are in `info.metadata["label_names"]`.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from mmtask.data.posts import LABEL_FORMS, Posts
from mmtask.errors import DataError, MmtaskError

LABEL_NAMES_KEY = "label_names"
"""Key of `info.metadata` holding task name -> class names (class i is names[i])."""

READ_REPORTS_KEY = "read_reports"
"""Key of `info.metadata` holding split name -> `ReadReport.summary()` of that split."""

RECORD_KEYS = ("id", "text", "image")
"""Features of every record besides the labels; no task may take these names."""

_GIF_MAGIC = (b"GIF87a", b"GIF89a")


def post_features(tasks: list[str]) -> tfds.features.FeaturesDict:
    """The features of a post record with labels for `tasks`."""
    clashes = [task for task in tasks if task in RECORD_KEYS]
    if clashes:
        raise MmtaskError(
            f"Task names {clashes} clash with the record features {list(RECORD_KEYS)}; "
            "rename those label columns."
        )
    features = {
        "id": tfds.features.Text(doc="The post id, unique within its split."),
        "text": tfds.features.Text(doc="The text of the post."),
        "image": tfds.features.Image(
            shape=(None, None, 3),
            doc="The image file's bytes unchanged (a GIF: its first frame as PNG).",
        ),
    }
    for task in tasks:
        features[task] = tfds.features.Scalar(
            np.int64,
            doc=f"Class index into info.metadata['{LABEL_NAMES_KEY}']['{task}']; -1: no label.",
        )
    return tfds.features.FeaturesDict(features)


def image_record_bytes(path: str | Path) -> bytes:
    """The bytes to store for an image file: the file itself, or a GIF's first frame as PNG.

    TFDS decodes GIFs into all their frames; `decode_image` takes the first,
    and a lossless PNG of that frame decodes to the same pixels.
    """
    data = Path(path).read_bytes()
    if not data.startswith(_GIF_MAGIC):
        return data
    frame = tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False)
    return tf.io.encode_png(frame).numpy()


def post_examples(posts: Posts) -> Iterator[tuple[str, dict]]:
    """(key, record) pairs of `posts`, keyed by post id; the builders hold class indices only."""
    typed = {t: k for t, k in posts.label_types.items() if LABEL_FORMS[k] != "index"}
    if typed:
        raise MmtaskError(
            "The TFDS builders hold classification labels (class indices) only. "
            f"Received tasks of other types: {typed}"
        )
    for i, post_id in enumerate(posts.ids):
        record = {
            "id": post_id,
            "text": posts.texts[i],
            "image": image_record_bytes(posts.image_paths[i]),
        }
        record.update({task: int(values[i]) for task, values in posts.labels.items()})
        yield post_id, record


class PostsBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A TFDS builder whose splits are `Posts` read from local (manually placed) files.

    A subclass says which tasks it has and how to read its splits; this class
    writes the records and keeps the class names and the read reports (what
    was skipped) in `info.metadata`.
    """

    DESCRIPTION = ""
    HOMEPAGE: str | None = None
    CITATION: str | None = None

    @abc.abstractmethod
    def _tasks(self) -> list[str]:
        """The task names, known before any file is read."""

    @abc.abstractmethod
    def _read_splits(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Posts]:
        """Split name to its posts; every split has the same `label_names`."""

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.DESCRIPTION,
            features=post_features(self._tasks()),
            homepage=self.HOMEPAGE,
            citation=self.CITATION,
            metadata=tfds.core.MetadataDict(),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        splits = self._read_splits(dl_manager)
        label_names = next(iter(splits.values())).label_names
        if any(posts.label_names != label_names for posts in splits.values()):
            raise MmtaskError(f"The splits of {self.name} disagree on their class names.")
        self.info.metadata[LABEL_NAMES_KEY] = label_names
        self.info.metadata[READ_REPORTS_KEY] = {
            split: posts.report.summary() for split, posts in splits.items()
        }
        return {split: self._generate_examples(posts) for split, posts in splits.items()}

    def _generate_examples(self, posts: Posts):
        yield from post_examples(posts)

    def _manual_folder(self, dl_manager: tfds.download.DownloadManager) -> Path:
        """The folder the user placed the files in, or a DataError saying how to give it."""
        try:
            return Path(os.fspath(dl_manager.manual_dir))
        except AssertionError as error:  # what TFDS raises for a missing or empty folder
            # TFDS says "Manual directory X does not exist or is empty. Create it ..."
            reason = str(error).splitlines()[0].split(" Create it")[0]
            instructions = " ".join(self.MANUAL_DOWNLOAD_INSTRUCTIONS.split())
            raise DataError(
                f"{reason} {self.name} prepares local files only. {instructions}"
            ) from error
