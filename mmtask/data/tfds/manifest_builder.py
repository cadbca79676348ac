"""A TensorFlow Datasets builder for data sets described by manifests (CSV or JSON lines).

Any local text+image data set with a manifest per split can be prepared once
into sharded TFDS records; the config names the files and columns, exactly
as the arguments of `read_manifest` do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from mmtask.data.manifest import read_manifest, sorted_labels
from mmtask.data.posts import Posts
from mmtask.data.tfds.posts_builder import PostsBuilder
from mmtask.errors import MmtaskError


@dataclasses.dataclass(eq=False)
class ManifestConfig(tfds.core.BuilderConfig):
    """Which manifests make the splits, and how to read them (see `read_manifest`).

    Args:
        name: str. The config name, e.g. the data set's name; part of the
            prepared data's folder.
        manifests: Mapping[str, str]. Split name to its manifest file;
            relative paths are resolved against the manual folder.
        image_column: str. Column holding the image path.
        label_columns: Sequence[str]. Columns holding labels, one task each.
        text_column: str | None. Column holding the text itself.
        text_path_column: str | None. Column holding the path of a text file.
        id_column: str | None. Column holding post ids; default: row numbers.
        label_names: Mapping[str, Sequence[str]] | None. Class names per label
            column; other columns take the sorted distinct values found in
            all splits together, so every split has the same classes.
        on_error: str. "raise" or "skip", as in `read_manifest`.
    """

    manifests: Mapping[str, str] = dataclasses.field(default_factory=dict)
    image_column: str = "image"
    label_columns: Sequence[str] = ()
    text_column: str | None = None
    text_path_column: str | None = None
    id_column: str | None = None
    label_names: Mapping[str, Sequence[str]] | None = None
    on_error: str = "raise"


class ManifestBuilder(PostsBuilder):
    """Posts listed in manifest files as a TFDS data set.

    The builder has no configs of its own: give a `ManifestConfig`. Records
    are those of `mmtask.data.tfds.post_features`, one task per label column;
    the class names are in `info.metadata["label_names"]`. Read the prepared
    data later with the same config, or with `tfds.builder_from_directory`.

    Example:
        >>> config = ManifestConfig(
        ...     name="my_posts", manifests={"train": "train.csv", "val": "val.csv"},
        ...     text_column="text", label_columns=["topic"])
        >>> builder = ManifestBuilder(config=config, data_dir="/data/tfds")
        >>> builder.download_and_prepare(
        ...     download_config=tfds.download.DownloadConfig(manual_dir="/data/my_posts"))
        >>> train = builder.as_dataset(split="train")
    """

    name = "mmtask_manifest"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    DESCRIPTION = "Text + image posts listed in CSV or JSON lines manifests."
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Put the manifests and the files they name in one folder and give it as the
    manual folder: builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=FOLDER)).
    Manifests given by absolute paths need no manual folder.
    """

    def _config(self) -> ManifestConfig:
        config = self.builder_config
        if not isinstance(config, ManifestConfig):
            raise MmtaskError(
                "ManifestBuilder needs a ManifestConfig, e.g. ManifestBuilder(config="
                "ManifestConfig(name='my_posts', manifests={'train': 'train.csv'}, ...)). "
                f"Received: config={config!r}"
            )
        if not config.manifests:
            raise MmtaskError(
                "ManifestConfig.manifests must name at least one split, e.g. "
                "{'train': 'train.csv'}. Received: manifests={}"
            )
        return config

    def _tasks(self) -> list[str]:
        return list(self._config().label_columns)

    def _read_splits(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Posts]:
        config = self._config()
        paths = {split: Path(path).expanduser() for split, path in config.manifests.items()}
        if not all(path.is_absolute() for path in paths.values()):
            folder = self._manual_folder(dl_manager)
            paths = {split: folder / path for split, path in paths.items()}
        splits = {
            split: read_manifest(
                path,
                image_column=config.image_column,
                label_columns=list(config.label_columns),
                text_column=config.text_column,
                text_path_column=config.text_path_column,
                id_column=config.id_column,
                label_names=dict(config.label_names or {}),
                on_error=config.on_error,
            )
            for split, path in paths.items()
        }
        given = {
            task: [str(n) for n in names] for task, names in (config.label_names or {}).items()
        }
        names = {
            task: given.get(task)
            or sorted_labels([n for posts in splits.values() for n in posts.label_names[task]])
            for task in config.label_columns
        }
        return {split: _with_label_names(posts, names) for split, posts in splits.items()}


def _with_label_names(posts: Posts, names: dict[str, list[str]]) -> Posts:
    """`posts` with its labels re-indexed into `names`, a superset of its own class names."""
    labels = {}
    for task, values in posts.labels.items():
        # One index per own class, then -1 at the end: values of -1 pick it and stay -1.
        lookup = [names[task].index(name) for name in posts.label_names[task]] + [-1]
        labels[task] = np.asarray(lookup, dtype=np.int32)[values]
    return dataclasses.replace(posts, labels=labels, label_names=names)
